"""Loopback self-test of the declared wiring, run before the suite on every target.

A missing jumper, a swapped wire or a wrong pin in rig_config.yaml would otherwise show up
as a page of "lost wake-ups" against good firmware. Here it is a bench fault, named by
the wire: the Pi pulses the stimulus line and the board counts the edges; the board
toggles the ack line and the Pi counts the edges.
"""

from __future__ import annotations

import time

from harness.config import Wiring
from harness.gpio import GpioError, GpioRig
from harness.target import Target

PULSES = 3
ACK_EDGES = 4

# MicroPython: a soft IRQ counter on the stimulus pin and the ack pin driven low.
BOARD_SETUP = """\
from machine import Pin
_wc_n = 0
def _wc_count(p):
    global _wc_n
    _wc_n += 1
_wc_stim = Pin({stim!r}, Pin.IN, Pin.PULL_DOWN)
_wc_stim.irq(_wc_count, Pin.IRQ_RISING)
_wc_ack = Pin({ack!r}, Pin.OUT, value=0)
"""


def check_wiring(target: Target, pi: GpioRig, wiring: Wiring,
                 timeout_s: float = 2.0) -> dict[str, str]:
    """Raise GpioError naming the wire that does not carry edges; return what was seen."""
    stim_pin, ack_pin = wiring.stimulus.board_pin, wiring.ack.board_pin
    target.soft_reset()
    target.exec(BOARD_SETUP.format(stim=stim_pin, ack=ack_pin))
    pi.reset_capture()
    pi.burst(PULSES, 1000)
    seen = _board_count(target, timeout_s)
    target.exec("_wc_stim.irq(None)")
    if seen != PULSES:
        raise GpioError(f"wiring self-test: Pi GPIO {pi.stimulus_gpio} -> board pin "
                         f"{stim_pin!r}: the board counted {seen} of {PULSES} pulses; check the "
                         "stimulus jumper, the shared ground and wiring.stimulus in the rig config")
    target.exec(f"for _ in range({ACK_EDGES}):\n    _wc_ack.value(not _wc_ack.value())")
    if not pi.ack.wait_for(ACK_EDGES, timeout_s):
        raise GpioError(f"wiring self-test: board pin {ack_pin!r} -> Pi GPIO {pi.ack_gpio}: "
                         f"the Pi saw {pi.ack.count()} of {ACK_EDGES} edges; check the ack "
                         "jumper, the shared ground and wiring.ack in the rig config")
    return {"stimulus": f"{seen}/{PULSES} pulses", "ack": f"{pi.ack.count()}/{ACK_EDGES} edges"}


def _board_count(target: Target, timeout_s: float) -> int:
    """Ask the board for its count until it is complete or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = int(target.exec("print(_wc_n)").strip() or 0)
        if seen >= PULSES or time.monotonic() >= deadline:
            return seen
