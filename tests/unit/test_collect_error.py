"""A suite that does not collect (a SyntaxError, an import that fails) measured nothing: the
run is the harness's error, exit 2, with the cause first in results.json, junit.xml and the
console's verdict line; never a pass and never `interrupted`, with or without xdist, run by
pytest or by `tsfrig run`. No bench starts: collection fails before any test."""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.shipped import SUITE

REPO = Path(__file__).resolve().parents[2]
RIG = f"--rig-config={REPO / 'rig_config.yaml'}"
BROKEN = {  # appended to the suite's file: what a person's edit breaks, and what it raises
    "syntax": ("def broken(:", "SyntaxError: invalid syntax"),
    "import": ("import no_such_module_xyz",
               "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
}
RUNS = {"serial": [], "xdist": ["-n", "2", "--dist", "loadgroup"]}


def ROOT(suite: Path) -> str:  # noqa: N802 (reads as the option it is)
    """pytest's rootdir pinned to the suite's folder, so its test ids (and the cause) name
    `test_flag.py` wherever this checkout is: left to pytest, the rootdir is the common
    ancestor of the suite and the --rig-config path, /tmp for a clone under /tmp."""
    return f"--rootdir={suite}"


def break_suite(file: Path, broken: str, named: str = "test_flag.py") -> str:
    """Append the broken line to a copy of the suite's file; the cause the run must lead with
    (the file named as its test ids name it)."""
    line, error = BROKEN[broken]
    source = (SUITE / "test_flag.py").read_text()
    file.write_text(source + line + "\n")
    return f"the suite did not collect: {named}:{len(source.splitlines()) + 1}: {error}"


def assert_said_everywhere(cause: str, code: int, stderr: str, run_dir: Path) -> None:
    """Exit 2; the verdict line, results.json and junit.xml lead with the cause; nothing
    says `interrupted` or `pass`."""
    assert code == 2, stderr
    said = [ln for ln in stderr.splitlines() if ln.startswith("tsfrig: verdict")]
    assert said == [f"tsfrig: verdict error: {cause} (0 passed, 0 failed, 0 errors); not a "
                    "firmware verdict"], stderr
    assert not [ln for ln in stderr.splitlines()
                if ln.startswith("tsfrig:") and "interrupted" in ln], stderr
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["verdict"] == "error" and doc["bench_fault"] == cause, doc
    assert "interrupted" not in doc and doc["tests"] == []
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["tsfrig.verdict"] == "error" and props["tsfrig.cause"] == cause, props
    assert "tsfrig.interrupted" not in props
    errs = [e.text for e in suite.findall("system-err")]
    assert f"tsfrig: verdict error: {cause}; not a firmware verdict" in errs, errs


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("broken", BROKEN)
def test_pytest_on_a_suite_that_does_not_collect_is_exit_2_with_its_cause(tmp_path, run,
                                                                           broken):
    suite = tmp_path / "suite"
    suite.mkdir()
    cause = break_suite(suite / "test_flag.py", broken)
    run_dir = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "pytest", str(suite), *RUNS[run], "-q",
                          "-p", "no:cacheprovider", RIG, ROOT(suite), f"--report-dir={run_dir}",
                          f"--junitxml={run_dir / 'junit.xml'}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert_said_everywhere(cause, out.returncode, out.stderr, run_dir)


@pytest.mark.parametrize("run", RUNS)
def test_pytest_without_a_report_dir_still_says_the_verdict(tmp_path, run):
    suite = tmp_path / "suite"
    suite.mkdir()
    cause = break_suite(suite / "test_flag.py", "syntax")
    out = subprocess.run([sys.executable, "-m", "pytest", str(suite), *RUNS[run], "-q",
                          "-p", "no:cacheprovider", RIG, ROOT(suite)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"tsfrig: verdict error: {cause} (0 passed, 0 failed, 0 errors); not a firmware " \
           "verdict" in out.stderr.splitlines(), out.stderr


def installed_copy(tmp_path: Path) -> Path:
    """tsfrig as a wheel installs it (its shipped suite copied, not linked), on PYTHONPATH
    from tmp_path/site: its suite can be broken without touching this checkout's."""
    site = tmp_path / "site"
    for package in ("harness", "fixtures"):
        shutil.copytree(REPO / package, site / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return site


def tsfrig_run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("workers", ["0", "2"], ids=["serial", "xdist"])
@pytest.mark.parametrize("broken", BROKEN)
def test_tsfrig_run_of_a_shipped_suite_that_does_not_collect_is_exit_2(tmp_path, broken,
                                                                       workers):
    """The config's known_issues check reads the suite's file first: a SyntaxError there
    leaves the run to say it (a report, not a traceback or a usage error)."""
    site = installed_copy(tmp_path)
    shipped = site / "harness/_shipped/suite/test_flag.py"
    assert not shipped.is_symlink()
    # pytest's rootdir: the common ancestor of the suite and the directory it runs in
    cause = break_suite(shipped, broken, "site/harness/_shipped/suite/test_flag.py")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "rig_config.yaml", work)  # with its `known_issues: {}`
    r = tsfrig_run(site, work, "--report-dir", str(work / "reports"), "-n", workers)
    assert_said_everywhere(cause, r.returncode, r.stderr, work / "reports/latest")
    assert "Traceback" not in r.stderr and "Interrupted" not in r.stdout, r.stdout + r.stderr
    assert (work / "reports/latest/index.html").exists() and "trace:" in r.stdout


HELPER = """ImportError while importing test module '/s/test_flag.py'.
Traceback:
/s/test_flag.py:3: in <module>
    import helper
/s/helper.py:7: in <module>
    from harness import gone
E   ImportError: cannot import name 'gone' from 'harness'"""


@pytest.mark.parametrize("text, cause", [
    (HELPER, "/s/helper.py:7: ImportError: cannot import name 'gone' from 'harness'"),
    ("E   RuntimeError: boom", "test_flag.py: RuntimeError: boom"),  # --tb=no: no frames
    ("import file mismatch:\nimported module 'test_flag' has this __file__ attribute:",
     "test_flag.py: import file mismatch:"),
], ids=["deepest-frame", "no-frames", "no-exception-line"])
def test_the_cause_is_where_it_broke_then_what(text, cause):
    """Read from the report's text alone (all xdist's controller has): the deepest frame,
    the suite's file as its test ids name it, the exception line, else the first line."""
    from fixtures.collection import collection_cause

    assert collection_cause(text, "test_flag.py", Path("/s"), Path("/elsewhere")) == \
        f"the suite did not collect: {cause}"
