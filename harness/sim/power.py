"""The simulated bench's power switch, reached from another process: `tsfrig sim` listens on a
unix socket in Linux's abstract namespace (no file to leave behind, no path-length limit to
hit in a deep TMPDIR), announced as `power: @NAME`, and the harness's `power.method: sim`
switches through it. Both ends live here so the protocol can't drift apart.

One request per line, `off` or `on`; the answer comes once it is done: `ok` (off: the VM is
dead, the port gone), `ok PORT` (on: the board booted, at its prompt, on PORT), or
`error WHY`. A socket rather than a signal, so the harness learns when the board is back and
on which port (a client still holding the old device makes it come back under a new name).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import socket
import threading
import time

from harness.config.specs import PowerSpec
from harness.power import PowerError, PowerJob
from harness.sim.board import BoardError, VirtualBoard


class PowerServer:
    """Serves power requests for one virtual board until stop()."""

    def __init__(self, board: VirtualBoard, timeout_s: float = 15.0) -> None:
        self.board, self.timeout_s = board, timeout_s
        self.path = f"@tsfrig-sim-power-{os.getpid()}-{secrets.token_hex(4)}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(address(self.path))
        self._sock.listen(4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sim-power", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self._sock], [], [], 0.2)
            if not r:
                continue
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(self.timeout_s)
                with contextlib.suppress(OSError):
                    for line in _lines(conn):
                        conn.sendall(self._answer(line).encode() + b"\n")

    def _answer(self, request: str) -> str:
        if request not in ("off", "on"):
            return f"error unknown request {request!r}: send off or on"
        try:
            port = self.board.power(request == "on", self.timeout_s)
        except BoardError as e:
            return f"error {e}"
        return f"ok {port}".strip()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        self._sock.close()


def address(control: str) -> str:
    """The socket address of an announced control: `@NAME` is in the abstract namespace."""
    return "\0" + control[1:] if control.startswith("@") else control


def _lines(conn: socket.socket):
    buf = b""
    while True:
        data = conn.recv(256)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode(errors="replace").strip()


def reachable(control: str, timeout_s: float = 2.0) -> bool:
    """Does a bench listen on this control? (connects and hangs up, switching nothing)"""
    if not control:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        try:
            s.connect(address(control))
        except OSError:
            return False
    return True


def switch(control: str, on: bool, timeout_s: float) -> str | None:
    """Ask the bench behind `control` to switch the board off or on; the port it came back on
    (on). Raises PowerError with one line on failure."""
    what = "on" if on else "off"
    deadline = time.monotonic() + timeout_s + 5.0  # the bench's own deadline comes first
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s + 5.0)
            s.connect(address(control))
            s.sendall(what.encode() + b"\n")
            answer = b""
            while b"\n" not in answer and time.monotonic() < deadline:
                chunk = s.recv(256)
                if not chunk:
                    break
                answer += chunk
    except OSError as e:
        raise PowerError(f"power: sim: the bench's power control {control} does not answer "
                         f"({e.strerror or e}); is `tsfrig sim` still running?") from None
    text = answer.decode(errors="replace").strip()
    if not text.startswith("ok"):
        raise PowerError(f"power: sim: switching {what} failed: "
                         f"{text.removeprefix('error ') or 'no answer'}")
    return text[2:].strip() or None



SIM_OFF_S = 0.2  # a virtual board has nothing to discharge: off as long as a hard reset is


def _switch(job: PowerJob, on: bool) -> str | None:
    if not job.control:
        raise PowerError("power: sim: this bench announced no power control; start it with "
                         "`tsfrig sim` (kind: sim)")
    return switch(job.control, on, job.config.timeout_s)


def _ready(job: PowerJob) -> str:
    if not reachable(job.control):
        raise PowerError(f"power: sim: the bench's power control {job.control or '(none)'} "
                         "does not answer; is `tsfrig sim` still running?")
    return "sim: the simulated bench's switch answers (not switched by doctor)"


# power.method sim (harness/config/registry.py): a simulated bench's own switch, the default
SPEC = PowerSpec(simulated=True, defaults={"off_s": SIM_OFF_S}, switch=_switch, ready=_ready)
