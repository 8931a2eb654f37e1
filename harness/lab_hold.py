"""The process that holds a labgrid place for one tsfrig run.

tsfrig starts it (harness/lab.py) in its own session, without a parent-death signal: it must
outlive a run that crashes or is killed. It acquires the place through `labgrid-client`,
waiting while someone else holds it, says what happened on stdout, then holds the place
until tsfrig writes a line or its stdin closes (tsfrig exited, however it died), and
releases it. It is the only process that releases the place, once, so a release can never
hit the next run's acquisition of the same place.

Lines on stdout: `held USER@HOST` (each time the holder changes), then `acquired`, or
`gave-up USER@HOST` (still held when --wait ran out), or `error TEXT`; after the release,
`released` or `release-failed TEXT`.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

CALL_TIMEOUT_S = 30.0  # one labgrid-client call (connect, sync with the coordinator, act)
POLL_S = 1.0  # how often a held place is asked for again
HELD_RE = re.compile(r"already acquired by (\S+?)\.?(?:\s|$)")


def who(acquired: str) -> str:
    """labgrid's `host/user` as a person writes it: `user@host`."""
    host, _, user = acquired.partition("/")
    return f"{user}@{host}" if user else acquired


def client(labgrid_client: str, place: str, *args: str) -> subprocess.CompletedProcess:
    """One labgrid-client call on the place, with a deadline."""
    return subprocess.run([labgrid_client, "-p", place, *args], capture_output=True,
                          text=True, timeout=CALL_TIMEOUT_S, stdin=subprocess.DEVNULL)


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def say(line: str) -> None:
    """A line to tsfrig; once tsfrig is gone there is nobody to tell."""
    with contextlib.suppress(OSError, ValueError):
        print(line, flush=True)


class Stop(Exception):
    """SIGTERM while the place is held: release it now."""


STOP = {"asked": False}  # SIGTERM came while acquiring: finish that call, then stop


def on_sigterm(_signum: int, _frame: object) -> None:
    STOP["asked"] = True
    if STOP.get("holding"):
        raise Stop


def told_to_stop(timeout_s: float | None) -> bool:
    """Wait up to timeout_s (None: for ever) for tsfrig's word: a line, or its stdin closing
    because it exited. True if it came, or SIGTERM did."""
    if STOP["asked"]:
        return True
    ready, _, _ = select.select([sys.stdin], [], [], timeout_s)
    return bool(ready) or STOP["asked"]


def me() -> str:
    """This host and user as labgrid names an acquirer (`host/user`)."""
    return (f"{os.environ.get('LG_HOSTNAME') or socket.gethostname()}/"
            f"{os.environ.get('LG_USERNAME') or getpass.getuser()}")


def acquire(labgrid_client: str, place: str, wait_s: float) -> bool:
    """Acquire the place, waiting up to wait_s while another user holds it. True if acquired.
    Gives up early when tsfrig goes away while it waits."""
    deadline = time.monotonic() + wait_s
    holder = ""
    while True:
        try:
            r = client(labgrid_client, place, "acquire")
        except subprocess.TimeoutExpired:
            say(f"error labgrid-client acquire did not answer within {CALL_TIMEOUT_S:.0f} s: "
                "is the coordinator (LG_COORDINATOR) up?")
            return False
        if r.returncode == 0:
            say("acquired")
            return True
        err = r.stderr + r.stdout
        m = HELD_RE.search(err)
        # the same user on this host: another tsfrig run, or a labgrid-client by hand
        now = m.group(1) if m else me() if "You have already acquired place" in err else ""
        if not now:
            say(f"error {last_line(err)}")
            return False
        if now != holder:
            holder = now
            say(f"held {who(holder)}")
        left = deadline - time.monotonic()
        if left <= 0:
            say(f"gave-up {who(holder)}")
            return False
        if told_to_stop(min(POLL_S, left)):  # tsfrig stopped waiting for it
            return False


def release(labgrid_client: str, place: str) -> None:
    """Release the place, retrying a coordinator that does not answer for a while."""
    deadline = time.monotonic() + 3 * CALL_TIMEOUT_S
    while True:
        try:
            r = client(labgrid_client, place, "release")
        except subprocess.TimeoutExpired:
            r = None
        if r is not None and (r.returncode == 0 or "is not acquired" in r.stderr):
            say("released")
            return
        if time.monotonic() >= deadline:
            say(f"release-failed {last_line(r.stderr) if r else 'labgrid-client timed out'}")
            return
        time.sleep(POLL_S)  # the coordinator is away: ask again shortly


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.lab_hold")
    p.add_argument("place")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a held place")
    p.add_argument("--client", default="labgrid-client", help="the labgrid-client executable")
    args = p.parse_args(argv)
    # Ctrl-C in tsfrig's terminal is tsfrig's to handle; SIGTERM to this process means
    # "release now", as stdin closing does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)
    if not acquire(args.client, args.place, args.wait):
        return 1
    try:
        STOP["holding"] = True
        told_to_stop(None)
    except Stop:
        pass
    finally:
        STOP["holding"] = False
    release(args.client, args.place)
    return 0


if __name__ == "__main__":
    sys.exit(main())
