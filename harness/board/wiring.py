"""Loopback self-test of the declared wiring, run before the suite on every target.

A missing jumper, a swapped wire or a wrong pin in rig_config.yaml would otherwise show up
as a page of "lost wake-ups" against good firmware. Here it is a bench fault, named by
the wire: the Pi pulses the stimulus line and the board counts the edges; the board
toggles the ack line and the Pi counts the edges.
"""

from __future__ import annotations

import logging
import time

from harness.board.session import BoardSession
from harness.config import Wiring
from harness.gpio import GpioRig
from harness.verdict import BenchFault

log = logging.getLogger(__name__)

PULSES = 3
ACK_EDGES = 4
LATE_GRACE_S = 5.0  # after a short count, how much longer to watch for edges that come late


class WiringError(BenchFault):
    """A declared wire does not carry edges: the bench is miswired, not the firmware broken."""


def check_wiring(target: BoardSession, pi: GpioRig, wiring: Wiring,
                 timeout_s: float = 2.0) -> dict[str, str]:
    """Raise WiringError naming the wire that does not carry edges; return what was seen.
    The board side is device_scripts/tsf_wiring.py."""
    return {"stimulus": check_stimulus(target, pi, wiring, timeout_s),
            "ack": check_ack(target, pi, wiring, timeout_s)}


def check_stimulus(target: BoardSession, pi: GpioRig, wiring: Wiring,
                   timeout_s: float = 2.0) -> str:
    """The Pi pulses the stimulus wire; the board must count every pulse."""
    stim_pin, ack_pin = wiring.stimulus.board_pin, wiring.ack.board_pin
    target.soft_reset()
    target.exec(f"import tsf_wiring\ntsf_wiring.arm({stim_pin!r}, {ack_pin!r})")
    pi.reset_capture()
    pi.burst(PULSES, 1000)
    t0 = time.monotonic()
    seen = _board_count(target, timeout_s)
    if seen < PULSES:  # a board that takes its interrupts seconds late is not a loose wire
        seen = _board_count(target, LATE_GRACE_S)
    took = time.monotonic() - t0
    target.exec("tsf_wiring.disarm()")
    where = f"wiring self-test: Pi GPIO {wiring.stimulus.pi_gpio} -> board pin {stim_pin!r}"
    if seen == PULSES and took > timeout_s:
        log.warning("%s: the board counted the pulses only after %.1f s: the wire is fine, its "
                    "interrupts are late (the suite will say so)", where, took)
        return f"{seen}/{PULSES} pulses, {took:.1f} s late: the board takes its interrupts late"
    if seen > PULSES:
        raise WiringError(f"{where}: the board counted {seen} pulses for the {PULSES} sent, so "
                          "something else drives that pin or the line bounces; check nothing "
                          "else is wired to it and the jumper is seated")
    if seen < PULSES:
        raise WiringError(f"{where}: the board counted {seen} of {PULSES} pulses, and no more "
                          f"in a further {LATE_GRACE_S:g} s, so the wire likely does not reach "
                          "the pin (or the board takes no pin interrupts at all); check the "
                          "stimulus jumper, the shared ground and wiring.stimulus in the rig "
                          "config")
    return f"{seen}/{PULSES} pulses"


def check_ack(target: BoardSession, pi: GpioRig, wiring: Wiring, timeout_s: float = 2.0) -> str:
    """The board toggles the ack wire; the Pi must see every edge."""
    stim_pin, ack_pin = wiring.stimulus.board_pin, wiring.ack.board_pin
    target.soft_reset()
    target.exec(f"import tsf_wiring\ntsf_wiring.arm({stim_pin!r}, {ack_pin!r})\n"
                "tsf_wiring.disarm()")  # only the ack pin, driven low, is wanted here
    pi.reset_capture()
    target.exec(f"tsf_wiring.toggle_ack({ACK_EDGES})")
    where = f"wiring self-test: board pin {ack_pin!r} -> Pi GPIO {wiring.ack.pi_gpio}"
    if not pi.ack.wait_for(ACK_EDGES, timeout_s):
        if pi.ack.wait_for(ACK_EDGES, LATE_GRACE_S):  # the wire works: the reports came late
            raise WiringError(f"{where}: the Pi reported the {ACK_EDGES} edges only after more "
                              f"than {timeout_s:g} s, so the wire is fine but the GPIO daemon "
                              "stalled; restart it, or free the Pi's CPU if it is overloaded")
        raise WiringError(f"{where}: the Pi saw {pi.ack.count()} of {ACK_EDGES} edges, and no "
                          f"more in a further {LATE_GRACE_S:g} s, so the wire likely does not "
                          "reach the Pi; check the ack jumper, the shared ground and wiring.ack "
                          "in the rig config")
    return f"{pi.ack.count()}/{ACK_EDGES} edges"


def _board_count(target: BoardSession, timeout_s: float) -> int:
    """Ask the board for its count until it is complete or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = int(target.exec("print(tsf_wiring.count)").strip() or 0)
        if seen >= PULSES or time.monotonic() >= deadline:
            return seen
