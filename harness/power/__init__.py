"""Switching a board's power off and on: the last step of recovery, after Ctrl-C, a soft
reset and the RUN/EN pin have failed (a wedged USB stack or USB-serial chip, a board latched
up). The target's `power.method` names the switch that turns it off or on
(harness/config/registry.py; the specs are in power/methods.py):

- uhubctl: a hub port with per-port power switching (`uhubctl -l LOC -p PORT -a off|on`);
- sysfs: the Linux USB port's `disable` file (1 cuts the port, 0 restores it);
- command: the bench's own commands (templates for off and on, or one for a whole cycle);
- sim: the simulated bench's switch (harness/sim/power.py).

Every step has a deadline, and every failure is one PowerError line naming the method and
the fix: a power switch that doesn't work is a bench fault, never a firmware verdict.
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config.registry import POWER, spec
from harness.tools import run_tool
from harness.verdict import BenchFault

if TYPE_CHECKING:
    from harness.benches import BenchAddress
    from harness.config import PowerConfig, SerialConfig, TargetConfig


class PowerError(BenchFault):
    """The board's power could not be switched, or its port did not come back."""


@dataclass(frozen=True)
class PowerJob:
    """What a switch needs besides the config: the board's port and serial number (command
    templates) and, for the simulated bench, its power control socket."""

    config: PowerConfig
    port: str = ""
    serial_number: str | None = None
    control: str = ""


def describe(cfg: PowerConfig) -> str:
    """The method as the verdict names it: 'uhubctl 1-1.2 port 3'."""
    if cfg.method == "uhubctl":
        return f"uhubctl {cfg.location} port {cfg.port}"
    if cfg.method == "sysfs":
        return f"sysfs {cfg.path}"
    return cfg.method


def _run(argv: list[str], what: str, timeout_s: float, fix: str) -> None:
    run_tool(argv, f"power: {what}", timeout_s, fix, PowerError,
             "check the switch answers, or raise power.timeout_s")


def switch_uhubctl(job: PowerJob, on: bool) -> str | None:
    c = job.config
    _run(["uhubctl", "-l", str(c.location), "-p", str(c.port), "-a", "on" if on else "off"],
         f"uhubctl {'on' if on else 'off'} ({describe(c)})", c.timeout_s,
         "install uhubctl, run it as root or add its udev rule, and check power.location and "
         "power.port against what `uhubctl` lists (the hub must switch per port)")
    return None


def switch_sysfs(job: PowerJob, on: bool) -> str | None:
    path = Path(job.config.path or "")
    box: list[BaseException | None] = []

    def write() -> None:
        try:
            path.write_text("0" if on else "1")
            box.append(None)
        except OSError as e:
            box.append(e)

    t = threading.Thread(target=write, name="power-sysfs", daemon=True)
    t.start()
    t.join(job.config.timeout_s)  # a kernel write can block while the hub works
    if not box:
        raise PowerError(f"power: sysfs: writing {path} did not finish within "
                         f"{job.config.timeout_s:g} s; check the hub, or raise power.timeout_s")
    e = box[0]
    if isinstance(e, PermissionError):
        raise PowerError(f"power: sysfs: cannot write {path} (permission denied); run as root "
                         "or give the bench user write access to it (a udev rule)")
    if e is not None:
        raise PowerError(f"power: sysfs: cannot write {path} ({e.strerror or e}); give the "
                         "port's `disable` file, e.g. /sys/bus/usb/devices/1-1:1.0/1-1-port2/"
                         "disable, in power.path")
    return None


def switch_command(job: PowerJob, on: bool | None) -> str | None:
    """on None: the one cycle template."""
    c = job.config
    key = "cycle" if on is None else "on" if on else "off"
    template = getattr(c, key)
    argv = shlex.split(template.format(port=job.port, serial_number=job.serial_number or ""))
    _run(argv, f"command {key} ({argv[0] if argv else 'empty'})", c.timeout_s,
         f"check power.{key} runs by hand")
    return None


def power_cycle(job: PowerJob) -> str | None:
    """Power the board off, wait power.off_s, power it on; the serial port the switch says
    the board came back on (the simulated bench knows it), else None."""
    c = job.config
    if c.method == "command" and c.cycle:
        return switch_command(job, None)
    switch = spec(POWER, c.method).switch
    switch(job, False)
    time.sleep(c.off_s)  # the time the board stays unpowered, not a wait for an event
    return switch(job, True)


def check_switch(job: PowerJob) -> str:
    """Without switching anything: is the switch there to be used? (`tsfrig doctor`)"""
    import shutil

    c = job.config
    ready = spec(POWER, c.method).ready
    if ready is not None:
        return ready(job)
    if c.method == "sysfs":
        if not os.access(c.path or "", os.W_OK):
            raise PowerError(f"power: sysfs: {c.path} is missing or not writable; give the "
                             "port's `disable` file in power.path and run as root (or a udev "
                             "rule)")
        return f"sysfs: {c.path} is writable (not switched by doctor)"
    templates = [t for t in (c.off, c.on, c.cycle) if t] if c.method == "command" else []
    tools = ["uhubctl"] if c.method == "uhubctl" else \
        [shlex.split(t)[0] for t in templates if shlex.split(t)]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise PowerError(f"power: {c.method}: {missing[0]} not found; install it or fix "
                         f"power: in the rig config")
    return f"{describe(c)}: {', '.join(tools)} found (not switched by doctor)"


@dataclass(frozen=True)
class PowerSwitch:
    """A target's power method bound to its bench: what recovery (and doctor) call."""

    config: PowerConfig
    serial: SerialConfig  # port: auto finds the board again by its USB ids
    control: str = ""  # the simulated bench's power control socket

    def describe(self) -> str:
        return describe(self.config)

    def cycle(self, port: str) -> str:
        """Power-cycle the board whose serial port is `port` now (close it first); its port
        once it is back: the one the switch names, else found again by USB ids for
        `port: auto`, else the configured path."""
        s = self.serial
        said = power_cycle(PowerJob(self.config, port, s.serial_number, self.control))
        if said:
            return said
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            try:
                if s.port != "auto":
                    if os.path.exists(s.port):
                        return s.port
                    last = f"{s.port} does not exist"
                else:
                    from harness.board.session import find_port

                    return find_port(s.vid, s.pid, s.serial_number)
            except BenchFault as e:
                last = str(e)
            if time.monotonic() >= deadline:
                raise PowerError(f"power: the board's serial port did not come back within "
                                 f"{self.config.timeout_s:g} s after a power cycle "
                                 f"({self.describe()}): {last}")
            time.sleep(0.1)  # polling for a device node that is not there yet


def switch_for(target: TargetConfig, address: BenchAddress) -> PowerSwitch | None:
    """The target's power switch on this bench, if it has one."""
    if target.power is None:
        return None
    return PowerSwitch(target.power, target.serial, address.power_control)
