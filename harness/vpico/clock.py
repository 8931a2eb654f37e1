"""Emulated time for the whole vpico bench: the Pi's ticks and the board's ticks_us are one
clock, and it is the emulator's.

The model (why: see README.md, "Time"): the host grants the emulator a horizon H and the
emulator runs up to H and no further. H advances with wall time, but never more than
LOOKAHEAD_US past the emulated time the board last reported. So

- the Pi's clock is H: when the board keeps up (idle, or waiting for the host) it runs at
  real time; when the board is busy (rp2040js runs busy code at ~1/4 of real time) the Pi's
  clock slows down with it, so a host that waits on wall time never races ahead of a
  board that can't keep up, and the board never falls more than LOOKAHEAD_US behind;
- every edge the Pi makes is stamped with H or later (a waveform's edges are all sent at
  once, bench.VPi), which the emulator has not passed yet: it is applied at
  exactly its stamp, so a pulse gap is emulated time and stimulus -> ISR is measured
  without error. Grants travel on the board wire, in order with the edges, and are made
  under the Pi's GPIO lock, so no grant can overtake an edge it covers;
- a board-side timeout that waits for the host can't fire early: the board's time only
  passes as fast as the host's.

The simulated Pi (harness/sim/pigpiod.py, rgpiod.py) reads time through its module's
`clock`; the vpico bench points that at an EmulatedClock while it runs (one vpico per
process).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable

from harness.ticks import TICK_MASK, tick_diff  # noqa: F401  (the Pi's users import them here)

LOOKAHEAD_US = 20_000  # how far the Pi's clock may run ahead of the board's (one host round
# trip per this much emulated time while the board is busy)
GRANT_EVERY_S = 0.001  # how often the horizon is passed on while time moves
# grant frames (bench -> board.mjs, on the board wire) and clock reports (board.mjs -> bench,
# on fd 3): type, pad, u48 µs (CLOCK_MONOTONIC based); 8 bytes like wire.py's frames
CTRL = struct.Struct("<cxHI")  # type, high 16 bits, low 32 bits
GRANT, REPORT = b"G", b"T"


def pack(kind: bytes, us: int) -> bytes:
    return CTRL.pack(kind, (us >> 32) & 0xFFFF, us & 0xFFFFFFFF)


def unpack(frame: bytes) -> tuple[bytes, int]:
    kind, hi, lo = CTRL.unpack(frame)
    return kind, (hi << 32) | lo


class EmulatedClock:
    """The horizon H (µs) and what the board last reported; send(frame) reaches board.mjs."""

    TICK_MASK = TICK_MASK  # as harness.sim.clock offers them to the simulated Pi
    tick_diff = staticmethod(tick_diff)

    def __init__(self, start_us: int, send: Callable[[bytes], None],
                 order_lock: threading.RLock, lookahead_us: int = LOOKAHEAD_US) -> None:
        """send: puts a frame on the board wire; order_lock: the Pi's GPIO lock, held by
        whoever stamps and sends edges."""
        self.lookahead_us = lookahead_us
        self._send = send
        self._order = order_lock
        self._lock = threading.Lock()
        self._h = start_us
        self._board = start_us
        self._wall = time.monotonic_ns() // 1000
        self._granted = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._grant_loop, daemon=True,
                                        name="vpico-clock")

    def start(self) -> EmulatedClock:
        self.grant()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def now_us(self) -> int:
        """The Pi's present: H, advanced by the wall time since, within the lookahead."""
        with self._lock:
            wall = time.monotonic_ns() // 1000
            self._h = max(self._h, min(self._h + wall - self._wall,
                                       self._board + self.lookahead_us))
            self._wall = wall
            return self._h

    def tick(self) -> int:
        """The Pi's tick (pigpio: µs, 32-bit wrap). Granted before it is returned, so the
        host never holds a time the board may not reach."""
        return self.grant(resend=True) & TICK_MASK

    def board_reported(self, us: int) -> None:
        """The emulator's clock reached `us`: the horizon may move on."""
        with self._lock:
            self._board = max(self._board, us)

    @property
    def board_us(self) -> int:
        return self._board

    def grant(self, resend: bool = False) -> int:
        """Pass the horizon on if it moved (or again: resend, e.g. a board that just connected
        and missed the grants made before)."""
        with self._order:
            h = self.now_us()
            if h > self._granted or resend:
                self._granted = h
                try:
                    self._send(pack(GRANT, h))
                except OSError:
                    pass
        return h

    def _grant_loop(self) -> None:
        while not self._stop.wait(GRANT_EVERY_S):
            self.grant()
