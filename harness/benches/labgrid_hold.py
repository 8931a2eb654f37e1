"""The process that holds a labgrid place for one tsfrig run.

tsfrig starts it (labgrid.py) in its own session, without a parent-death signal: it must
outlive a run that crashes or is killed. It acquires the place through `labgrid-client`,
waiting while someone else holds it, says what happened on stdout, then holds the place
until tsfrig writes a line or its stdin closes (tsfrig exited, however it died), and
releases it. It is the only process that releases the place, once, so a release can never
hit the next run's acquisition of the same place.

Lines on stdout: `held USER@HOST` (when it starts to wait, and when the holder changes while
it waits), then `acquired`, or `gave-up USER@HOST` (still held when --wait, counted from the
first answer that the place is held, ran out), or `error TEXT`; after the release, `released`
or `release-failed TEXT`.
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

from harness.children import die_with_parent

CALL_TIMEOUT_S = 30.0  # one labgrid-client call (connect, sync with the coordinator, act)
POLL_S = 1.0  # between release attempts, and between acquire attempts without a monitor
RECHECK_S = 10.0  # a held place is asked for again at least this often, change or not
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


class Monitor:
    """`labgrid-client monitor`: the coordinator's place changes as they happen, so a waiting
    run asks again when the place may have come free instead of asking every second."""

    def __init__(self, labgrid_client: str) -> None:
        self.proc = subprocess.Popen(
            [labgrid_client, "monitor"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=die_with_parent)
        self.buf = b""

    def wait_change(self, timeout_s: float) -> bool:
        """Wait up to timeout_s for a place to change (or tsfrig's word). True if tsfrig
        said stop. A monitor that died leaves a one-second poll."""
        if self.proc.stdout is None:
            return told_to_stop(min(POLL_S, timeout_s))
        deadline = time.monotonic() + timeout_s
        while not STOP["asked"]:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([sys.stdin, self.proc.stdout], [], [], left)
            if sys.stdin in ready:
                return True
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:  # it died: poll from here on
                    self.proc.stdout.close()
                    self.proc.stdout = None
                    return told_to_stop(min(POLL_S, left))
                *lines, self.buf = (self.buf + chunk).split(b"\n")
                if any(line.startswith(b"Place ") for line in lines):
                    return False  # a place changed: ask again
        return True

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def me() -> str:
    """This host and user as labgrid names an acquirer (`host/user`)."""
    return (f"{os.environ.get('LG_HOSTNAME') or socket.gethostname()}/"
            f"{os.environ.get('LG_USERNAME') or getpass.getuser()}")


def acquire(labgrid_client: str, place: str, wait_s: float) -> bool:
    """Acquire the place, waiting up to wait_s from the first answer that someone else holds
    it. True if acquired. Gives up early when tsfrig goes away while it waits."""
    deadline: float | None = None
    holder = ""
    monitor: Monitor | None = None
    try:
        while True:
            try:
                r = client(labgrid_client, place, "acquire")
            except subprocess.TimeoutExpired:
                say(f"error labgrid-client acquire did not answer within {CALL_TIMEOUT_S:.0f} "
                    "s: is the coordinator (LG_COORDINATOR) up?")
                return False
            if r.returncode == 0:
                say("acquired")
                return True
            err = r.stderr + r.stdout
            if "already acquired" not in err:  # no such place, no coordinator, ...
                say(f"error {last_line(err)}")
                return False
            m = HELD_RE.search(err)
            # the same user on this host: another tsfrig run, or labgrid-client by hand;
            # no name: another waiter took it between our look and our request
            now = m.group(1) if m else me() if "You have already acquired" in err else ""
            holder, new = now or holder, bool(now) and now != holder
            deadline = deadline or time.monotonic() + wait_s
            left = deadline - time.monotonic()
            if left <= 0:
                say(f"gave-up {who(holder) if holder else 'another client'}")
                return False
            if new:  # said only when it is going to wait: tsfrig prints it
                say(f"held {who(holder)}")
            if not now:
                continue  # ask again at once: the answer names the new holder
            if monitor is None:  # then once more at once: a release while it starts up
                monitor = Monitor(labgrid_client)  # is seen by that request
                continue
            if monitor.wait_change(min(RECHECK_S, left)):  # tsfrig stopped waiting
                return False
    finally:
        if monitor is not None:
            monitor.close()


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
        if r is not None and "different user" in r.stderr:  # someone took it over (--kick)
            say(f"release-failed {last_line(r.stderr)}")
            return
        if time.monotonic() >= deadline:
            say(f"release-failed {last_line(r.stderr) if r else 'labgrid-client timed out'}")
            return
        time.sleep(POLL_S)  # the coordinator is away: ask again shortly


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.benches.labgrid_hold")
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
