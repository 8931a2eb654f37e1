"""Temporary directories of a simulated bench (the board's flash, flashed images) that are
removed even when the bench itself is SIGKILLed: each is named for the process that owns it,
and the next bench to start removes those whose owner is gone."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

OWNED = re.compile(r"tsfrig-(.+-flash|vb-images)-(\d+)-[a-z0-9_]{8}")  # tsfrig-<what>-<pid>-


def owned_temp_dir(what: str) -> Path:
    """A temporary directory named for this process (tsfrig-<what>-<pid>-XXXXXXXX), so that
    sweep_orphaned_temp() can tell when no process owns it any more."""
    return Path(tempfile.mkdtemp(prefix=f"tsfrig-{what}-{os.getpid()}-"))


def _alive(pid: int) -> bool:
    """Is pid a running process? A zombie (killed, not yet reaped: its parent died too and
    nothing reaps orphans in some containers) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux), or gone meanwhile
        return True


def sweep_orphaned_temp(tmp: Path | None = None) -> list[Path]:
    """Remove the flash and image directories of simulated benches whose process is gone.

    A bench removes its own on the way out, also when the run above it is SIGKILLed (it is
    told, harness.children.die_with_parent); a SIGKILL of the bench itself (a whole process
    group killed, as `timeout -s KILL` or a cancelled CI job do) leaves no process to do it,
    so the next bench to start in the same TMPDIR does. Returns what it removed."""
    tmp = Path(tmp or tempfile.gettempdir())
    removed = []
    for d in tmp.glob("tsfrig-*"):
        m = OWNED.fullmatch(d.name)
        if m and d.is_dir() and not d.is_symlink() and not _alive(int(m.group(2))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed
