"""The latency gate of `tsfrig compare`: a stated false-alarm rate, what each metric could
have seen, history floors and paired A/B differences; trend judging each build."""

import random
import re

import pytest

from harness.suite.stats import gate_paired, gate_separate, history_spread, holm, shift_test
from tests.unit.runs import lines, one_line_error, run_doc, scenario_of, write_run

# ---- the latency gate: a stated false-alarm rate, and what it could have seen -------------
# Samples shaped like the simulated bench's (a 1 ms poll: 0-1300 µs), fixed seeds.


def sim_like(seed: int, shift: float = 0.0, n: int = 100, width: float = 1300) -> list[float]:
    rnd = random.Random(seed)
    return [round(rnd.uniform(0, width) + shift, 1) for _ in range(n)]


def with_latency(doc: dict, samples: dict[str, list[float]]) -> dict:
    scenario_of(doc, "latency")["latency"] = samples
    return doc


def latency_doc(run_id: str, seed: int, shift: float = 0.0, build: str = "aaaa1111",
                width: float = 1300) -> dict:
    return with_latency(run_doc(run_id, build_hash=build),
                        {"irq_to_wake_us": sim_like(seed, shift, width=width),
                         "edge_to_ack_us": sim_like(seed + 1000, shift, width=width)})


def test_holm_adjusts_in_step_down_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_run_to_run_drift_the_old_rule_flags_is_not_a_regression():
    """Two runs of one build whose host load differed: every sample 250 µs later (the issue's
    +249 µs false alarm). Significant for a test of shift = 0; within the floor here."""
    base, new = sim_like(1), sim_like(2, shift=250)
    assert shift_test(base, new, 0.01, 100, 0.3).regression  # the old rule cries wolf
    _, (t,) = gate_separate([(base, new, None)], 100, 0.3, 0.01)
    assert not t.regression and t.p_holm > 0.01 and t.floor.source == "effect size"
    assert t.detectable_us > 300  # and it says it could not have seen a shift that small


def test_the_shift_it_claims_it_could_see_is_caught_and_no_shift_is_not():
    """The power claim checked by simulation: at the shift a compare says it could see, 95 in
    100 compares catch it (>= 88 of 100 allowed for the draw); with no shift none does."""
    _, (t,) = gate_separate([(sim_like(1), sim_like(2), None)], 100, 0.3, 0.01)
    seen = t.detectable_us
    assert t.floor.us < seen < 1300
    caught = sum(gate_separate([(sim_like(s), sim_like(s + 500, seen), None)], 100, 0.3,
                               0.01)[1][0].regression for s in range(100))
    assert caught >= 88, (seen, caught)
    quiet = sum(gate_separate([(sim_like(s), sim_like(s + 500), None)], 100, 0.3,
                              0.01)[1][0].regression for s in range(100))
    assert quiet == 0


def test_a_history_of_noisy_runs_widens_the_floor_and_a_quiet_one_narrows_it():
    base, new = sim_like(1), sim_like(2, shift=700)
    noisy = [("b1", m) for m in (650, 420, 900, 610, 380, 800)]
    quiet = [("b1", m) for m in (650, 655, 648, 652, 649, 651)]
    _, (n,) = gate_separate([(base, new, history_spread(noisy))], 100, 0.3, 0.01)
    _, (q,) = gate_separate([(base, new, history_spread(quiet))], 100, 0.3, 0.01)
    assert n.floor.source == q.floor.source == "history"
    assert "6 earlier runs of 1 build" in n.floor.detail and "min_effect_size" in n.floor.detail
    assert not n.regression and n.floor.us > 700
    assert q.regression and q.floor.us < 300  # min_effect_size on the spread: ~210 µs
    assert history_spread(noisy[:2]) is None  # too few runs to say: the config floor applies


def test_paired_differences_judge_an_ab():
    _, (same, slow) = gate_paired([[12.0, -30.0, 25.0, -8.0, 3.0, -14.0],
                                   [510.0, 470.0, 530.0, 495.0, 505.0, 480.0]], 100, 0.01)
    assert not same.regression and slow.regression
    assert slow.median_shift_us == pytest.approx(498.3, abs=0.1)
    assert 100 < slow.detectable_us < 498  # it could see what it caught
    assert same.detectable_us > 100


def test_compare_prints_the_statistics_and_what_each_metric_could_see(tmp_path, compare):
    r = compare(write_run(tmp_path / "b", latency_doc("base-run", 1)),
                write_run(tmp_path / "n", latency_doc("new-run", 2)))
    assert r.returncode == 0, r.stdout
    out = lines(r)
    stats = [x for x in out if x.startswith("statistics: ")]
    assert len(stats) == 1 and "Mann-Whitney" in stats[0] and "Holm over 2 metrics" in stats[0]
    assert "alpha 0.01" in stats[0]
    for m in ("irq_to_wake_us", "edge_to_ack_us"):
        (line,) = [x for x in out if x.startswith(f"latency sim [hard] {m}: ")]
        seen = int(re.search(r"could see ≥ (\d+) µs$", line).group(1))
        floor = int(re.search(r"floor (\d+) µs \(effect size: ", line).group(1))
        assert 100 < floor < seen < 1300, line
    assert out[-1] == "compare: PASS: 4 scenarios measured, 0 regressions"
    html = (tmp_path / "n" / "compare.html").read_text()
    assert html.count("data-detectable=") == 2 and "Holm over 2 metrics" in html


def test_compare_flags_an_injected_shift_above_what_it_could_see(tmp_path, compare):
    r = compare(write_run(tmp_path / "b", latency_doc("base-run", 1)),
                write_run(tmp_path / "n", latency_doc("new-run", 2, shift=1000)))
    assert r.returncode == 1, r.stdout
    assert any(x.startswith("REGRESSION sim [hard] edge_to_ack_us: median +1")
               for x in lines(r)), r.stdout
    assert lines(r)[-1] == "compare: FAIL: 2 regressions"


def test_compare_history_floor_is_used_and_named(tmp_path, compare):
    """Tight samples (10-20 µs, like a soft IRQ's wake): effect_floor_us (100 µs) hides a
    +40 µs shift; six earlier runs whose medians agree to a few µs replace it."""
    hist = tmp_path / "history"
    for i, shift in enumerate((0, 1, -1, 0.5, -0.5, 1)):
        write_run(hist / f"h{i}", latency_doc(f"h{i}", 10 + i, shift=10 + shift, width=10))
    base = write_run(tmp_path / "b", latency_doc("base-run", 1, shift=10, width=10))
    new = write_run(tmp_path / "n", latency_doc("new-run", 2, shift=50, width=10))
    plain = compare(base, new)
    assert plain.returncode == 0, plain.stdout  # effect_floor_us covers +40 µs
    r = compare(base, new, "--history", str(hist))
    assert r.returncode == 1, r.stdout  # six quiet earlier runs say +40 µs is not noise
    line = next(x for x in lines(r) if x.startswith("latency sim [hard] edge_to_ack_us"))
    assert "(history: run-to-run sd of the median" in line and "6 earlier runs of 1 build" \
        in line
    bad = compare(base, new, "--history", str(tmp_path / "nowhere"))
    one_line_error(bad, "tsfrig compare: --history: ", "nowhere")


def test_index_says_what_a_compare_of_this_run_could_see(tmp_path, tsfrig):
    run = write_run(tmp_path / "run", latency_doc("run", 1))
    r = tsfrig("report", str(run))
    assert r.returncode == 0, r.stderr
    html = (run / "index.html").read_text()
    cells = re.findall(r'data-detectable="(\w+)">≥ (\d+)<', html)
    assert sorted(m for m, _ in cells) == ["edge_to_ack_us", "irq_to_wake_us"]
    assert all(100 < int(v) < 1300 for _, v in cells), cells  # above its floor, below 1.3 ms


def test_trend_judges_each_build_against_the_spread_of_the_runs_before_it(tmp_path):
    from harness.config import CompareConfig
    from harness.reports.trend import build_trend, collect

    for i in range(7):  # six runs of one build, then a build 600 µs slower
        doc = latency_doc(f"r{i}", 20 + i, shift=600 if i == 6 else 0,
                          build="bbbb2222" if i == 6 else "aaaa1111")
        doc["started"] = f"2025-01-01T00:0{i}:00+00:00"
        write_run(tmp_path / f"r{i}", doc)
    trend = build_trend(collect([tmp_path]), CompareConfig())
    first, last = trend["compares"][0], trend["compares"][-1]
    assert all("(effect size)" in f for f in first["floors"])  # no history yet
    assert all("(history)" in f for f in last["floors"]), last["floors"]
    assert last["verdict"] == "regression", last
    assert first["verdict"] == "ok" and trend["compares"][-2]["verdict"] == "ok"
