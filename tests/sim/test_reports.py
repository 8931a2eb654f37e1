"""Reports as a user meets them: real runs on the simulated bench, results.json against its
schema, index.html rebuilt from results.json alone, compare on same vs 20 ms-late builds,
and both pages rendered in headless Chromium."""

import json
import random
import re
import shutil
from pathlib import Path

import pytest

from harness.progress import Progress
from harness.reports.results import validate
from harness.reports.run_report import latency_groups
from harness.suite.stats import shift_test, summary
from tests.mutants import write_overlay

SUBSET = "latency or second_waiter or auto_reset"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tsfrig):
    """Two runs of the same build and one of a build whose task wakes 20 ms late."""
    tmp = tmp_path_factory.mktemp("runs")
    out = {}
    for name, overlay in (("base", None), ("same", None), ("late", "slow_wake")):
        args = ["run", "--report-dir", str(tmp / name), "-k", SUBSET]
        if overlay:
            args += ["--overlay", str(write_overlay(overlay, tmp / "overlay"))]
        r = tsfrig(*args)
        assert r.returncode == (1 if overlay else 0), r.stdout[-3000:]
        out[name] = (tmp / name / "latest").resolve()
    return out


def test_results_json_matches_schema_and_holds_every_sample(runs):
    doc = json.loads((runs["base"] / "results.json").read_text())
    validate(doc)
    assert doc["verdict"] == "pass" and doc["targets"][0]["firmware"]["implementation"]
    lat = [t for t in doc["tests"] if t["scenario"] == "latency"]
    assert {t["irq_kind"] for t in lat} == {"hard", "soft", "thread"}
    for t in lat:
        assert len(t["latency"]["irq_to_wake_us"]) == t["counts"]["pulses"] == 100
        assert len(t["latency"]["edge_to_ack_us"]) == 100
    assert (runs["base"] / "junit.xml").exists()


def test_report_rebuilds_from_results_alone(runs, tmp_path, tsfrig):
    d = tmp_path / "copy"
    shutil.copytree(runs["base"], d)
    (d / "index.html").unlink()
    r = tsfrig("report", str(d))
    assert r.returncode == 0, r.stderr
    html = (d / "index.html").read_text()
    doc = json.loads((d / "results.json").read_text())
    hard = latency_groups(doc)[("sim", "hard")]["irq_to_wake_us"]
    cell = (f'data-metric="p99" data-kind="hard" data-series="irq_to_wake_us">'
            f'{summary(hard)["p99"]:.0f}<')
    assert cell in html and 'id="verdict">PASS' in html


def test_report_bad_input_is_one_line(tmp_path, tsfrig):
    r = tsfrig("report", str(tmp_path))
    assert r.returncode == 2 and "no results.json" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 1}))
    r = tsfrig("report", str(tmp_path))
    assert r.returncode == 2 and "required property" in r.stderr


def test_compare_same_build_is_clean(runs, tsfrig):
    r = tsfrig("compare", str(runs["base"]), str(runs["same"]))
    assert r.returncode == 0, r.stdout
    assert "0 regressions" in r.stdout and (runs["same"] / "compare.html").exists()


def test_compare_flags_a_build_that_wakes_20ms_late(runs, tsfrig):
    r = tsfrig("compare", str(runs["base"]), str(runs["late"]))
    assert r.returncode == 1, r.stdout
    assert "latency [hard]: passed → failed" in r.stdout
    assert "irq_to_wake_us: median +2" in r.stdout  # +20xxx µs


def test_compare_mismatched_runs_named(runs, tmp_path, tsfrig):
    other = tmp_path / "other"
    shutil.copytree(runs["same"], other)
    doc = json.loads((other / "results.json").read_text())
    doc["targets"][0]["name"] = "pico"
    for t in doc["tests"]:
        t["target"] = "pico"
    (other / "results.json").write_text(json.dumps(doc))
    r = tsfrig("compare", str(runs["base"]), str(other))
    assert r.returncode == 2 and "share no target" in r.stderr and "pico" in r.stderr
    r = tsfrig("compare", str(runs["base"]), str(tmp_path / "missing"))
    assert r.returncode == 2 and "missing" in r.stderr


def test_compare_names_scenarios_a_bench_fault_hid(runs, tmp_path, tsfrig):
    faulted = tmp_path / "faulted"
    shutil.copytree(runs["same"], faulted)
    doc = json.loads((faulted / "results.json").read_text())
    t = next(t for t in doc["tests"] if t["scenario"] == "auto_reset")
    t["outcome"], t["message"] = "error", "bench fault (not a firmware verdict): board mute"
    (faulted / "results.json").write_text(json.dumps(doc))
    r = tsfrig("compare", str(runs["base"]), str(faulted))
    assert r.returncode == 2, r.stdout  # not measured: the gate can't say pass
    assert "INCOMPLETE bench fault in NEW: sim / auto_reset [hard] (BASE passed): board mute" \
        in r.stdout


def test_shift_test_ignores_noise_and_catches_20ms():
    rnd = random.Random(1)
    base = [rnd.uniform(0, 1000) + 50 for _ in range(300)]
    for seed in range(10):
        r = random.Random(seed + 100)
        same = [r.uniform(0, 1000) + 50 for _ in range(300)]
        assert not shift_test(base, same, 0.01, 100, 0.3).regression
    late = [v + 20000 for v in base]
    assert shift_test(base, late, 0.01, 100, 0.3).regression
    tiny = [v + 30 for v in base]  # significant with enough samples, but under the floor
    assert not shift_test(base, tiny, 0.01, 100, 0.3).regression


def test_progress_plain_has_no_control_codes_live_redraws():
    import io

    plain, live = io.StringIO(), io.StringIO()
    for stream, is_live in ((plain, False), (live, True)):
        p = Progress(stream, live=is_live)
        p.start("wake[hard]")
        p.update(pulses=3, wakes=3)
        p.finish("wake[hard]", "passed", {"pulses": 3, "irqs": 3, "wakes": 3})
    assert "\x1b" not in plain.getvalue() and "\r" not in plain.getvalue()
    assert "pulses 3  IRQs 3  wakes 3" in plain.getvalue()
    assert "\r\x1b[K" in live.getvalue()


# ---- in a browser ----------------------------------------------------------------------

def test_index_html_renders_charts_and_numbers(runs, browser, drawn):
    dom, png = browser(runs["late"] / "index.html")
    assert drawn(png)
    assert dom.count('data-chart="histogram"') == 3 and dom.count('data-chart="cdf"') == 3
    assert 'class="bar"' in dom and 'class="cdf"' in dom
    assert 'data-chart="timeline"' in dom and 'class="event"' in dom  # failing latency scenario
    doc = json.loads((runs["late"] / "results.json").read_text())
    soft = latency_groups(doc)[("sim", "soft")]["edge_to_ack_us"]
    assert (f'data-series="edge_to_ack_us">{summary(soft)["p50"]:.0f}<') in dom
    assert 'id="verdict">FAIL' in dom


def test_compare_html_renders_overlaid_cdfs(runs, browser, drawn, tsfrig):
    tsfrig("compare", str(runs["base"]), str(runs["late"]))
    dom, png = browser(runs["late"] / "compare.html")
    assert drawn(png)
    assert dom.count('data-chart="cdf"') == 6 and dom.count('class="cdf"') == 12
    assert "REGRESSION" in dom and 'id="verdict">FAIL' in dom


@pytest.mark.parametrize("version, build_hash, label", [
    ("3.4.0; MicroPython v1.27.0 on 2025-12-09", "a1b2c3d4e5f6", "v1.27.0 (a1b2c3d4e5f6)"),
    ("3.4.0; MicroPython v1.29.0-preview.123.g9458e3a23 on 2026-07-05", "x",
     "v1.29.0-preview.123 (9458e3a23)"),
    ("3.4.0; MicroPython 9458e3a23f on 2026-07-05", "52666e3e6762", "unreleased (9458e3a23)"),
    ("", "52666e3e6762", "unknown version (52666e3e6762)"),
])
def test_a_build_is_named_as_a_person_names_it(version, build_hash, label):
    from harness.reports.results import firmware_label

    assert firmware_label({"version": version, "build_hash": build_hash}) == label


CLIP_CHECK = """<script>
(function () {  // every SVG text's box against its picture's, as laid out
  const out = []; let n = 0;
  for (const svg of document.querySelectorAll("svg")) {
    const s = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll("text")) {
      const b = t.getBoundingClientRect();
      if (!b.width) continue;
      n++;
      if (b.left < s.left - 0.5 || b.right > s.right + 0.5 || b.top < s.top - 0.5
          || b.bottom > s.bottom + 0.5)
        out.push(svg.getAttribute("aria-label") + ": " + t.textContent);
    }
  }
  document.body.setAttribute("data-texts", String(n));
  document.body.setAttribute("data-clipped", JSON.stringify(out));
})();
</script></body>"""


def laid_out(browser, tmp_path: Path, page: Path) -> tuple[str, int, list[str]]:
    """The page's DOM after Chromium laid it out, how many SVG texts it drew, and those
    whose box leaves their picture."""
    import html

    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", CLIP_CHECK))
    dom, _ = browser(probe)
    texts = int(re.search(r'data-texts="(\d+)"', dom).group(1))
    clipped = json.loads(html.unescape(re.search(r'data-clipped="([^"]*)"', dom).group(1)))
    return dom, texts, clipped


def test_index_html_nothing_clipped_a_timeline_per_scenario_and_the_warnings(runs, tmp_path,
                                                                            browser, tsfrig):
    """In Chromium: every text of every chart inside its picture (the CDF legend was cut
    to "stimulus edge -> ack edge (Pi c"), a logic-analyser timeline for every scenario with
    the moment a failure broke marked, and the run's warnings shown."""
    run = tmp_path / "late"
    shutil.copytree(runs["late"], run)
    doc = json.loads((run / "results.json").read_text())
    said = "scheduler queue overflow dropped 7 of 450 soft IRQs (port behaviour)"
    doc["tests"][0]["warnings"] = [said]  # as stress [soft] records one
    (run / "results.json").write_text(json.dumps(doc))
    assert tsfrig("report", str(run)).returncode == 0
    dom, texts, clipped = laid_out(browser, tmp_path, run / "index.html")
    assert texts > 100 and clipped == [], clipped
    timed = [t for t in doc["tests"] if t.get("timeline")]
    assert len(timed) == len(doc["tests"])
    for t in timed:
        one = dom.split(f'<div class="timeline" data-nodeid="{t["nodeid"]}">')[1] \
            .split('<div class="timeline"')[0]
        assert 'data-chart="timeline"' in one and 'data-signal="ack"' in one, t["nodeid"]
        assert ('class="broke"' in one) == (t["outcome"] == "failed"), t["nodeid"]
    assert any(t["outcome"] == "failed" for t in timed)
    warnings = dom.split('<ul id="warnings">')[1].split("</ul>")[0]
    assert said in warnings
    assert "0x" in dom.split("hw revision ")[1][:12]
    assert "ticks period 2^62 µs" in dom and "stimulus: Pi GPIO 17 → board pin 2" in dom
