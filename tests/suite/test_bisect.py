"""bisect-step: git bisect run finds the commit that broke ThreadSafeFlag, and tsfrig's exit
codes map onto git bisect's (only 0 and 1 are verdicts; anything the bench could not measure
skips the commit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.cli import bisect
from harness.sim.firmware import find_executable
from tests.mutants import LOADER, MUTANTS

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "rig_config.yaml"
K = "test_wake and hard"  # one scenario, one set source: a step takes ~2 s

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=repo,
                          env=GIT_ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"git {args}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def overlay_source(n: int) -> str:
    """Commit n's asyncio overlay: 1-3 the build's own flag, 4-6 one that never wakes."""
    if n <= 3:
        return LOADER.format(name=f"good{n}") + "\nclass ThreadSafeFlag(_Base):\n    pass\n"
    return LOADER.format(name=f"no_wake{n}") + MUTANTS["no_wake"][1]


@pytest.mark.parametrize("run_code, git_code", [
    (0, 0), (1, 1), (2, 125), (5, 128), (130, 125), (143, 125), (3, 125), (255, 125)])
def test_exit_code_mapping(run_code, git_code):
    assert bisect.map_exit(run_code) == git_code


def test_verdict_line():
    assert bisect.describe(1) == "bad (exit 1: firmware failure)"
    assert bisect.describe(0) == "good (exit 0: passed)"
    assert bisect.describe(2) == "skip (exit 2: bench fault or bad input)"


def test_failed_build_skips(tmp_path, capsys):
    code = bisect.bisect_step("exit 3", None, None, CONFIG, K, tmp_path / "r", tmp_path)
    assert code == 125
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tsfrig bisect-step: skip (the build failed, exit 3: exit 3)"]
    assert not (tmp_path / "r").exists()  # nothing ran


def test_build_timeout_skips(tmp_path, capsys):
    code = bisect.bisect_step("sleep 5", None, None, CONFIG, K, None, tmp_path,
                              build_timeout=0.2)
    assert code == 125
    assert "did not finish in 0.2 s" in capsys.readouterr().err


def test_build_without_executable_skips(tmp_path, capsys):
    code = bisect.bisect_step("true", Path("build/micropython"), None, CONFIG, K, None, tmp_path)
    assert code == 125
    assert "no executable at" in capsys.readouterr().err


TSFRIG = [sys.executable, "-m", "harness.cli", "bisect-step"]


# mistakes in a bisect-step command line, each of which would repeat on every commit
USAGE_ERRORS = {
    "unknown option": ["--bogus"],
    "extra argument": ["hard"],
    "bad option value": ["--build-timeout", "soon"],
    "negative timeout": ["--build-timeout", "-1"],
    "missing option value": ["-k"],
    "missing config file": ["--config", "nope.yaml"],
    "invalid config": ["--config", "bad.yaml"],
    "missing overlay": ["--overlay", "no-such-dir"],
    "report dir under a file": ["--report-dir", "file/r"],
    "malformed -k": ["-k", "hard and"],
    "-k selects nothing": ["-k", "no_such_scenario"],
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
@pytest.mark.parametrize("entry", ["tsfrig", "module"])
def test_usage_error_aborts_the_bisect(tmp_path, case, entry):
    """argparse's exit 2 would read as "bad" to git bisect, a skip (125) on every commit as
    "cannot bisect": a mistake in the command stops the bisect (128) with one line naming it,
    before any build runs."""
    (tmp_path / "bad.yaml").write_text("version: 1\ntargets: [{name: sim, bogus_key: 1}]\n")
    (tmp_path / "file").write_text("")
    head = TSFRIG if entry == "tsfrig" else [sys.executable, "-m", "harness.cli.bisect"]
    built = tmp_path / "built"
    proc = subprocess.run([*head, "--build", f"touch {built}", *USAGE_ERRORS[case]],
                          cwd=tmp_path, env=GIT_ENV, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 128, (case, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tsfrig bisect-step: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not built.exists(), "a usage error must stop before the build"


def test_git_bisect_run_stops_on_a_typo(tmp_path):
    """Through git itself: a typo in the step's command stops `git bisect run` at the first
    step, with no commit marked bad."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for n in range(1, 4):
        (repo / "f").write_text(str(n))
        git(repo, "add", "f")
        git(repo, "commit", "-q", "-m", f"commit {n}")
    git(repo, "bisect", "start", "HEAD", "HEAD~2")
    proc = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "bisect", "run", *TSFRIG,
                           "--bogus"], cwd=repo, env=GIT_ENV, capture_output=True, text=True,
                          timeout=120)
    log = git(repo, "bisect", "log")
    git(repo, "bisect", "reset")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "exit code 128" in out, out
    marked = [ln for ln in log.splitlines() if ln.startswith(("git bisect bad",
                                                              "git bisect good",
                                                              "git bisect skip"))]
    assert marked == [], log  # the step judged no commit
    assert "first bad commit" not in out, out
    assert "unrecognized arguments: --bogus" in out, out


def test_derived_config_points_every_sim_target_at_the_firmware(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "ov").mkdir()
    (cfg / "rig.yaml").write_text(yaml.safe_dump({"version": 1, "targets": [
        {"name": "a", "kind": "sim", "firmware": {"executable": "auto", "overlay": "ov"}},
        {"name": "b", "kind": "sim"}]}))
    fw = tmp_path / "mp"
    out = bisect.derive_config(cfg / "rig.yaml", fw, tmp_path)
    data = yaml.safe_load(out.read_text())
    assert [t["firmware"]["executable"] for t in data["targets"]] == [str(fw)] * 2
    assert data["targets"][0]["firmware"]["overlay"] == str(cfg / "ov")


def test_firmware_built_by_the_step_is_the_one_run(tmp_path):
    """--build makes the executable, --firmware names it: the run uses it (good)."""
    exe = find_executable()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli.bisect", "--build",
         f"mkdir -p build && cp {exe} build/micropython", "--firmware", "build/micropython",
         "-k", K, "--report-dir", str(tmp_path / "r")],
        cwd=tmp_path, env=GIT_ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "tsfrig bisect-step: good (exit 0: passed)"
    assert "Warning" not in proc.stderr, proc.stderr  # (pytest's PytestAssertRewriteWarning)
    results = (tmp_path / "r" / "latest" / "results.json").read_text()
    assert str(tmp_path / "build" / "micropython") in results


def test_git_bisect_run_names_the_first_bad_commit(tmp_path):
    repo = tmp_path / "repo"
    (repo / "asyncio").mkdir(parents=True)
    git(repo, "init", "-q")
    commits = []
    for n in range(1, 7):
        (repo / "asyncio" / "__init__.py").write_text(overlay_source(n))
        git(repo, "add", "asyncio/__init__.py")
        git(repo, "commit", "-q", "-m", f"commit {n}")
        commits.append(git(repo, "rev-parse", "HEAD").strip())

    git(repo, "bisect", "start", commits[5], commits[0])
    t0 = time.monotonic()
    proc = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "bisect", "run", sys.executable, "-m",
         "harness.cli.bisect", "--build", "true", "--overlay", str(repo), "--config", str(CONFIG),
         "-k", K, "--report-dir", str(tmp_path / "r")],
        cwd=repo, env=GIT_ENV, capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    git(repo, "bisect", "reset")
    assert proc.returncode == 0, out[-4000:]
    assert f"{commits[3]} is the first bad commit" in out, out[-4000:]
    verdicts = [line for line in proc.stdout.splitlines()
                if line.startswith("tsfrig bisect-step: ")]
    assert verdicts and all(("good (exit 0" in v or "bad (exit 1" in v) for v in verdicts)
    print(f"\ngit bisect: {len(verdicts)} steps over 6 commits in {wall:.1f} s: {verdicts}")
