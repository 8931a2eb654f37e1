"""Fault-injection proxies: real processes on the wire between the harness and a bench.

A test puts one of these between the harness and the (simulated) bench and then kills it
(a pigpiod that died, a board unplugged), SIGSTOPs it (a stalled daemon or link) or uses the
silent one (a hung pigpiod). No mocks: the harness sees real sockets and a real pty.

    python -m tests.faults.proxy tcp --to HOST:PORT   # prints "listening: 127.0.0.1:PORT"
    python -m tests.faults.proxy silent               # prints "listening: 127.0.0.1:PORT"
    python -m tests.faults.proxy pty --to /dev/pts/N  # prints "serial: /dev/pts/M"

In a test:

    with Proxy("tcp", "--to", "127.0.0.1:8888") as p:
        connect(p.address); p.stop(); ...; p.cont(); ...; p.kill()
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from types import TracebackType
from typing import IO

REPO = Path(__file__).resolve().parent.parent.parent
PARENT_ENV = "TSFRIG_PROXY_PARENT"  # the pid that must still be our parent after prctl
START_TIMEOUT_S = 10.0
CHUNK = 65536
PTY_BUFFER_LIMIT = 1 << 20  # per direction: stop reading a side whose peer doesn't drain


# ---- the proxy process ------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Get SIGTERM when the parent dies (even by SIGKILL), so a crashed test orphans nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    expected = os.environ.get(PARENT_ENV)
    if expected and os.getppid() != int(expected):  # the parent died before prctl took hold
        sys.exit(0)


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds the main loop as SystemExit, so the process exits 0 and closes its fds."""
    raise SystemExit(0)


def _announce(line: str) -> None:
    print(line, flush=True)


def _listen() -> socket.socket:
    """A listening socket on a free loopback port (the kernel picks it: no port races)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    return srv


def _parse_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


class _Pair:
    """The two sockets of one forwarded connection; the second pump to finish closes both."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.socks = (a, b)
        self._lock = threading.Lock()
        self._running = 2

    def finished(self) -> None:
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            for s in self.socks:
                s.close()


def _pump(src: socket.socket, dst: socket.socket, pair: _Pair) -> None:
    """One direction of a connection; on EOF pass the half-close on, on an error drop both."""
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                break
            dst.sendall(data)
    except OSError:
        for s in (src, dst):  # a reset on one side resets the other (wakes the other pump)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
    pair.finished()


def _forward_connection(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=5)
    except OSError as e:
        print(f"proxy: cannot reach {target[0]}:{target[1]}: {e}", file=sys.stderr, flush=True)
        client.close()
        return
    upstream.settimeout(None)
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # pigpio is request/reply
    pair = _Pair(client, upstream)
    for src, dst in ((client, upstream), (upstream, client)):
        threading.Thread(target=_pump, args=(src, dst, pair), daemon=True).start()


def run_tcp(target: tuple[str, int]) -> None:
    """Forward every accepted connection to target (a thread pair each) until killed."""
    srv = _listen()
    _announce(f"listening: 127.0.0.1:{srv.getsockname()[1]}")
    while True:
        client, _ = srv.accept()
        threading.Thread(target=_forward_connection, args=(client, target), daemon=True).start()


def run_silent() -> None:
    """Accept everything, answer nothing, close nothing: a hung pigpiod."""
    srv = _listen()
    _announce(f"listening: 127.0.0.1:{srv.getsockname()[1]}")
    held: list[socket.socket] = []  # kept so the peers never see a close
    while True:
        client, _ = srv.accept()
        held.append(client)


def run_pty(device: str) -> None:
    """Bridge a new pty to device; our death makes the new port vanish like an unplugged USB.

    The proxy holds its own slave fd open so the master never reads EIO while no client has the
    port open (e.g. between two mpremote sessions). If the device goes away (EIO/EOF), so do we.
    """
    dev = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(dev)
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    _announce(f"serial: {os.ttyname(slave)}")
    peer = {dev: master, master: dev}
    pending = {dev: bytearray(), master: bytearray()}  # bytes waiting to be written TO the fd
    while True:
        readable = [fd for fd in (dev, master) if len(pending[peer[fd]]) < PTY_BUFFER_LIMIT]
        writable = [fd for fd in (dev, master) if pending[fd]]
        rr, ww, _ = select.select(readable, writable, [])
        for fd in rr:
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                continue
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b""
            if not data:  # EIO: the other end of that pty is gone
                side = device if fd == dev else "own pty"
                print(f"proxy: {side} went away", file=sys.stderr, flush=True)
                sys.exit(1)
            pending[peer[fd]] += data
        for fd in ww:
            with contextlib.suppress(BlockingIOError):
                del pending[fd][: os.write(fd, pending[fd])]


def main(argv: list[str] | None = None) -> int:
    """Entry point: python -m tests.faults.proxy MODE [--to ADDRESS]."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, _on_sigterm)
    parser = argparse.ArgumentParser(prog="python -m tests.faults.proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("tcp", help="forward TCP").add_argument(
        "--to", required=True, type=_parse_hostport, metavar="HOST:PORT")
    modes.add_parser("silent", help="accept TCP, never answer")
    modes.add_parser("pty", help="forward a serial pty").add_argument(
        "--to", required=True, metavar="/dev/pts/N")
    args = parser.parse_args(argv)
    try:
        if args.mode == "tcp":
            run_tcp(args.to)
        elif args.mode == "silent":
            run_silent()
        else:
            run_pty(args.to)
    except KeyboardInterrupt:
        return 0
    return 0


# ---- the test-side API ------------------------------------------------------------------------
class Proxy:
    """A proxy process for one test: start it, read its address, stop/cont/kill it, reap it.

    Create it from the thread that outlives it (PR_SET_PDEATHSIG fires when the creating
    *thread* exits, not only the process).
    """

    def __init__(self, *args: str) -> None:
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # a file: a chatty proxy never blocks
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.proxy", *args], cwd=REPO,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            env=dict(os.environ, **{PARENT_ENV: str(os.getpid())}))
        self.pid: int = self._proc.pid
        try:
            line = self._first_line(START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        self.address: str = line.split(": ", 1)[1]

    def _first_line(self, timeout: float) -> str:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"proxy {self._args} printed no address within {timeout:g} s"
                                   f"{self._stderr_tail()}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self._proc.wait(timeout=5)
                    raise RuntimeError(f"proxy {self._args} exited "
                                       f"({self._proc.returncode}) before its address"
                                       f"{self._stderr_tail()}")
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode(errors="replace").strip()
        if not line.startswith(("listening: ", "serial: ")):
            raise RuntimeError(f"proxy {self._args} printed {line!r}{self._stderr_tail()}")
        return line

    @property
    def _args(self) -> str:
        return " ".join(map(str, self._proc.args[3:]))  # type: ignore[index]

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace").strip()
        return f": {err[-2000:]}" if err else ""

    @property
    def stderr(self) -> str:
        """What the proxy wrote to stderr so far (why it exited, if it did)."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def _signal(self, sig: int) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def stop(self) -> None:
        """SIGSTOP: a stalled daemon/link; the kernel still buffers, nothing is forwarded.

        Returns once every thread is stopped, so nothing sent after stop() can slip through.
        """
        self._signal(signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while self._proc.returncode is None and not self._stopped():
            if time.monotonic() > deadline:
                raise RuntimeError(f"proxy {self.pid} did not stop within 5 s")
            time.sleep(0.001)  # no fd reports another process's stop: poll /proc briefly

    def _stopped(self) -> bool:
        try:
            tasks = list(Path(f"/proc/{self.pid}/task").iterdir())
            states = [(t / "stat").read_text().rpartition(")")[2].split()[0] for t in tasks]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True  # gone (or going): nothing flows either way
        return all(st in ("T", "t", "Z", "X") for st in states)

    def wait(self, timeout: float) -> int:
        """Reap the proxy if it exits by itself (e.g. its device went away); its exit code."""
        return self._proc.wait(timeout=timeout)

    def cont(self) -> None:
        """SIGCONT: resume forwarding; what was buffered flows in order."""
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL and reap: every connection/port drops at once, like a dead daemon or board."""
        self._signal(signal.SIGKILL)
        self._proc.wait(timeout=10)

    def close(self) -> None:
        """Kill and reap the process, close the pipes (idempotent)."""
        self._signal(signal.SIGCONT)
        self.kill()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
