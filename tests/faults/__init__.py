"""Broken firmware builds for the fault matrix: each is an `asyncio` overlay over the build's
own frozen asyncio that breaks the flag the way real builds have (raising at import, in the
constructor, in wait(), inside the loop's poll path, or hanging), not a defect in one
contract clause (those are the mutants). The suite must call every one a firmware failure
(exit 1) with the board's exception leading the message."""

from __future__ import annotations

from pathlib import Path

from tests.mutants import LOADER

# MicroPython. A marker file says "the board is inside wait() now", so a test can inject a
# bench fault mid-scenario on an event instead of guessing with a sleep.
MARK = '''
def _mark(path="{marker}"):
    if path:
        try:
            with open(path, "w") as f:
                f.write("in wait")
        except OSError:
            pass
'''

BROKEN: dict[str, str] = {
    "import_raises": '''
raise ImportError("asyncio: this build's asyncio fails to import")
''',
    "ctor_raises": '''
class ThreadSafeFlag(_Base):
    def __init__(self):
        raise RuntimeError("ThreadSafeFlag: no free event slot")
''',
    "wait_raises_at_once": '''
class ThreadSafeFlag(_Base):
    async def wait(self):
        raise ValueError("wait: flag state corrupt")
''',
    "wait_raises_after_wakes": '''
class ThreadSafeFlag(_Base):
    def __init__(self):
        super().__init__()
        self.woken = 0

    async def wait(self):
        await _Base.wait(self)
        self.woken += 1
        if self.woken >= 3:
            raise ValueError("wait: flag state corrupt after %d wakes" % self.woken)
''',
    "poll_path_typeerror": '''
class ThreadSafeFlag(_Base):
    def ioctl(self, req, flags):
        raise TypeError("can't convert NoneType to int")
''',
    # upstream fix cfe6a11e39 reverted (as on v1.27.0 with it reverted): ioctl() answers None to
    # every request but MP_STREAM_POLL, so wait() raises TypeError as it registers the flag with
    # the poller, and the poller, left holding a half-registered object, segfaults the unix VM
    # at its next poll: a real SIGSEGV, moments after the board reported the waiter's death
    "ioctl_none_segfaults": '''
class ThreadSafeFlag(_Base):
    def ioctl(self, req, flags):
        if req == 3:  # MP_STREAM_POLL
            return self.state * flags
''',
    "wait_busy_loops": '''
class ThreadSafeFlag(_Base):
    async def wait(self):
        while not self.state:  # never yields: the loop (and the board's REPL) hangs
            pass
        self.state = 0
''',
    # correct, but says when the board is inside wait(): for bench faults injected mid-scenario
    "marks_wait": '''
class ThreadSafeFlag(_Base):
    async def wait(self):
        _mark()
        await _Base.wait(self)
''',
}


def write_broken(name: str, dest: Path, marker: Path | None = None) -> Path:
    """Write broken build `name` as an overlay directory at dest; return dest."""
    pkg = dest / "asyncio"
    pkg.mkdir(parents=True, exist_ok=True)
    body = MARK.format(marker=marker or "") + BROKEN[name]
    (pkg / "__init__.py").write_text(LOADER.format(name=name) + body)
    return dest
