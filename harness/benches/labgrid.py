"""A bench on a shared lab, through labgrid (kind: labgrid).

The target names a labgrid place; the coordinator is labgrid's own LG_COORDINATOR. tsfrig
acquires the place, takes the board's serial port (the place's NetworkSerialPort: a
RawSerialPort or USBSerialPort the exporter serves through ser2net) and the GPIO daemon (the
place's NetworkService), runs, and releases the place. Wiring, budgets and the rest of the
profile stay in tsfrig's config, as for a serial target.

labgrid is driven through its `labgrid-client` command, not imported: its package replaces
pyserial with a fork and registers a pytest plugin that would load into the suite, so it
lives in its own environment; every call has a deadline; and the holder process
(harness/benches/labgrid_hold.py) that owns the place outlives a crashed run to release it.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import logging
import os
import select
import shutil
import subprocess
import sys
import time
from typing import Any

import yaml

from harness.benches import BenchAddress
from harness.benches.labgrid_hold import CALL_TIMEOUT_S, client, last_line
from harness.config import ConfigError, RigConfig, TargetConfig
from harness.config.specs import KindSpec, RunOption, Section
from harness.verdict import BenchFault

log = logging.getLogger(__name__)
KIND = "labgrid"
TESTED_WITH = "26.0.1"  # the labgrid release tsfrig's tests run against
DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid-client's own default
# beyond --lg-wait: the holder's start-up, the acquire call that finds the place held and
# the last one when the wait is up
HOLDER_EXTRA_S = 2 * CALL_TIMEOUT_S + 15.0


def with_place(cfg: RigConfig, place: str | None, wait_s: float | None,
               target: str | None = None) -> RigConfig:
    """--lg-place / --lg-wait: set the place (and how long to wait for it) of the run's
    labgrid target (--target picks one when the config has several)."""
    run = [t for t in cfg.targets if target is None or t.name == target]
    lab = [t for t in run if t.kind == KIND]
    opt = "--lg-place" if place else "--lg-wait"
    if not lab:
        raise ConfigError(f"{opt}: {cfg.path.name} has no kind: labgrid target"
                          f"{f' named {target!r}' if target else ''}; add one (README, "
                          "A shared lab) or pick one with --target")
    if place and len(lab) > 1:
        raise ConfigError(f"--lg-place: {cfg.path.name} has {len(lab)} labgrid targets "
                          f"({', '.join(t.name for t in lab)}); pick one with --target")
    changed = {t.name: dataclasses.replace(
        t, place=place or t.place, lg_wait_s=wait_s if wait_s is not None else t.lg_wait_s)
        for t in lab}
    return RigConfig(cfg.path, [changed.get(t.name, t) for t in cfg.targets], cfg.compare)


def find_client() -> str:
    """labgrid-client on PATH; a bench fault saying how to install it if it is not."""
    path = shutil.which("labgrid-client")
    if path is None:
        raise BenchFault(f"labgrid-client is not on PATH: install labgrid {TESTED_WITH} "
                         f"(e.g. `pipx install labgrid=={TESTED_WITH}`) and put it on PATH")
    return path


def coordinator() -> str:
    return os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def bench_address(env_yaml: str, place: str) -> BenchAddress:
    """The board's serial URL and the GPIO daemon's address from `labgrid-client env` of the
    acquired place: its one NetworkSerialPort and its one NetworkService."""
    try:
        doc = yaml.safe_load(env_yaml) or {}
        resources = next(iter(doc["targets"].values()))["resources"] or []
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, StopIteration):
        raise BenchFault(f"place {place}: labgrid-client env gave no resources: "
                         f"{last_line(env_yaml)}") from None
    found: dict[str, list[dict]] = {}
    for r in resources:
        for cls, args in r.items():
            found.setdefault(cls, []).append(args or {})
    serial, gpio = found.get("NetworkSerialPort", []), found.get("NetworkService", [])
    for what, have, res in (("serial port", serial, "RawSerialPort or USBSerialPort"),
                            ("GPIO daemon", gpio, "NetworkService")):
        if len(have) != 1:
            names = ", ".join(str(a.get("name", "?")) for a in have) or "none"
            raise BenchFault(f"place {place} has {len(have)} {what} resources ({names}), "
                             f"tsfrig needs exactly one: export the board's as a {res} and "
                             "match only it (labgrid-client -p PLACE add-match "
                             "EXPORTER/GROUP/CLASS/NAME)")
    s, g = serial[0], gpio[0]
    if not s.get("port"):
        raise BenchFault(f"place {place}: the exporter has not published the serial port's "
                         "TCP port yet (is ser2net installed on the exporter host?)")
    scheme = "socket" if s.get("protocol") == "raw" else "rfc2217"
    # ser2net does not acknowledge modem-control requests on every port (a pty never):
    # labgrid's own serial driver ignores those answers too
    url = f"{scheme}://{s['host']}:{s['port']}" + ("?ign_set_control" if scheme == "rfc2217"
                                                    else "")
    return BenchAddress(url, str(g["address"]), int(g["port"]))


class LabgridProvider:
    """A place on a labgrid coordinator: acquired by a holder process for the run."""

    def __init__(self, target: TargetConfig, rig: RigConfig) -> None:
        self.target = target
        self.place = target.place or ""
        self.proc: subprocess.Popen | None = None
        self.buf = b""
        self.acquired = False

    def start(self) -> BenchAddress:
        labgrid_client = find_client()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.benches.labgrid_hold", self.place, "--wait",
             str(self.target.lg_wait_s), "--client", labgrid_client],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True)  # never killed with tsfrig's process group: it releases
        # a signal landing in another fixture's teardown skips the rest of pytest's teardown:
        # the place still goes back before tsfrig exits
        atexit.register(self.stop)
        try:
            self._wait_acquired()
            r = client(labgrid_client, self.place, "env")
            if r.returncode != 0:
                raise BenchFault(f"place {self.place}: labgrid-client env failed: "
                                 f"{last_line(r.stderr)}")
            return bench_address(r.stdout, self.place)
        except subprocess.TimeoutExpired:
            self.stop()
            raise BenchFault(f"place {self.place}: labgrid-client env did not answer within "
                             f"{CALL_TIMEOUT_S:.0f} s (coordinator {coordinator()})") from None
        except BaseException:  # also SIGTERM/Ctrl-C while waiting: the place goes back
            self.stop()
            raise

    def _wait_acquired(self) -> None:
        deadline = time.monotonic() + self.target.lg_wait_s + HOLDER_EXTRA_S
        while True:
            word, _, rest = self._line(deadline).partition(" ")
            if word == "acquired":  # the wall clock lines it up with the coordinator's log
                log.info("acquired place %s (wall clock %.3f)", self.place, time.time())
                self.acquired = True
                return
            if word == "held":
                print(f"tsfrig: waiting for place {self.place} (acquired by {rest})",
                      file=sys.stderr, flush=True)
            elif word == "gave-up":
                raise BenchFault(f"place {self.place} is acquired by {rest}"
                                 + (f" (waited {self.target.lg_wait_s:g} s)"
                                    if self.target.lg_wait_s else "")
                                 + ": wait longer with --lg-wait SECONDS, or ask them to "
                                   "release it")
            else:
                raise BenchFault(f"place {self.place} could not be acquired from the "
                                 f"coordinator {coordinator()}: {rest or 'no answer'}: check "
                                 "LG_COORDINATOR and the place's name (labgrid-client places)")

    def _line(self, deadline: float) -> str:
        """The holder's next line ("" if it exited or the deadline passed)."""
        assert self.proc is not None and self.proc.stdout is not None
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return ""
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    return ""
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace").strip()

    def stop(self) -> None:
        """Tell the holder to release the place and wait for it to say so."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if self.acquired:  # logged before the word: the board is closed, the place not free
            log.info("releasing place %s (wall clock %.3f)", self.place, time.time())
        self.acquired = False
        try:
            proc.stdin.close()  # the word: release (a crashed tsfrig says it the same way)
        except OSError:
            pass
        said = self._line_from(proc, time.monotonic() + 3 * CALL_TIMEOUT_S + 5)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()  # it said its last word or never will: don't wait on it
            proc.wait(timeout=5)
        proc.stdout.close()
        if said == "released":
            log.info("released place %s", self.place)
        if said.startswith("release-failed"):
            print(f"tsfrig: place {self.place} may still be acquired: "
                  f"{said.partition(' ')[2]}: release it with `labgrid-client -p {self.place} "
                  "release`", file=sys.stderr, flush=True)

    def _line_from(self, proc: subprocess.Popen, deadline: float) -> str:
        """The holder's last word about the release: "released", "release-failed ...", or ""
        when it had not acquired anything."""
        self.proc = proc
        try:
            while True:
                line = self._line(deadline)
                if not line or line.startswith(("released", "release-failed")):
                    return line
        finally:
            self.proc = None

    def identity(self) -> dict:
        return {"executable": None, "overlay": None, "build_hash": None,
                "irq_wake_model": None, "place": self.place, "coordinator": coordinator()}


def _place(section: Section) -> dict[str, Any]:
    return {"place": section.string("place")}


def _seconds(text: str) -> float:
    """A duration for argparse: a bad one is a one-line usage error."""
    try:
        s = float(text)
    except ValueError:
        s = -1.0
    if not 0 <= s < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return s


def _apply(cfg: RigConfig, given: dict[str, Any], target: str | None) -> RigConfig:
    return with_place(cfg, given["--lg-place"], given["--lg-wait"], target)


SPEC = KindSpec(
    provider=LabgridProvider, only_keys=frozenset({"place"}), required_keys=frozenset({"place"}),
    gpio_address="its place's NetworkService (README, A shared lab)", check=_place,
    run_options=(
        RunOption("--lg-place", "labgrid place for the config's kind: labgrid target "
                  "(coordinator: LG_COORDINATOR)", "PLACE"),
        RunOption("--lg-wait", "wait this long for a labgrid place someone else holds, then "
                  "exit 2 (default 0)", "SECONDS", _seconds)),
    apply_options=_apply)
