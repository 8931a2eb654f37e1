"""Progress per scenario: a live line in a terminal, plain lines under CI (no control codes)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO


def want_live(stream: TextIO) -> bool:
    """Live redraws only on a real terminal and never under CI."""
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return not ci and hasattr(stream, "isatty") and stream.isatty()


class Progress:
    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = want_live(self.stream) if live is None else live
        self._lock = threading.Lock()
        self._name = ""
        self._t0 = 0.0
        self._counts: dict[str, int | None] = {}

    def _line(self, seconds: float | None = None) -> str:
        c = self._counts
        def show(k: str) -> str:
            return "?" if c.get(k) is None else str(c[k])
        seconds = time.monotonic() - self._t0 if seconds is None else seconds
        return (f"{self._name}: pulses {show('pulses')}  IRQs {show('irqs')}  "
                f"wakes {show('wakes')}  {seconds:.1f} s")

    def start(self, name: str) -> None:
        with self._lock:
            self._name, self._t0 = name, time.monotonic()
            self._counts = {"pulses": 0, "irqs": None, "wakes": 0}
            if self.live:
                self.stream.write("\r\x1b[K" + self._line())
            else:
                self.stream.write(f"tsfrig: {name} started\n")
            self.stream.flush()

    def update(self, pulses: int | None = None, irqs: int | None = None,
               wakes: int | None = None) -> None:
        with self._lock:
            for k, v in (("pulses", pulses), ("irqs", irqs), ("wakes", wakes)):
                if v is not None:
                    self._counts[k] = v
            if self.live:  # plain mode prints only start and finish: CI logs stay short
                self.stream.write("\r\x1b[K" + self._line())
                self.stream.flush()

    def finish(self, name: str, outcome: str, counts: dict | None = None,
               seconds: float | None = None) -> None:
        """The test's last line; seconds: its duration when it ran elsewhere (an xdist
        worker), else the time since start()."""
        with self._lock:
            if counts:
                self._counts.update({k: counts.get(k) for k in ("pulses", "irqs", "wakes")})
            self._name = name
            line = f"{self._line(seconds)}  {outcome}"
            self.stream.write(("\r\x1b[K" + line + "\n") if self.live else f"tsfrig: {line}\n")
            self.stream.flush()
