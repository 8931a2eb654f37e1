"""`tsfrig compare` as a CI gate, on results.json documents built here (no bench needed):
exit 0 only when NEW measured every BASE scenario with no regression, 1 on a regression, 2 when
NEW is incomplete or the runs can't be compared; identity lines first, a summary line last; and
unwritable or missing run directories as one line on stderr, never a traceback."""

import json
import subprocess
from pathlib import Path

import pytest

from harness.reports.compare import identity_lines
from tests.unit.runs import (
    VERSION,
    WAKE_FAIL,
    lines,
    one_line_error,
    run_doc,
    scenario_of,
    write_run,
)

# ---- verdicts ---------------------------------------------------------------------------


def test_same_build_passes_with_identity_first_and_summary_last(base, new_doc, tmp_path, compare):
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 0, r.stdout + r.stderr
    out = lines(r)
    assert out[0] == f"BASE base-run: sim {VERSION} build aaaa1111; run verdict pass"
    assert out[1] == f"NEW new-run: sim {VERSION} build bbbb2222; run verdict pass"
    assert out[-1] == "compare: PASS: 4 scenarios measured, 0 regressions"
    assert not any(x.startswith(("REGRESSION", "INCOMPLETE")) for x in out)
    html = (tmp_path / "new" / "compare.html").read_text()
    assert 'id="verdict">PASS' in html
    assert f"BASE base-run: sim {VERSION} build aaaa1111" in html
    assert f"NEW new-run: sim {VERSION} build bbbb2222" in html


@pytest.mark.parametrize("outcome", ["failed", "xfailed"])
def test_passed_then_failed_is_a_regression_with_its_cause(base, new_doc, tmp_path, outcome,
                                                           compare):
    t = scenario_of(new_doc, "wake")
    t["outcome"], t["message"] = outcome, f"wake [hard] on sim: {WAKE_FAIL}\n  - more"
    new_doc["verdict"] = "fail"
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 1, r.stdout
    assert f"REGRESSION sim / wake [hard]: passed → {outcome}: {WAKE_FAIL}" in lines(r)
    assert lines(r)[-1] == "compare: FAIL: 1 regression"
    assert 'id="verdict">FAIL' in (tmp_path / "new" / "compare.html").read_text()


def test_failing_in_both_runs_is_still_failing_not_a_regression(tmp_path, compare):
    docs = [run_doc("base-run"), run_doc("new-run")]
    for d in docs:
        t = scenario_of(d, "wake")
        t["outcome"], t["message"], d["verdict"] = "failed", WAKE_FAIL, "fail"
    r = compare(write_run(tmp_path / "b", docs[0]), write_run(tmp_path / "n", docs[1]))
    assert r.returncode == 0, r.stdout
    assert f"still failing sim / wake [hard]: failed → failed: {WAKE_FAIL}" in lines(r)


def test_changed_second_waiter_is_a_regression(base, new_doc, tmp_path, compare):
    scenario_of(new_doc, "second_waiter")["details"]["second_waiter_observed"] = "raises"
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 1, r.stdout
    assert ("REGRESSION sim / second_waiter [hard]: second concurrent waiter was second-wins, "
            "now raises") in lines(r)


def test_bench_fault_in_new_is_incomplete(base, new_doc, tmp_path, compare):
    t = scenario_of(new_doc, "auto_reset")
    t["outcome"], t["message"] = "error", "bench fault (not a firmware verdict): board mute"
    new_doc["verdict"], new_doc["bench_fault"] = "error", "board mute"
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 2, r.stdout
    out = lines(r)
    assert "INCOMPLETE bench fault in NEW: sim / auto_reset [hard] (BASE passed): board mute" \
        in out
    assert "INCOMPLETE NEW run error: board mute; rerun NEW" in out
    assert out[-1].startswith("compare: INCOMPLETE: 1 scenario not measured in NEW")
    assert out[-1].endswith("not a firmware verdict")
    assert 'id="verdict">INCOMPLETE' in (tmp_path / "new" / "compare.html").read_text()


def test_scenario_missing_from_new_is_incomplete(base, new_doc, tmp_path, compare):
    new_doc["tests"].remove(scenario_of(new_doc, "auto_reset"))
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 2, r.stdout
    assert "INCOMPLETE missing from NEW: sim / auto_reset [hard] (BASE passed)" in lines(r)


def test_skipped_in_new_is_incomplete_but_skipped_in_base_is_not_required(tmp_path, compare):
    b, n = run_doc("base-run"), run_doc("new-run")
    scenario_of(b, "wake")["outcome"] = "skipped"
    n["tests"].remove(scenario_of(n, "wake"))  # BASE skipped it: NEW need not run it
    r = compare(write_run(tmp_path / "b", b), write_run(tmp_path / "n", n))
    assert r.returncode == 0, r.stdout
    assert lines(r)[-1] == "compare: PASS: 3 scenarios measured, 0 regressions"
    t = scenario_of(n, "auto_reset")
    t["outcome"], t["message"] = "skipped", "board gone: no step recovered it"
    r = compare(write_run(tmp_path / "b2", b), write_run(tmp_path / "n2", n))
    assert r.returncode == 2, r.stdout
    assert ("INCOMPLETE skipped in NEW: sim / auto_reset [hard] (BASE passed): board gone: "
            "no step recovered it") in lines(r)


@pytest.mark.parametrize("verdict", ["interrupted", "aborted-by-a-newer-harness"])
def test_new_run_not_run_to_the_end_is_incomplete(base, new_doc, tmp_path, verdict, compare):
    new_doc["verdict"] = verdict
    new = write_run(tmp_path / "new", new_doc, check_schema=False)  # verdicts the schema may lack
    r = compare(base, new)
    assert r.returncode == 2, r.stdout + r.stderr
    out = lines(r)
    assert out[1].endswith(f"; run verdict {verdict}")
    assert any(x.startswith(f"INCOMPLETE NEW run {verdict}: ") for x in out)
    assert out[-1] == f"compare: INCOMPLETE: NEW run {verdict}; not a firmware verdict"


def test_bench_fault_in_base_cannot_pass_a_new_failure(tmp_path, compare):
    b, n = run_doc("base-run", verdict="error"), run_doc("new-run")
    scenario_of(b, "wake")["outcome"] = "error"
    t = scenario_of(n, "wake")
    t["outcome"], t["message"], n["verdict"] = "failed", WAKE_FAIL, "fail"
    r = compare(write_run(tmp_path / "b", b), write_run(tmp_path / "n", n))
    assert r.returncode == 2, r.stdout
    assert any(x.startswith("INCOMPLETE bench fault in BASE: sim / wake [hard] failed in NEW")
               for x in lines(r))


def test_regression_and_missing_scenario_exit_1_and_show_both(base, new_doc, tmp_path, compare):
    t = scenario_of(new_doc, "wake")
    t["outcome"], t["message"], new_doc["verdict"] = "failed", WAKE_FAIL, "fail"
    new_doc["tests"].remove(scenario_of(new_doc, "auto_reset"))
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 1, r.stdout
    out = lines(r)
    assert f"REGRESSION sim / wake [hard]: passed → failed: {WAKE_FAIL}" in out
    assert "INCOMPLETE missing from NEW: sim / auto_reset [hard] (BASE passed)" in out
    assert out[-1] == ("compare: FAIL: 1 regression; also incomplete: 1 scenario not measured "
                       "in NEW (bench fault, interrupted run, or a -k that NEW's results.json "
                       "does not record)")


def test_new_with_no_target_recorded_is_incomplete(base, new_doc, tmp_path, compare):
    new_doc.update(verdict="error", bench_fault="pigpiod unreachable", targets=[], tests=[])
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 2, r.stdout + r.stderr
    out = lines(r)
    assert out[1] == ("NEW new-run: no target identity recorded (bench fault: pigpiod "
                      "unreachable); run verdict error")
    assert out[-1].startswith("compare: INCOMPLETE: 4 scenarios not measured in NEW")


def test_runs_with_no_common_target_cannot_be_compared(base, new_doc, tmp_path, compare):
    new_doc["targets"][0]["name"] = "pico"
    for t in new_doc["tests"]:
        t["target"] = "pico"
    r = compare(base, write_run(tmp_path / "new", new_doc))
    assert r.returncode == 2 and r.stdout == ""
    assert "share no target" in r.stderr and "pico" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ---- identity ---------------------------------------------------------------------------


def test_identity_falls_back_from_build_hash_to_build_id_to_unknown():
    doc = run_doc("r1", build_hash="cafe0123")
    assert identity_lines("BASE", doc) == [
        f"BASE r1: sim {VERSION} build cafe0123; run verdict pass"]
    del doc["targets"][0]["firmware"]["build_hash"]
    doc["targets"][0]["firmware"]["overlay"] = "/tmp/slow_wake"
    assert identity_lines("NEW", doc) == [
        f"NEW r1: sim {VERSION} build linux standard, overlay /tmp/slow_wake; run verdict pass"]
    doc["targets"][0]["firmware"] = {}
    assert identity_lines("NEW", doc) == [
        "NEW r1: sim unknown version unknown build; run verdict pass"]


# ---- unwritable, missing, unreadable ------------------------------------------------------


def test_compare_into_an_unwritable_place_is_one_line(base, new_doc, tmp_path, compare):
    new = write_run(tmp_path / "new", new_doc)
    (new / "compare.html").mkdir()  # root ignores chmod; a directory can't be written as a file
    r = compare(base, new)
    one_line_error(r, f"tsfrig compare: cannot write {new / 'compare.html'} (Is a directory)",
                   "--out FILE")
    assert r.stdout == ""
    out = tmp_path / "elsewhere.html"
    r = compare(base, new, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"compare report: {out}" in lines(r) and 'id="verdict">PASS' in out.read_text()


def test_report_into_an_unwritable_place_is_one_line(base, tsfrig):
    (base / "index.html").mkdir()
    r = tsfrig("report", str(base))
    one_line_error(r, f"tsfrig report: cannot write {base / 'index.html'} (Is a directory)",
                   "make the run directory writable")


@pytest.fixture
def read_only_run(tmp_path: Path, new_doc: dict):
    """A run directory on a read-only tmpfs: the unwritable case as a CI runner meets it."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mount refused (not root, or no CAP_SYS_ADMIN): the read-only tmpfs case "
                    "needs it; the directory-in-the-way cases above still cover the exit code")
    try:
        (mnt / "results.json").write_text(json.dumps(new_doc))
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_read_only_run_directory_is_one_line(base, read_only_run, tsfrig, compare):
    r = compare(base, read_only_run)
    one_line_error(r, "cannot write", "(Read-only file system)", "--out FILE")
    r = tsfrig("report", str(read_only_run))
    one_line_error(r, "cannot write", "(Read-only file system)")


@pytest.mark.parametrize("which", ["base", "new"])
def test_missing_run_directory_is_one_line(base, tmp_path, which, tsfrig, compare):
    missing = tmp_path / "no-such-run"
    label = which.upper()
    args = (base, missing) if which == "new" else (missing, base)
    one_line_error(compare(*args), f"tsfrig compare: {label} {missing}: no such run directory")
    one_line_error(tsfrig("report", str(missing)), f"{missing}: no such run directory")


def test_unreadable_results_json_is_one_line(base, tmp_path, tsfrig, compare):
    broken = tmp_path / "broken"
    (broken / "results.json").mkdir(parents=True)
    one_line_error(compare(base, broken), "cannot read it (Is a directory)")
    one_line_error(tsfrig("report", str(broken)), "cannot read", "(Is a directory)")
    other = run_doc("x")
    del other["tests"]
    bad = write_run(tmp_path / "bad", other, check_schema=False)
    one_line_error(compare(base, bad), "'tests' is a required property")
