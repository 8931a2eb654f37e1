"""The run's console: one line per finished test (its cause when it did not pass), and on a
terminal a live line below them (tests done / total, the current scenario, elapsed) that
is redrawn in place. Plain lines only, no control codes, when output is not a terminal or
under CI."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

CAUSE_CHARS = 200  # a cause longer than this is cut: the report and trace.log have it whole


def want_live(stream: TextIO) -> bool:
    """Live redraws only on a real terminal and never under CI."""
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    try:
        return not ci and hasattr(stream, "isatty") and stream.isatty()
    except ValueError:  # a closed stream
        return False


def one_line(text: str, limit: int = CAUSE_CHARS) -> str:
    """A message's first line, cut to fit a console line."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[:limit - 1] + "…"


class Progress:
    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = want_live(self.stream) if live is None else live
        self.total: int | None = None  # tests selected, once collection is over
        self.done = 0
        self._lock = threading.Lock()
        self._name = ""
        self._run_t0 = time.monotonic()
        self._t0 = 0.0
        self._counts: dict[str, int | None] = {}
        self._shown = False  # a live line is on screen, below the finished ones

    def _counts_text(self) -> str:
        c = self._counts

        def show(k: str) -> str:
            return "?" if c.get(k) is None else str(c[k])
        return f"pulses {show('pulses')}  IRQs {show('irqs')}  wakes {show('wakes')}"

    def _live_line(self) -> str:
        of = f"/{self.total}" if self.total else ""
        elapsed = time.monotonic() - self._run_t0
        now = time.monotonic() - self._t0
        return (f"[{self.done}{of} done, {elapsed:.0f} s] {self._name}: {self._counts_text()}  "
                f"{now:.1f} s")

    def _redraw(self) -> None:
        if self.live and self._name:
            self.stream.write("\r\x1b[K" + self._live_line())
            self._shown = True

    def start(self, name: str) -> None:
        """A test began: only the live line shows it (plain output has one line per test)."""
        with self._lock:
            self._name, self._t0 = name, time.monotonic()
            self._counts = {"pulses": 0, "irqs": None, "wakes": 0}
            self._redraw()
            self.stream.flush()

    def update(self, pulses: int | None = None, irqs: int | None = None,
               wakes: int | None = None) -> None:
        with self._lock:
            for k, v in (("pulses", pulses), ("irqs", irqs), ("wakes", wakes)):
                if v is not None:
                    self._counts[k] = v
            if self.live:
                self._redraw()
                self.stream.flush()

    def say(self, line: str) -> None:
        """A line of its own above the live line (a warning, a bench fault)."""
        with self._lock:
            self.stream.write(("\r\x1b[K" if self._shown else "") + line + "\n")
            self._redraw()
            self.stream.flush()

    def finish(self, name: str, outcome: str, counts: dict | None = None,
               seconds: float | None = None, cause: str = "") -> None:
        """The test's one line; seconds: its duration when it ran elsewhere (an xdist
        worker), else the time since start(); cause: why it did not pass."""
        with self._lock:
            self.done += 1
            if counts:
                self._counts.update({k: counts.get(k) for k in ("pulses", "irqs", "wakes")})
            elif self._name != name:
                self._counts = {}
            seconds = time.monotonic() - self._t0 if seconds is None else seconds
            line = f"tsfrig: {name}: {self._counts_text()}  {seconds:.1f} s  {outcome}"
            if cause and outcome != "passed":
                line += f": {one_line(cause)}"
            self.stream.write(("\r\x1b[K" if self._shown else "") + line + "\n")
            self._shown = False
            self._name = ""
            self.stream.flush()

    def clear(self) -> None:
        """Take the live line off the screen before the run's last lines."""
        with self._lock:
            if self._shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._shown = False
