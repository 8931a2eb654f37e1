"""A simulated bench in its own process: the lines `tsfrig sim` prints when it is up, the
parser that reads them, and the provider the pytest plugin starts it with. One module, so
the format and its reader can't drift apart."""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
import time
from typing import TextIO

from harness.benches import BenchAddress
from harness.children import die_with_parent, stop_bench
from harness.config import RigConfig, TargetConfig
from harness.config.specs import KindSpec
from harness.verdict import BenchFault

READY = "ready (Ctrl-C stops the bench)"


def announce(serial_port: str, gpio: dict[str, tuple[str, int]], firmware: str,
             out: TextIO, power: str = "", priority: str = "") -> None:
    """What `tsfrig sim` prints once both ends are up: a person connects to these (one line
    per GPIO daemon, named by its backend: `pigpio: 127.0.0.1:PORT`, `rgpio: ...`; power:
    the unix socket that switches the board off and on, harness/sim/power.py; priority:
    whether the board got ahead of the host's other work, harness/sim/priority.py)."""
    daemons = [f"{backend}: {host}:{port}" for backend, (host, port) in gpio.items()]
    for line in (f"serial: {serial_port}", *daemons, f"firmware: {firmware}",
                 *([f"power: {power}"] if power else []),
                 *([f"priority: {priority}"] if priority else []), READY):
        print(line, file=out, flush=True)


def read_announcement(proc: subprocess.Popen, timeout_s: float, backend: str) -> BenchAddress:
    """The addresses a starting `tsfrig sim` prints (the GPIO daemon of `backend`);
    BenchFault with its last stderr line if it exits or stays silent past the deadline."""
    found: dict[str, str] = {}
    buf = b""
    deadline = time.monotonic() + timeout_s
    while "ready" not in found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=5)
            err = proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise BenchFault(f"simulated bench did not start: "
                             f"{err[-1] if err else 'no output'}")
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            buf += os.read(proc.stdout.fileno(), 4096)
            *lines, buf = buf.split(b"\n")
            for line in lines:
                key, _, value = line.decode().partition(":")
                found[key.strip().split(" ")[0]] = value.strip()
    host, _, port = found[backend].rpartition(":")
    return BenchAddress(found["serial"], host, int(port), found.get("power", ""))


def start_given(target: TargetConfig) -> subprocess.Popen:
    """`tsfrig sim` as a child process that dies with us, given the target as loaded here
    (overrides applied) on its stdin, not a file to reload; read_announcement() follows."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sim", "--given-target"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=die_with_parent)
    try:
        proc.stdin.write(pickle.dumps(target))
        proc.stdin.close()
    except BrokenPipeError:  # it died at once: read_announcement() says why
        pass
    return proc


class SimProvider:
    """`tsfrig sim` as a child process (it dies with us), reached like a real bench."""

    def __init__(self, target: TargetConfig, rig: RigConfig, timeout_s: float = 20.0) -> None:
        self.target, self.rig, self.timeout_s = target, rig, timeout_s
        self.proc: subprocess.Popen | None = None

    def start(self) -> BenchAddress:
        self.proc = start_given(self.target)
        try:
            return read_announcement(self.proc, self.timeout_s, self.target.gpio.backend)
        except BaseException:  # also Ctrl-C while it starts: never leave the bench behind
            self.stop()
            raise

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_bench(proc)

    def identity(self) -> dict:
        from harness.sim.firmware import build_hash, find_executable, overlay_hash

        exe = find_executable(self.target.firmware.executable)
        ov = self.target.firmware.overlay
        return {"executable": str(exe), "overlay": str(ov) if ov else None,
                "overlay_hash": overlay_hash(ov) if ov else None,
                "build_hash": build_hash(exe, ov), "irq_wake_model": self.target.irq_wake}


SPEC = KindSpec(
    provider=SimProvider,
    only_keys=frozenset({"firmware.executable", "firmware.overlay", "irq_wake", "irq_latency_us",
                         "irq_jitter_us", "emulate"}),
    simulated=True, takes_overlay=True, own_pi=True, default_power="sim")
