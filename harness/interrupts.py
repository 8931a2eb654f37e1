"""SIGINT/SIGTERM once the tests are over: held, not raised, while the run's files are
written (results.json, junit.xml, index.html, the run directory's name, `latest`), so a
signal there can't leave half of them; the writer then marks the run `interrupted` in all
of them and exits 130/143."""

from __future__ import annotations

import os
import signal
import sys
import time

_held: list[str] = []
STEP_VAR = "TSFRIG_SIGNAL_AT"  # test hook: the write step at which a test sends its signal


def hold() -> None:
    """From now on a SIGINT or SIGTERM is noted (held()), never raised."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _note)


def _note(signum: int, _frame: object) -> None:
    _held.append(signal.Signals(signum).name)


def held() -> str | None:
    """The first signal that arrived while held, if any."""
    return _held[0] if _held else None


def block() -> None:
    """The run's files are written and its verdict is final: SIGINT and SIGTERM are blocked
    until the process is gone, else Python's shutdown (which restores their default action)
    could die of one and give an exit status that disagrees with the files."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def step(name: str) -> None:
    """A step of the write. Test hook: with TSFRIG_SIGNAL_AT=<name>, say `tsfrig-test: at
    <name>` on stderr and wait (at most 5 s) for the signal the test then sends, so a test
    can put a signal at each step rather than at a lucky moment."""
    if os.environ.get(STEP_VAR) != name:
        return
    print(f"tsfrig-test: at {name}", file=sys.__stderr__, flush=True)
    deadline = time.monotonic() + 5
    while not _held and time.monotonic() < deadline:
        time.sleep(0.005)  # a signal cuts the sleep short and is noted by _note
