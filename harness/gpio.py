"""What the harness may ask of the Pi side of a bench (the GPIO rig), whatever daemon serves
it, and the registry that picks the backend named by the target's `gpio.backend`.

A backend drives the stimulus wire, captures edges on the stimulus and ack wires as
unwrapped 64-bit microseconds on the Pi's clock, pulls the board's reset line, and turns
its own failures into GpioError. Scenarios, analysis, wiring and recovery see only this.
A new GPIO daemon (rgpiod on a Pi 5, say) is one module plus one line in GPIO_BACKENDS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from harness.verdict import BenchFault

if TYPE_CHECKING:
    from harness.config import Wiring


class GpioError(BenchFault):
    """The GPIO daemon is unreachable, silent, refusing or out of step: a bench fault."""


class Edge(Protocol):
    us: int  # the Pi's clock, unwrapped
    level: int


class Capture(Protocol):
    """Edges seen on one wire since the last reset_capture()."""

    edges: list[Edge]

    def count(self) -> int: ...

    def wait_for(self, n: int, timeout_s: float) -> bool: ...

    def wait_until(self, predicate: Callable[[list[Edge]], bool], timeout_s: float) -> bool: ...


class GpioRig(Protocol):
    """The Pi side of one target's bench."""

    stimulus: Capture
    ack: Capture
    reset_gpio: int | None  # the GPIO on the board's RUN/EN pin, if wired
    broken: str  # why the link is out of step until ensure_link() replaces it; "" if fine
    last_pulse_at: float  # host monotonic time of the last stimulus sent

    def pulse(self) -> None: ...

    def burst(self, count: int, period_us: int) -> None: ...

    def reset_capture(self) -> None: ...

    def hard_reset(self, reset_gpio: int, hold_ms: float = 10.0) -> None: ...

    def ensure_link(self) -> None: ...

    def identity(self) -> dict: ...

    def close(self) -> None: ...


GPIO_BACKENDS: dict[str, str] = {
    "pigpio": "harness.pi:PiDriver",  # pigpiod on a Pi 1-4 (or the simulated Pi)
}


def connect_gpio(backend: str, host: str, port: int, wiring: Wiring) -> GpioRig:
    """A connected GPIO rig of the named backend."""
    module, _, cls = GPIO_BACKENDS[backend].partition(":")
    return getattr(importlib.import_module(module), cls)(host, port, wiring)
