"""A labgrid lab on loopback for the shared-lab tests and benchmark: a simulated bench
(`tsfrig sim`), a real labgrid-coordinator, and a real labgrid-exporter serving the bench's
pty through ser2net (RawSerialPort) and its GPIO daemon (NetworkService) as one place; and
`tsfrig run`s through it, their stderr read as it comes. Every process carries a tag in its
environment, so none can be left behind unseen.

A module, not fixtures in conftest.py: benchmarks/bench_labgrid.py drives the same lab
outside pytest."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.benches.sim import read_announcement
from harness.children import die_with_parent, stop_child
from tests.faults.matrix import TAG_VAR, tagged, wait_until

REPO = Path(__file__).resolve().parents[2]
LG_BIN = REPO / ".venv-labgrid" / "bin"
PLACE = "bench-3"

RIG = """\
version: 1
targets:
  - name: lab
    kind: labgrid
    place: {place}
    irq_kinds: [hard, soft, thread]
    wiring:
      stimulus: {{pi_gpio: 17, board_pin: 2}}
      ack: {{board_pin: 3, pi_gpio: 27}}
      reset: {{pi_gpio: 22, board_pin: RUN}}
    budgets:
      latency_us: {{p50: 3000, p90: 30000, p99: 100000, max: 500000}}
      device_timeout_s: 10
"""

EXPORTER = """\
{place}:
  board:
    cls: RawSerialPort
    port: {pty}
    speed: 115200
  gpio:
    cls: NetworkService
    address: {gpio_host}
    port: {gpio_port}
    username: pi
"""


@dataclass
class Lab:
    """The lab's addresses and files, and the environment every process here gets."""

    env: dict[str, str]
    rig: Path
    coordinator_log: Path
    tmp: Path
    tag: str

    def client(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(LG_BIN / "labgrid-client"), *args],
                              env={**self.env, **env}, capture_output=True, text=True,
                              timeout=30)

    def holder(self) -> str:
        """Who labgrid says holds the place (`host/user`), or "None"."""
        r = self.client("-p", PLACE, "show")
        m = re.search(r"^\s*acquired: (\S+)", r.stdout, re.M)
        assert m, r.stdout + r.stderr
        return m.group(1)


@dataclass
class Run:
    """One `tsfrig run` in the background, its stderr read as it comes."""

    proc: subprocess.Popen
    report: Path
    lines: list[tuple[float, str]] = field(default_factory=list)
    stdout: str = ""

    def said(self) -> str:
        return "".join(line for _, line in self.lines) + self.stdout

    def wait_for(self, text: str, timeout_s: float) -> bool:
        """Until a stderr line holds text (the reader thread appends them as they come)."""
        return wait_until(lambda: any(text in line for _, line in self.lines), timeout_s,
                          every_s=0.05)

    def finish(self, timeout_s: float = 180) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def trace_times(self) -> dict[str, float]:
        """Wall-clock times the run's trace gives for acquiring and releasing the place."""
        trace = (self.report / "latest" / "trace.log").read_text()
        return {m.group(1): float(m.group(2)) for m in re.finditer(
            rf"(acquired|releasing) place {PLACE} \(wall clock ([\d.]+)\)", trace)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def missing_tools() -> str:
    """What this machine lacks to run a lab ("" if nothing)."""
    for tool in ("labgrid-coordinator", "labgrid-exporter", "labgrid-client"):
        if not (LG_BIN / tool).exists():
            return f"{LG_BIN / tool} missing: run `make labgrid` (labgrid's own venv)"
    if not (shutil.which("ser2net") or Path("/usr/sbin/ser2net").exists()):
        return "ser2net is not installed: run `make labgrid` (apt-get install ser2net)"
    return ""


@contextlib.contextmanager
def running_lab(tmp: Path) -> Iterator[Lab]:
    """A simulated bench, a coordinator and an exporter serving the bench as place bench-3;
    every process stopped afterwards, and an AssertionError if any of them is left."""
    tag = uuid.uuid4().hex
    port = _free_port()
    env = {**os.environ, TAG_VAR: tag, "LG_COORDINATOR": f"127.0.0.1:{port}",
           "PATH": f"{LG_BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONUNBUFFERED": "1",
           "CI": "1"}
    procs: list[subprocess.Popen] = []
    logs = []

    def start(cmd: list[str], name: str, **kw) -> subprocess.Popen:
        log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 (closed at teardown)
        logs.append(log)
        procs.append(subprocess.Popen(cmd, env=env, cwd=tmp, stdout=log,
                                      stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                                      **kw))
        return procs[-1]

    sim = None
    try:
        sim = subprocess.Popen([sys.executable, "-m", "harness.cli", "sim"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=die_with_parent)
        procs.append(sim)
        bench = read_announcement(sim, 30, "pigpio")
        start([str(LG_BIN / "labgrid-coordinator"), "-l", f"127.0.0.1:{port}"], "coordinator")
        assert wait_until(lambda: _listening(port), 20), (tmp / "coordinator.log").read_text()
        (tmp / "exporter.yaml").write_text(EXPORTER.format(
            place=PLACE, pty=bench.serial_port, gpio_host=bench.gpio_host,
            gpio_port=bench.gpio_port))
        start([str(LG_BIN / "labgrid-exporter"), "--name", "pi-1", "--hostname", "127.0.0.1",
               "exporter.yaml"], "exporter")
        rig = tmp / "rig.yaml"
        rig.write_text(RIG.format(place=PLACE))
        the_lab = Lab(env, rig, tmp / "coordinator.log", tmp, tag)
        assert wait_until(lambda: "pi-1/bench-3/NetworkSerialPort" in the_lab.client(
            "resources").stdout, 30, every_s=0.5), (tmp / "exporter.log").read_text()
        for args in (("create",), ("add-match", f"pi-1/{PLACE}/*")):
            r = the_lab.client("-p", PLACE, *args)
            assert r.returncode == 0, r.stderr
        yield the_lab
    finally:
        for proc in reversed(procs):
            stop_child(proc, 10)
        for log in logs:
            log.close()
        if sim is not None:
            sim.stdout.close()
            sim.stderr.close()
        wait_until(lambda: not tagged(tag), 10)
        left = tagged(tag)
        for pid, _ in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert left == [], f"processes left: {left}"


def start_run(lab: Lab, report: Path, *args: str, **env: str) -> Run:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--config", str(lab.rig), "--report-dir",
         str(report), *args], cwd=REPO, env={**lab.env, **env}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)  # its own process group: a test can kill all of it at once
    run = Run(proc, report)

    def read() -> None:
        for line in proc.stderr:
            run.lines.append((time.monotonic(), line))
        run.stdout = proc.stdout.read()

    threading.Thread(target=read, daemon=True).start()
    return run


