"""One scenario run as both ends saw it, and its shared timeline.

The board's log holds IRQ and wake timestamps in µs since arming (board clock); the Pi's
captured edges are stimulus rising edges and ack edges (Pi ticks). The ack pin toggles once
per wake, so ack edge j pairs with wake j; the median of their differences maps board time
onto the Pi clock for one shared timeline.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from harness.board.log_protocol import DeviceLog


@dataclass
class Observation:
    """Everything one scenario run saw, from both ends of the wires."""

    scenario: str
    source: str  # where flag.set() was called from (harness.board.sources)
    log: DeviceLog
    stim_us: list[int]
    ack_us: list[int]
    error_output: str = ""
    steps: list[int] = field(default_factory=list)  # stress: pulses per step
    overhead: dict = field(default_factory=dict)  # host time spent outside the stimulus
    # the stimulus pin's IRQ went through micropython.schedule: the soft source, and every
    # source on a port with no hard IRQs (esp32), where a full queue drops edges
    soft_irq: bool = False
    asked: int | None = None  # pulses the scenario meant to send (None: not counted here)
    stopped_early: str = ""  # why the host stopped pulsing before `asked` (no acks came)
    wake_timeout_ms: float = 0.0  # the deadline the host waited on each ack with

    @property
    def irq_t(self) -> list[int]:
        return self.log.array("IRQ")

    @property
    def wake_t(self) -> list[int]:
        return self.log.array("WAKE")

    @property
    def wake_n(self) -> list[int]:
        return self.log.array("WAKEN")

    @property
    def counts(self) -> dict:
        c = self.log.first("COUNT") or {}
        return {
            "pulses": len(self.stim_us),
            "pi_edges": len(self.stim_us),
            "irqs": c.get("irqs", 0),
            "wakes": c.get("wakes", 0),
            "acks": len(self.ack_us),
        }

    @property
    def result(self) -> dict:
        return self.log.first("RESULT") or {}


def board_to_pi_offset(obs: Observation) -> float | None:
    """µs to add to a board timestamp to place it on the Pi timeline (relative to stimulus 0)."""
    if not obs.stim_us or not obs.ack_us or not obs.wake_t:
        return None
    t0 = obs.stim_us[0]
    pairs = zip(obs.ack_us, obs.wake_t, strict=False)
    return statistics.median(a - t0 - w for a, w in pairs)


def pi_rel(obs: Observation, ticks: list[int]) -> list[int]:
    t0 = obs.stim_us[0] if obs.stim_us else (ticks[0] if ticks else 0)
    return [t - t0 for t in ticks]


def timeline(obs: Observation) -> list[dict]:
    """Per pulse: stimulus, IRQ, first wake after that IRQ, and its ack, all µs on the Pi clock."""
    off = board_to_pi_offset(obs)
    stim = pi_rel(obs, obs.stim_us)
    acks = pi_rel(obs, obs.ack_us)
    irq, wake = obs.irq_t, obs.wake_t
    rows = []
    for i in range(max(len(stim), len(irq))):
        row: dict = {"seq": i, "stimulus_us": stim[i] if i < len(stim) else None,
                     "irq_us": None, "wake_us": None, "ack_us": None}
        if i < len(irq):
            j = next((j for j, w in enumerate(wake) if w >= irq[i]), None)
            if off is not None:
                row["irq_us"] = irq[i] + off
                if j is not None:
                    row["wake_us"] = wake[j] + off
            if j is not None and j < len(acks):
                row["ack_us"] = acks[j]
        rows.append(row)
    return rows
