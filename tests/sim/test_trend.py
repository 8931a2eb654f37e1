"""`tsfrig trend` over runs made from one real run on the simulated bench: builds in start order,
one column each, a regression marked between the right neighbours (and the fix after it), a
latency shift visible in trend.json, a self-contained trend.html that renders in Chromium, and
bad input as one line on stderr with exit 2."""

import copy
import html as html_text
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.reports.results import validate
from harness.reports.trend import collect

REPO = Path(__file__).resolve().parents[2]
FAIL_MSG = "latency [hard] on sim: pulse 3: IRQ at +4749 µs, no wake within 200 ms"


def trend(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.reports.trend", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("real")
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "-k",
                        "hard and (latency or wake)", "--report-dir", str(tmp)], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return json.loads((tmp / "latest" / "results.json").read_text())


def variant(doc: dict, run_id: str, started: str, build: str, shift_us: float = 0.0,
            latency_outcome: str = "passed") -> dict:
    d = copy.deepcopy(doc)
    d["run_id"], d["started"] = run_id, started
    d["targets"][0]["firmware"]["build_hash"] = build
    d["targets"][0]["firmware"]["version"] = f"3.4.0; MicroPython {build}"
    for t in d["tests"]:
        for m, samples in t.get("latency", {}).items():
            t["latency"][m] = [v + shift_us for v in samples]
        if t["scenario"] == "latency" and latency_outcome != "passed":
            t["outcome"], t["message"] = latency_outcome, FAIL_MSG
    d["verdict"] = "pass" if all(t["outcome"] == "passed" for t in d["tests"]) else "fail"
    validate(d)
    return d


def write(run_dir: Path, doc: dict) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(doc))
    return run_dir


# Directory names sort opposite to start times, so ordering by name would be wrong.
BUILDS = [  # dir, run_id, started, build, latency shift, latency outcome
    ("d-run", "r1", "2025-03-01T10:00:00+00:00", "b1", 0.0, "passed"),
    ("c-run", "r2", "2025-03-02T10:00:00+00:00", "b2", 0.0, "failed"),
    ("b-run", "r3", "2025-03-03T09:00:00+01:00", "b3", 0.0, "passed"),
    ("a-run", "r4", "2025-03-04T10:00:00+00:00", "b4", 20000.0, "passed"),
]


@pytest.fixture(scope="module")
def reports(real_run, tmp_path_factory) -> Path:
    rep = tmp_path_factory.mktemp("reports")
    for name, rid, started, build, shift, outcome in BUILDS:
        write(rep / name, variant(real_run, rid, started, build, shift, outcome))
    (rep / "latest").symlink_to("a-run")
    r = trend(str(rep), str(rep / "latest"))  # latest names a run already in the reports dir
    assert r.returncode == 0 and not r.stderr, r.stderr
    return rep


@pytest.fixture(scope="module")
def trend_json(reports) -> dict:
    return json.loads((reports / "trend.json").read_text())


def test_builds_in_start_order_one_column_each(reports, trend_json):
    assert [b["run_id"] for b in trend_json["builds"]] == ["r1", "r2", "r3", "r4"]
    assert [b["targets"][0]["build_hash"] for b in trend_json["builds"]] == \
        ["b1", "b2", "b3", "b4"]
    assert trend_json["builds"][1]["verdict"] == "fail"
    assert trend_json["outcomes"]["sim / latency [hard]"] == ["passed", "failed", "passed",
                                                               "passed"]
    assert all(len(v) == 4 for v in trend_json["outcomes"].values())
    html = (reports / "trend.html").read_text()
    assert html.count('<th class="build"') == 4
    assert [d.name for d in (x["dir"] for x in collect([reports]))] == \
        ["d-run", "c-run", "b-run", "a-run"]
    given = collect([reports / "a-run", reports / "d-run", reports / "latest"])  # run dirs
    assert [x["doc"]["run_id"] for x in given] == ["r1", "r4"]


def test_regression_marked_between_the_right_neighbours(reports, trend_json):
    cmp_ = trend_json["compares"]
    assert [(c["base"], c["new"], c["verdict"]) for c in cmp_] == [
        ("r1", "r2", "regression"), ("r2", "r3", "fixed"), ("r3", "r4", "regression")]
    assert "sim / latency [hard]: passed → failed" in cmp_[0]["regressions"][0]
    assert "irq_to_wake_us: median +20000" in " ".join(cmp_[2]["regressions"])
    html = (reports / "trend.html").read_text()
    cells = re.findall(r'<td class="cmp (\w+)" data-compare="(\d-\d)"', html)
    assert cells == [("regression", "1-2"), ("fixed", "2-3"), ("regression", "3-4")]


def test_latency_shift_visible(trend_json):
    lat = trend_json["latency"]["sim [hard]"]
    for m in ("irq_to_wake_us", "edge_to_ack_us"):
        p50, p99 = lat[m]["p50"], lat[m]["p99"]
        assert p50[0] == p50[1] == p50[2] and p99[0] == p99[2]
        assert p50[3] - p50[2] == pytest.approx(20000, abs=1)
        assert p99[3] - p99[2] == pytest.approx(20000, abs=1)


def test_html_is_self_contained(reports):
    html = (reports / "trend.html").read_text()
    assert "<style>" in html and html.count('data-chart="trend"') == 1
    assert not re.search(r"\b(src|href)\s*=", html, re.I)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_html_renders_in_chromium(reports, browser, drawn):
    dom, png = browser(reports / "trend.html")
    assert drawn(png)
    assert dom.count('data-chart="trend"') == 1 and dom.count('class="trend"') == 4
    assert dom.count('class="point"') == 16
    assert 'class="cmp regression" data-compare="1-2"' in dom
    assert 'class="outcome failed' in dom


def run_dir_with(tmp_path: Path, text: str) -> Path:
    d = tmp_path / "reports" / "run1"
    d.mkdir(parents=True)
    (d / "results.json").write_text(text)
    return d


@pytest.mark.parametrize("case", ["missing", "empty_dir", "bad_json", "bad_schema",
                                  "bad_in_reports", "bad_started"])
def test_bad_input_is_one_line_exit_2(case, real_run, tmp_path):
    if case == "missing":
        arg, names = tmp_path / "nope", "nope"
    elif case == "empty_dir":
        arg, names = tmp_path, "results.json"
    elif case in ("bad_json", "bad_in_reports"):
        d = run_dir_with(tmp_path, "{not json")
        arg, names = (d if case == "bad_json" else d.parent), "run1/results.json"
    elif case == "bad_schema":
        arg, names = run_dir_with(tmp_path, json.dumps({"run_id": "x"})), "run1/results.json"
    else:
        doc = dict(real_run, started="yesterday")
        arg, names = run_dir_with(tmp_path, json.dumps(doc)), "run1/results.json"
    r = trend(str(arg), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and not r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tsfrig trend: ") and names in lines[0], \
        r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def k_reports(real_run, tmp_path_factory) -> Path:
    """Four builds: #1 the real run (wake and latency); #2 a real run whose -k left latency
    out, with wake failing (a regression beside a not-selected scenario, the case whose
    header once said "incomplete 0" above its INCOMPLETE lines); #3 #1 again (fixed); #4 #1
    with latency missing and no selection recorded (incomplete)."""
    rep = tmp_path_factory.mktemp("k-reports")
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "-k", "test_wake and hard",
                        "--report-dir", str(rep / "k")], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    narrowed = json.loads((rep / "k" / "latest" / "results.json").read_text())
    shutil.rmtree(rep / "k")
    write(rep / "1", variant(real_run, "r1", "2025-03-01T10:00:00+00:00", "b1"))
    second = variant(narrowed, "r2", "2025-03-02T10:00:00+00:00", "b2")
    second["tests"][0]["outcome"], second["tests"][0]["message"] = "failed", FAIL_MSG
    second["verdict"] = "fail"
    write(rep / "2", second)
    write(rep / "3", variant(real_run, "r3", "2025-03-03T10:00:00+00:00", "b3"))
    fourth = variant(real_run, "r4", "2025-03-04T10:00:00+00:00", "b4")
    fourth["tests"] = [t for t in fourth["tests"] if t["scenario"] != "latency"]
    fourth.pop("selection")  # recorded no selection: missing is not "not selected"
    write(rep / "4", fourth)
    return rep


def test_not_selected_is_said_and_header_counts_match_the_lines(k_reports, real_run):
    left_out = sorted(f"sim / {t['scenario']} [hard]" for t in real_run["tests"]
                      if t["scenario"] != "wake")  # #2's -k left these out
    r = trend(str(k_reports), "--out", str(k_reports / "out"))
    assert r.returncode == 0, r.stderr
    tj = json.loads((k_reports / "out" / "trend.json").read_text())
    assert [c["verdict"] for c in tj["compares"]] == ["regression", "fixed", "incomplete"]
    assert tj["compares"][0]["not_selected"] == left_out and left_out
    assert tj["compares"][0]["incomplete"] == []
    assert tj["outcomes"]["sim / latency [hard]"] == ["passed", "not selected", "passed", None]
    page = (k_reports / "out" / "trend.html").read_text()
    summary = re.search(r'<p id="summary">(.*?)</p>', page).group(1)
    changes = re.search(r"<ul id='changes'>(.*?)</ul>", page).group(1)
    kinds = re.findall(r'<li data-kind="([^"]+)">', changes)
    assert sorted(kinds) == ["INCOMPLETE", "REGRESSION", "fixed", *["not selected"] *
                             len(left_out)], kinds
    for kind in ("REGRESSION", "INCOMPLETE", "fixed", "not selected"):
        said = int(re.search(rf"(\d+) {kind}\b", summary.split("changes listed:")[1]).group(1))
        assert said == kinds.count(kind), (kind, summary, kinds)
    assert "regression 1, fixed 1, ok 0, incomplete 1" in summary
    assert ("#1 → #2 (r1 → r2): not selected in NEW (-k &#x27;test_wake and hard&#x27;): "
            "sim / latency [hard]") in changes
    assert r.stdout.splitlines()[-1] == f"trend: {html_text.unescape(summary)}"
    assert re.search(r'class="outcome not_selected[^"]*">not selected<', page)
