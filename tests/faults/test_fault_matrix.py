"""The fault matrix (tests/faults/matrix.py): each real fault gives the verdict, exit code
and leading message the verdict table promises; results.json, junit.xml, index.html, the run
directory's name, `latest` and the exit code agree; no process and no temp file of the run
is left behind; every test the run said finished is kept."""

import re

import pytest

from tests.faults.cases import CASES
from tests.faults.matrix import JUNIT, Outcome, finished_tests

EXIT = {"pass": 0, "fail": 1, "error": 2}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault(name, tmp_path):
    out, want = CASES[name](tmp_path)
    said = out.stderr + out.stdout
    where = f"{name}: exit {out.code}\n{said[-3000:]}"
    assert out.code == want.code, where
    assert out.leftover == [], f"processes left: {out.leftover}"
    assert out.temp_left == [], f"temp files left: {out.temp_left}"
    if want.swept:  # the fault really left something, and the next run removed it
        assert any(re.fullmatch(r"tsfrig-sim-flash-\d+-\w{8}", p) for p in out.left_by_fault), \
            out.left_by_fault
        assert out.next_run is not None and out.next_run.code == 0, out.next_run
    if want.message:
        assert re.search(want.message, out.messages() + "\n" + said, re.M), where
    assert "Traceback" not in out.stderr, where  # causes are said in one line, never a trace
    if want.wrong:  # a fix line names the likely cause, not one that points elsewhere
        assert not re.search(want.wrong, out.messages() + "\n" + said), where
    assert out.tmp_files == [], f"temp files left in the report dir: {out.tmp_files}"
    if out.fallback is not None:  # the run dir could not take the results: kept elsewhere
        _kept_elsewhere(out, want)
        return
    if want.within_s is not None:
        assert out.seconds < want.within_s, f"{name}: {out.seconds:.0f} s to verdict"
    if out.doc is None:  # nothing could be written (full disk): the one line said why
        assert want.verdict == "error"
        return
    _agree(out, want)


def _kept_elsewhere(out: Outcome, want) -> None:
    """A full disk: the error names the file holding every finished test and the verdict;
    the run directory's own results never read as a pass, and `latest` stays."""
    assert out.fallback_path in out.stderr, out.stderr
    assert out.fallback["verdict"] == want.verdict
    kept = {t["nodeid"].split("::")[-1] for t in out.fallback["tests"]}
    assert finished_tests(out.stderr) <= kept, (finished_tests(out.stderr), kept)
    assert out.doc is None or out.doc["verdict"] == "incomplete", out.doc["verdict"]
    assert out.latest == "" and out.html == ""
    if out.junit:  # junit.xml, if the disk took it, has every kept test
        assert set(out.junit) == kept, (out.junit, kept)


def _agree(out: Outcome, want) -> None:
    """One verdict everywhere: results.json, each test's junit.xml entry, index.html, exit."""
    doc = out.doc
    assert doc["verdict"] == want.verdict, out.outcomes()
    if want.verdict in ("interrupted", "incomplete"):
        assert doc["tests"], "the tests that ran are kept"
        assert all(t["outcome"] == "passed" for t in doc["tests"])
        if want.verdict == "incomplete":  # killed: nothing after the kill could be written
            return
        assert out.junit_props.get("tsfrig.interrupted") == doc["interrupted"], out.junit_props
    else:
        assert out.code == EXIT[doc["verdict"]]
    for test, outcome in out.outcomes().items():
        assert out.junit.get(test) == JUNIT[outcome], (test, outcome, out.junit)
    assert set(out.junit) == set(out.outcomes()), out.junit  # only tests that ran, no more
    assert out.junit_props.get("tsfrig.verdict") == doc["verdict"], out.junit_props
    assert f'id="verdict">{doc["verdict"].upper()}<' in out.html
    assert out.latest == doc["run_id"] and out.run_dirs == [doc["run_id"]], (out.latest,
                                                                            out.run_dirs)
    if doc["targets"]:  # named by the build it measured
        assert re.fullmatch(r"\d{8}-\d{6}-.+-[0-9a-f]{4}", doc["run_id"]), doc["run_id"]
    outcomes = list(out.outcomes().values())
    if want.verdict == "fail":
        assert "failed" in outcomes and "error" not in outcomes, outcomes
    if want.verdict == "error":
        assert "error" in outcomes and "failed" not in outcomes, outcomes
    if want.passed_after:
        assert "passed" in outcomes, outcomes
