"""Bad input to the CLI is one line on stderr naming the problem and the fix, exit 2, never
a traceback; a selection with no tests is exit 5 and leaves no report and `latest` alone."""

import functools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tsfrig(tsfrig):
    """`tsfrig` with a 120 s deadline."""
    return functools.partial(tsfrig, timeout=120)


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_pigpio_port_out_of_range(tsfrig):
    r = tsfrig("sim", "--pigpio-port", "70000")
    assert r.returncode == 2
    assert "'70000' is not a TCP port" in one_line(r)


@pytest.mark.parametrize("daemon", ["pigpio", "rgpio"])
def test_busy_port_is_one_line_naming_it_and_leaves_nothing(tmp_path, daemon):
    """A port another process listens on: one line naming the option, the port and the fix,
    exit 2, and no flash directory, VM or socket left behind."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "harness.cli", "sim", f"--{daemon}-port",
                            str(port)], cwd=REPO, env={**os.environ, "TMPDIR": str(tmp_path)},
                           capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - t0
    assert r.returncode == 2, r.stdout + r.stderr
    assert one_line(r) == (f"tsfrig: --{daemon}-port {port} is already in use by another "
                           f"process: stop it, or pass --{daemon}-port 0 for a free port")
    assert r.stdout == ""
    assert list(tmp_path.iterdir()) == []
    print(f"\nbusy --{daemon}-port: exit {r.returncode} in {seconds:.2f} s, left nothing")


def test_report_dir_that_is_a_file(tmp_path, tsfrig):
    (tmp_path / "file").write_text("x")
    r = tsfrig("run", "--report-dir", str(tmp_path / "file"), "-k", "test_wake and hard")
    assert r.returncode == 2
    assert one_line(r).startswith(f"tsfrig: --report-dir {tmp_path / 'file'}: cannot create")


def test_selection_with_no_tests_is_exit_5_and_moves_nothing(tmp_path, tsfrig):
    reports = tmp_path / "reports"
    r = tsfrig("run", "--report-dir", str(reports), "-k", "no_such_scenario")
    assert r.returncode == 5, r.stdout[-1000:] + r.stderr[-1000:]
    assert "no test matched the selection" in r.stderr
    assert list(reports.iterdir()) == []  # no run dir, no `latest`


def test_firmware_that_is_not_an_executable(tmp_path, tsfrig):
    r = tsfrig("run", "--firmware", str(tmp_path / "nope"), "--report-dir", str(tmp_path / "r"),
               "-k", "test_wake and hard")
    assert r.returncode == 2
    assert one_line(r).startswith(f"tsfrig: --firmware {tmp_path / 'nope'}: not an executable")


def test_firmware_names_the_build_a_run_tested(tmp_path, tsfrig):
    """--firmware swaps the build under test on the simulated bench, and results.json names
    it (path and content hash), so two builds' runs can't be mistaken for each other."""
    import hashlib
    import json

    from harness.sim.firmware import find_executable

    build = tmp_path / "micropython-under-test"
    build.write_text(f"#!/bin/sh\nexec {find_executable(None)} \"$@\"\n")
    build.chmod(0o755)
    r = tsfrig("run", "--firmware", str(build), "--report-dir", str(tmp_path / "r"),
               "-k", "test_wake and hard")
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    fw = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())["targets"][0][
        "firmware"]
    assert fw["executable"] == str(build)
    assert fw["build_hash"] == hashlib.sha256(build.read_bytes()).hexdigest()[:12]
    junit = (tmp_path / "r" / "latest" / "junit.xml").read_text()  # the CI's test view too
    assert f'name="sim.firmware.build_hash" value="{fw["build_hash"]}"' in junit


def test_run_directory_is_named_by_the_build_it_measured(tmp_path, tsfrig):
    import json

    r = tsfrig("run", "--report-dir", str(tmp_path / "r"), "-k", "test_wake and hard")
    assert r.returncode == 0, r.stderr[-1000:]
    run = (tmp_path / "r" / "latest").resolve()
    doc = json.loads((run / "results.json").read_text())
    commit = doc["targets"][0]["firmware"]["version"].split()[2][:9]  # "MicroPython <hash> on"
    assert run.name == doc["run_id"] and f"-{commit}-" in run.name, run.name
    assert f"ThreadSafeFlag run {run.name}" in (run / "index.html").read_text()
