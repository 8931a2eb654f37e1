"""Firmware mutants: the build's own asyncio with exactly one defect in ThreadSafeFlag.

Each mutant is written out as an overlay directory holding an ``asyncio`` package that
loads the build's frozen asyncio, then replaces ThreadSafeFlag with a subclass carrying
the defect. The suite must fail on the scenario named for that mutant, and pass on the
unmodified build: that is the evidence the suite can catch what it claims to check.

    python -m tests.mutants OUT_DIR    # write every mutant overlay under OUT_DIR
"""

from __future__ import annotations

from pathlib import Path

# MicroPython. Loads the frozen asyncio from '.frozen' while this overlay is off the path,
# keeps its submodules cached, and serves every other attribute from it.
LOADER = '''\
import sys

_path = sys.path[:]
_me = sys.modules.pop("asyncio")
sys.path[:] = [p for p in _path if p == ".frozen"]
try:
    import asyncio as _real
    for _sub in ("core", "event", "funcs", "lock", "stream"):
        try:
            __import__("asyncio." + _sub)
        except ImportError:
            pass
finally:
    sys.path[:] = _path
    sys.modules["asyncio"] = _me

_Base = _real.ThreadSafeFlag
MUTANT = "{name}"


def __getattr__(attr):
    return getattr(_real, attr)

'''

# name -> (the test that must fail, the defect as a ThreadSafeFlag subclass)
MUTANTS: dict[str, tuple[str, str]] = {
    "no_wake": ("test_wake", '''
class ThreadSafeFlag(_Base):
    """set() is recorded but never reported to the poller: a waiting task is never woken."""

    def ioctl(self, req, flags):
        return 0 if req == 3 else -1
'''),
    "no_auto_reset": ("test_auto_reset", '''
class ThreadSafeFlag(_Base):
    """wait() returns but leaves the flag set: every later wait() returns at once."""

    async def wait(self):
        await _Base.wait(self)
        self.state = 1
'''),
    "toggle_set": ("test_coalesce_no_lost_wakeup", '''
class ThreadSafeFlag(_Base):
    """set() toggles instead of setting: an even number of sets is lost."""

    def set(self):
        self.state ^= 1
'''),
    "counting": ("test_coalesce_no_lost_wakeup", '''
class ThreadSafeFlag(_Base):
    """Counts sets like a semaphore: a burst wakes the waiter once per set, not once."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def set(self):
        self.n += 1
        self.state = 1

    async def wait(self):
        await _Base.wait(self)
        if self.n > 0:
            self.n -= 1
        if self.n > 0:
            self.state = 1
'''),
    "forgets_pending": ("test_pending_set_is_remembered", '''
class ThreadSafeFlag(_Base):
    """wait() discards a set that happened before it was called."""

    async def wait(self):
        self.state = 0
        await _Base.wait(self)
'''),
    "clear_noop": ("test_clear_discards_pending_set", '''
class ThreadSafeFlag(_Base):
    """clear() does nothing: spurious early sets still wake the first wait()."""

    def clear(self):
        pass
'''),
    "cancel_wedges": ("test_cancellation", '''
class ThreadSafeFlag(_Base):
    """A cancelled or timed-out wait() leaves the flag wedged: later sets are ignored."""

    def __init__(self):
        super().__init__()
        self.wedged = False

    def set(self):
        if not self.wedged:
            self.state = 1

    async def wait(self):
        try:
            await _Base.wait(self)
        except BaseException:
            self.wedged = True
            raise
'''),
    "second_waiter_raises": ("test_second_waiter_behaviour", '''
class ThreadSafeFlag(_Base):
    """A second concurrent wait() raises instead of silently replacing the first."""

    def __init__(self):
        super().__init__()
        self.waiting = False

    async def wait(self):
        if self.waiting:
            raise RuntimeError("ThreadSafeFlag already has a waiter")
        self.waiting = True
        try:
            await _Base.wait(self)
        finally:
            self.waiting = False
'''),
    "slow_wake": ("test_latency", '''
class ThreadSafeFlag(_Base):
    """Correct, but the woken task resumes 20 ms late."""

    async def wait(self):
        await _Base.wait(self)
        await _real.sleep_ms(20)
'''),
}


def write_overlay(name: str, dest: Path) -> Path:
    """Write mutant `name` as an overlay directory at dest; return dest."""
    _, body = MUTANTS[name]
    pkg = dest / "asyncio"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(LOADER.format(name=name) + body)
    return dest


def main(argv: list[str]) -> None:
    """Write every mutant overlay under argv[0] (default ./mutants)."""
    out = Path(argv[0] if argv else "mutants")
    for mutant in MUTANTS:
        print(write_overlay(mutant, out / mutant))


# a board program that ignores Ctrl-C: only a reset gets the board back
WEDGE = "while True:\n    try:\n        while True:\n            pass\n" \
        "    except KeyboardInterrupt:\n        pass\n"


def write_wedge_on_cancel(tmp_path: Path) -> Path:
    """An overlay whose flag hangs (swallowing Ctrl-C) when its waiter is cancelled."""
    overlay = tmp_path / "overlay" / "asyncio"
    overlay.mkdir(parents=True)
    (overlay / "__init__.py").write_text(LOADER.format(name="wedge_on_cancel") + '''
class ThreadSafeFlag(_Base):
    async def wait(self):
        try:
            await _Base.wait(self)
        except BaseException:
            while True:
                try:
                    while True:
                        pass
                except KeyboardInterrupt:
                    pass
''')
    return overlay.parent
