"""The suite's power: each firmware mutant (one ThreadSafeFlag defect) must fail the
scenario for the clause it breaks, and the unmodified build must pass. Runs the real
`tsfrig run` against the simulated bench with the mutant as the firmware overlay."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mutants import MUTANTS, write_overlay

REPO = Path(__file__).resolve().parents[2]
KIND = "hard"  # one set source keeps the self-test short; the suite itself runs them all


def run_suite(tmp_path: Path, overlay: Path | None, k: str) -> tuple[int, dict[str, dict]]:
    cmd = [sys.executable, "-m", "harness.cli", "run", "--report-dir", str(tmp_path / "r"),
           "-k", k]
    if overlay:
        cmd += ["--overlay", str(overlay)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    results = tmp_path / "r" / "latest" / "results.json"
    assert results.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(results.read_text())
    return proc.returncode, {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}


def test_unmodified_build_passes(tmp_path):
    code, tests = run_suite(tmp_path, None, KIND)
    failed = {n: t["message"] for n, t in tests.items() if t["outcome"] not in ("passed",)}
    assert code == 0 and not failed, failed
    assert len(tests) >= 9


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught_by_its_scenario(tmp_path, mutant):
    expected_test, _ = MUTANTS[mutant]
    overlay = write_overlay(mutant, tmp_path / "overlay")
    code, tests = run_suite(tmp_path, overlay, KIND)
    assert code == 1, f"suite passed on mutant {mutant}: it cannot see this defect"
    mine = [t for n, t in tests.items() if n.startswith(expected_test + "[")]
    assert mine, f"{expected_test} did not run: {sorted(tests)}"
    assert all(t["outcome"] == "failed" for t in mine), \
        f"{expected_test} did not fail on mutant {mutant}: {[t['outcome'] for t in mine]}"
    # the firmware identity in the report names the overlay, so a run can't be mistaken
    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    assert doc["targets"][0]["firmware"]["overlay"] == str(overlay.resolve())


def test_known_issue_runs_as_xfail_and_is_still_reported(tmp_path):
    """A finding the team accepted for a firmware (known_issues in the rig config) doesn't
    fail the run, but the report still says what happened."""
    cfg = (REPO / "rig_config.yaml").read_text().replace(
        "known_issues: {}", 'known_issues: {"test_wake[hard]": "accepted for this build"}')
    (tmp_path / "rig.yaml").write_text(cfg)
    overlay = write_overlay("no_wake", tmp_path / "overlay")
    cmd = [sys.executable, "-m", "harness.cli", "run", "--config", str(tmp_path / "rig.yaml"),
           "--overlay", str(overlay), "--report-dir", str(tmp_path / "r"), "-k",
           "test_wake and hard"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    (test,) = doc["tests"]
    assert test["outcome"] == "xfailed" and "no wake within" in test["message"]
