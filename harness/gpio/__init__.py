"""What the harness may ask of the Pi side of a bench (the GPIO rig), whatever daemon serves
it, and how the backend named by the target's `gpio.backend` is connected.

A backend drives the stimulus wire, captures edges on the stimulus and ack wires as
unwrapped 64-bit microseconds on the Pi's clock, pulls the board's reset line, and turns
its own failures into GpioError. Scenarios, analysis, wiring and recovery see only this.
A new GPIO daemon is one module (its rig and its GpioSpec) plus one registry line
(harness/config/registry.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from harness.config.registry import GPIO, spec
from harness.verdict import BenchFault

if TYPE_CHECKING:
    from harness.config import Wiring

log = logging.getLogger(__name__)
T = TypeVar("T")


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


@dataclass
class CapturedEdge:
    us: int  # the Pi's clock, unwrapped to 64 bits
    level: int


class EdgeLog:
    """A Capture that a backend fills from its daemon's reports (any thread), with waits for
    the N-th edge; edges stamped before `since` (set-up still in flight) are not kept."""

    def __init__(self) -> None:
        self.edges: list[CapturedEdge] = []
        self.since: int | None = None
        self._cond = threading.Condition()

    def add(self, us: int, level: int) -> None:
        with self._cond:
            if self.since is not None and us < self.since:
                return
            self.edges.append(CapturedEdge(us, level))
            self._cond.notify_all()

    def count(self) -> int:
        with self._cond:
            return len(self.edges)

    def wait_for(self, n: int, timeout_s: float) -> bool:
        """Block until at least n edges were seen; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.edges) >= n, timeout_s)

    def wait_until(self, predicate: Callable[[list[CapturedEdge]], bool],
                   timeout_s: float) -> bool:
        """Block until predicate(edges) holds; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.edges), timeout_s)

    def clear(self, since: int | None = None) -> None:
        """Forget captured edges; with `since`, also ignore late reports of older edges."""
        with self._cond:
            self.edges.clear()
            self.since = since


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

    def stalled(self, limit_s: float = ...) -> str: ...

    def identity(self) -> dict:
        """The daemon and board as they report themselves, and `stimulus_times`: how the
        stimulus edges were timed (sampled, sensed on a second input, or commanded)."""
        ...

    def close(self) -> None: ...


STALL_S = 0.5  # a daemon's command answered slower than this: the daemon or its host stalled


class Relinking:
    """ensure_link() for a backend whose failed calls set `broken`: drop the connection and
    connect again with the GPIO set-up re-applied (the backend's _disconnect/_connect)."""

    daemon = "the GPIO daemon"
    broken = ""
    reconnects = 0

    def _connect(self) -> None: ...

    def _disconnect(self) -> None: ...

    def ensure_link(self) -> None:
        """Before a scenario: replace a link left out of step by a failed call; GpioError if
        the daemon won't take a new one."""
        if not self.broken:
            return
        why = self.broken
        log.warning("%s link out of step (%s): reconnecting", self.daemon, why)
        self._disconnect()
        try:
            self._connect()
        except GpioError as e:
            self.broken = why
            raise GpioError(f"{e} (the {self.daemon} link had failed earlier: {why})") from None
        self.reconnects += 1

    def _ping(self) -> None:
        """One harmless command (the backend's), answered or GpioError."""

    def stalled(self, limit_s: float = STALL_S) -> str:
        """Whether the daemon is stalled now: '' when it answers a harmless command within
        limit_s, else what it did. When the board goes silent, a daemon silent at the same
        moment means the bench (its host) stalled, not the firmware."""
        t0 = time.monotonic()
        try:
            self._ping()
        except GpioError as e:
            return str(e)
        took = time.monotonic() - t0
        return f"{self.daemon}d took {took:.1f} s to answer a command" if took > limit_s else ""


def built_within(make: Callable[[], T], timeout_s: float, name: str) -> T | None:
    """make() on a helper thread, for a client constructor with no deadline of its own: what
    it built, or None if it did not finish within timeout_s (the thread is left behind as a
    daemon, blocked on a daemon that does not answer)."""
    box: list[T] = []
    t = threading.Thread(target=lambda: box.append(make()), name=name, daemon=True)
    t.start()
    t.join(timeout_s)
    return box[0] if box else None


def connect_gpio(backend: str, host: str, port: int, wiring: Wiring, **options: Any) -> GpioRig:
    """A connected GPIO rig of the named backend (harness/config/registry.py); `options`: the
    gpio: keys only that backend takes, as its spec read them (e.g. a gpiochip)."""
    return spec(GPIO, backend).rig(host, port, wiring, **options)
