"""Microsecond tick arithmetic: the one place that knows ticks wrap at 32 bits (pigpio's
tick, a board's time.ticks_us low bits). Everything above a GPIO driver sees unwrapped
64-bit microseconds."""

from __future__ import annotations

import threading

TICK_MASK = 0xFFFFFFFF


def tick_diff(later: int, earlier: int) -> int:
    """Signed difference of two 32-bit ticks, correct across one wrap."""
    d = (later - earlier) & TICK_MASK
    return d - (1 << 32) if d & 0x80000000 else d


class TickUnwrapper:
    """32-bit ticks in, a monotone 64-bit microsecond count out: each tick is placed within
    ±35 minutes of the one before it, so one wrap (every 71.6 minutes) is never missed as
    long as ticks arrive at least that often. Safe to call from several threads."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._lock = threading.Lock()

    def __call__(self, tick: int) -> int:
        with self._lock:
            if self._last is None:
                self._last = tick & TICK_MASK
            else:
                self._last += tick_diff(tick, self._last & TICK_MASK)
            return self._last
