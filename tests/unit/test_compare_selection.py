"""`tsfrig compare` of runs that selected part of the suite (-k, --target) or of one run on
both sides: what a run did not select is 'not selected', never a bench fault."""

import json
from pathlib import Path

import pytest

from harness.reports.results import validate
from tests.unit.runs import WAKE_FAIL, lines, run_doc, scenario_of, write_run

# ---- selection: -k, --target, one run on both sides ---------------------------------------

BASE_K, NEW_K = "hard and (test_wake or test_latency)", "test_wake and hard"


@pytest.fixture(scope="module")
def k_runs(tmp_path_factory, tsfrig) -> dict[str, Path]:
    """Two real runs on the simulated bench: BASE measures wake and latency, NEW's -k leaves
    latency out. Each run's reports directory has its `latest`."""
    tmp = tmp_path_factory.mktemp("k")
    runs = {}
    for name, k in (("base", BASE_K), ("new", NEW_K)):
        r = tsfrig("run", "-k", k, "--report-dir", str(tmp / name), timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        runs[name] = tmp / name / "latest"
    return runs


def test_run_records_its_selection(k_runs):
    doc = json.loads((k_runs["new"] / "results.json").read_text())
    validate(doc)
    assert doc["selection"]["k"] == NEW_K and doc["selection"]["target"] is None
    assert "sim / latency [hard]" in doc["selection"]["deselected"]
    assert "sim / wake [hard]" not in doc["selection"]["deselected"]
    measured = {f"{t['target']} / {t['scenario']} [{t['irq_kind']}]" for t in doc["tests"]}
    assert measured == {"sim / wake [hard]"}
    assert len(doc["selection"]["deselected"]) >= 20  # the rest of the suite


def test_deselected_by_k_is_not_selected_not_a_bench_fault(k_runs, tmp_path, compare):
    r = compare(k_runs["base"], k_runs["new"], "--out", str(tmp_path / "c.html"))
    out = lines(r)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"not selected in NEW (-k '{NEW_K}'): sim / latency [hard]" in out
    assert not any(x.startswith(("INCOMPLETE", "REGRESSION")) for x in out), out
    assert out[-1] == (f"compare: PASS: 1 scenario measured, 0 regressions; 1 scenario not "
                       f"selected in NEW (-k '{NEW_K}')")
    html = (tmp_path / "c.html").read_text()
    assert 'id="verdict">PASS' in html and "bench fault" not in html.split('"not-selected"')[1]


def test_not_selected_beside_a_regression_still_fails(k_runs, tmp_path, compare):
    doc = json.loads((k_runs["new"] / "results.json").read_text())
    t = scenario_of(doc, "wake")
    t["outcome"], t["message"], doc["verdict"] = "failed", WAKE_FAIL, "fail"
    r = compare(k_runs["base"], write_run(tmp_path / "n", doc))
    assert r.returncode == 1, r.stdout
    assert lines(r)[-1] == (f"compare: FAIL: 1 regression; 1 scenario not selected in NEW "
                            f"(-k '{NEW_K}')")


def test_new_that_selected_nothing_of_base_cannot_be_compared(k_runs, tmp_path, compare):
    doc = json.loads((k_runs["base"] / "results.json").read_text())
    wake = scenario_of(doc, "wake")
    doc["tests"].remove(wake)
    doc["selection"] = {"k": "latency", "target": None, "deselected": ["sim / wake [hard]"]}
    r = compare(write_run(tmp_path / "b", json.loads((k_runs["new"] / "results.json")
                                                     .read_text())),
                write_run(tmp_path / "n", doc))
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert "selected none of the scenarios BASE" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_other_target_left_out_by_target_is_not_selected(base, tmp_path, compare):
    two = run_doc("base-2")
    two["targets"].append({**two["targets"][0], "name": "pico"})
    two["tests"] += [{**t, "target": "pico"} for t in two["tests"]]
    new = run_doc("new-run")
    new["selection"] = {"k": None, "target": "sim", "deselected": []}
    r = compare(write_run(tmp_path / "b", two), write_run(tmp_path / "n", new))
    assert r.returncode == 0, r.stdout
    assert "not selected in NEW (--target sim): pico / wake [hard]" in lines(r)
    assert lines(r)[-1].endswith("; 4 scenarios not selected in NEW (--target sim)")


@pytest.mark.parametrize("how", ["same path", "via latest"])
def test_one_run_on_both_sides_is_said(k_runs, tmp_path, how, compare):
    run = k_runs["new"].resolve()
    other = run if how == "same path" else k_runs["new"]
    r = compare(run, other, "--out", str(tmp_path / "c.html"))
    out = lines(r)
    assert r.returncode == 0, r.stdout + r.stderr  # a complete run equals itself
    assert out[0].startswith(f"WARNING BASE and NEW are the same run ({run.name})"), out
    assert out[-1].endswith("; BASE and NEW are the same run")
    assert "WARNING BASE and NEW are the same run" in (tmp_path / "c.html").read_text()


def test_runs_without_a_selection_record_stay_incomplete(base, new_doc, tmp_path, compare):
    """A run from before results.json recorded its selection can't vouch for what is
    missing: that stays incomplete (no guessing from its names)."""
    new_doc["tests"].remove(scenario_of(new_doc, "auto_reset"))
    assert "selection" not in new_doc
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 2 and not any(x.startswith("not selected") for x in lines(r))
    assert lines(r)[-1].startswith("compare: INCOMPLETE: 1 scenario not measured in NEW (bench "
                                   "fault, interrupted run, or a -k that NEW's results.json "
                                   "does not record)")
