"""Switching a board's power off and on: the last step of recovery, after Ctrl-C, a soft
reset and the RUN/EN pin have failed (a wedged USB stack or USB-serial chip, a board latched
up). The target's `power.method` names the switch that turns it off or on
(harness/config/registry.py); each method is one module holding its spec, its checks and its
switch (power/uhubctl.py, sysfs.py, command.py; the simulated bench's is harness/sim/power.py).
This module is what they share: the switch protocol (a PowerJob, switch(job, on) -> the port
after power-on), running a command within a deadline, the cycle, and what recovery calls.

Every step has a deadline, and every failure is one PowerError line naming the method and
the fix: a power switch that doesn't work is a bench fault, never a firmware verdict.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    own = spec(POWER, cfg.method).describe
    return own(cfg) if own is not None else cfg.method


def run(argv: list[str], what: str, timeout_s: float, fix: str) -> None:
    """Run a switch's command within timeout_s; PowerError naming `what` and the fix."""
    run_tool(argv, f"power: {what}", timeout_s, fix, PowerError,
             "check the switch answers, or raise power.timeout_s")


def off_then_on(job: PowerJob, switch: Callable[[PowerJob, bool], str | None]) -> str | None:
    """Off, power.off_s unpowered, on: the port the switch says the board came back on."""
    switch(job, False)
    time.sleep(job.config.off_s)  # the time the board stays unpowered, not a wait for an event
    return switch(job, True)


def power_cycle(job: PowerJob) -> str | None:
    """Power the board off, wait power.off_s, power it on (or the method's own cycle); the
    serial port the switch says the board came back on (the simulated bench knows it), else
    None."""
    method = spec(POWER, job.config.method)
    if method.cycle is not None:
        return method.cycle(job)
    return off_then_on(job, method.switch)


def tools_found(cfg: PowerConfig, tools: list[str]) -> str:
    """doctor's line for a switch run by commands: each is installed, or PowerError."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise PowerError(f"power: {cfg.method}: {missing[0]} not found; install it or fix "
                         f"power: in the rig config")
    return f"{describe(cfg)}: {', '.join(tools)} found (not switched by doctor)"


def check_switch(job: PowerJob) -> str:
    """Without switching anything: is the switch there to be used? (`tsfrig doctor`)"""
    ready = spec(POWER, job.config.method).ready
    if ready is None:
        return f"{describe(job.config)}: not checked (its method has no check)"
    return ready(job)


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
