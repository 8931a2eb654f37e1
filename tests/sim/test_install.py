"""tsfrig as a firmware team installs it: the wheel, in a fresh venv, run from an empty
directory with nothing but what `tsfrig init` writes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(argv: list, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{argv}: {r.stderr[-2000:]}"
    return r


@pytest.mark.slow
def test_the_wheel_runs_the_suite_from_an_empty_directory(tmp_path):
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist",
         REPO], tmp_path, 300)
    wheel = next((tmp_path / "dist").glob("tsfrig-*.whl"))
    run([sys.executable, "-m", "venv", tmp_path / "venv"], tmp_path, 120)
    run([tmp_path / "venv/bin/pip", "install", "-q", wheel], tmp_path, 600)
    work = tmp_path / "work"
    work.mkdir()
    tsfrig = tmp_path / "venv/bin/tsfrig"
    run([tsfrig, "init"], work, 60)
    run([tsfrig, "run", "-k", "test_wake"], work, 300)
    results = json.loads((work / "reports/latest/results.json").read_text())
    assert results["verdict"] == "pass"
    assert {t["scenario"] for t in results["tests"]} == {"wake"}
    # the suite ran from the wheel, not from this checkout
    assert str(REPO) not in json.dumps(results)
