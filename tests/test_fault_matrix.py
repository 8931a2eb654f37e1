"""The fault matrix (tests/faults/matrix.py): each real fault gives the verdict, exit code
and leading message the verdict table promises; results.json, junit.xml, index.html and the
exit code agree; no process and no temp file of the run is left behind."""

import re

import pytest

from tests.faults.matrix import CASES, Outcome

EXIT = {"pass": 0, "fail": 1, "error": 2}
JUNIT = {"passed": "passed", "failed": "failed", "error": "error", "skipped": "skipped",
         "xfailed": "skipped"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault(name, tmp_path):
    out, want = CASES[name](tmp_path)
    said = out.stderr + out.stdout
    where = f"{name}: exit {out.code}\n{said[-3000:]}"
    assert out.code == want.code, where
    assert out.leftover == [], f"processes left: {out.leftover}"
    assert out.temp_left == [], f"temp files left: {out.temp_left}"
    if want.message:
        assert re.search(want.message, out.messages() + "\n" + said, re.M), where
    assert "Traceback" not in out.stderr, where  # causes are said in one line, never a trace
    if want.within_s is not None:
        assert out.seconds < want.within_s, f"{name}: {out.seconds:.0f} s to verdict"
    if out.doc is None:  # nothing could be written (full disk): the one line said why
        assert want.verdict == "error"
        return
    _agree(out, want)


def _agree(out: Outcome, want) -> None:
    """One verdict everywhere: results.json, each test's junit.xml entry, index.html, exit."""
    doc = out.doc
    assert doc["verdict"] == want.verdict, out.outcomes()
    if want.verdict in ("interrupted", "incomplete"):
        assert doc["tests"], "the tests that ran are kept"
        assert all(t["outcome"] == "passed" for t in doc["tests"])
        if want.verdict == "incomplete":  # killed: nothing after the kill could be written
            return
    else:
        assert out.code == EXIT[doc["verdict"]]
    for test, outcome in out.outcomes().items():
        assert out.junit.get(test) == JUNIT[outcome], (test, outcome, out.junit)
    assert f'id="verdict">{doc["verdict"].upper()}<' in out.html
    outcomes = list(out.outcomes().values())
    if want.verdict == "fail":
        assert "failed" in outcomes and "error" not in outcomes, outcomes
    if want.verdict == "error":
        assert "error" in outcomes and "failed" not in outcomes, outcomes
    if want.passed_after:
        assert "passed" in outcomes, outcomes
