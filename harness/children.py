"""Child processes never outlive the run that started them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child (as preexec_fn): receive SIGTERM when the parent dies, even by SIGKILL, so
    no simulated bench or VM is orphaned (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def signal_children(sig: int) -> list[int]:
    """Send sig to every live child process of this one (e.g. pytest-xdist's workers, so
    they unwind and stop their benches); returns their pids. Linux /proc; elsewhere none."""
    me = str(os.getpid())
    sent = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue  # gone meanwhile
        if ppid == me and state != "Z":
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), sig)
                sent.append(int(entry.name))
    return sent


def stop_child(proc: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """SIGTERM a child so it can stop its own children; SIGKILL it if it has not exited
    within timeout_s. Reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def stop_bench(proc: subprocess.Popen | None) -> None:
    """Stop a child bench (stop_child) and close the pipes it announced itself on; None (not
    started, or stopped already) is nothing to do."""
    if proc is None:
        return
    stop_child(proc)
    for f in (proc.stdout, proc.stderr):
        if f:
            f.close()
