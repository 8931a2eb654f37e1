"""One tick source for the whole simulated bench.

The Pi's tick (pigpio: µs, 32-bit wrap) and the virtual board's ``time.ticks_us()``
(the unix port reads CLOCK_MONOTONIC in µs) come from the same clock, so an edge
carries one timestamp from wherever it was made to wherever it lands.
"""

import time

from harness.gpio.ticks import TICK_MASK, tick_diff  # noqa: F401  (the sim's users import them here)


def now_us() -> int:
    """Monotonic microseconds, unwrapped."""
    return time.monotonic_ns() // 1000


def tick() -> int:
    """Current pigpio tick: monotonic µs wrapped to 32 bits."""
    return now_us() & TICK_MASK
