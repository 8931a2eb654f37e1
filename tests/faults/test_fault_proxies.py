"""The fault-injection proxies do what the fault matrix relies on: they forward faithfully,
and kill/SIGSTOP/silence look to the client like a dead, stalled or hung daemon or an
unplugged board. Real processes, real sockets and ptys; every wait has a timeout."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from tests.faults.proxy import Proxy

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(30)


def hostport(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def recv_exactly(sock: socket.socket, n: int, timeout: float = 2.0) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, f"connection closed after {buf!r}"
        buf += chunk
    return buf


def read_fd_exactly(fd: int, n: int, timeout: float = 2.0) -> bytes:
    buf, deadline = b"", time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"timed out after {buf!r}"
        buf += os.read(fd, n - len(buf))
    return buf


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll a condition that no fd signals (another process's state), with a deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def open_sockets(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(os.readlink(fd).startswith("socket:") for fd in fds.iterdir())


def assert_gone(pid: int) -> None:
    """The proxy was reaped: the pid no longer names any process."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.fixture
def echo() -> Iterator[str]:
    """A tiny echo server (a thread per connection), the stand-in for pigpiod."""
    srv = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := conn.recv(4096):
                conn.sendall(data)
        conn.close()

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = srv.accept()
                conns.append(conn)
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{srv.getsockname()[1]}"
    with contextlib.suppress(OSError):
        srv.shutdown(socket.SHUT_RDWR)  # wakes accept()
    srv.close()
    for c in conns:
        with contextlib.suppress(OSError):
            c.shutdown(socket.SHUT_RDWR)


def test_tcp_forwards_many_connections_and_dies_like_pigpiod(echo: str) -> None:
    with Proxy("tcp", "--to", echo) as p:
        addr = hostport(p.address)
        # pigpio opens two connections (commands, notifications): both live at once
        a = socket.create_connection(addr, timeout=2)
        b = socket.create_connection(addr, timeout=2)
        a.sendall(b"cmd")
        b.sendall(b"notify")
        assert recv_exactly(b, 6) == b"notify"
        assert recv_exactly(a, 3) == b"cmd"
        p.kill()
        for s in (a, b):
            s.settimeout(2)
            try:
                got = s.recv(16)
            except ConnectionResetError:
                got = b""
            assert got == b"", "the connection outlived the proxy"
            s.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(addr, timeout=2)
    assert_gone(p.pid)


def test_tcp_stalls_when_stopped_and_resumes_in_order(echo: str) -> None:
    with Proxy("tcp", "--to", echo) as p:
        with socket.create_connection(hostport(p.address), timeout=2) as c:
            c.sendall(b"before")
            assert recv_exactly(c, 6) == b"before"
            p.stop()
            c.sendall(b"one,")
            c.sendall(b"two")
            c.settimeout(0.5)
            with pytest.raises(TimeoutError):
                c.recv(16)
            p.cont()
            assert recv_exactly(c, 7) == b"one,two"
    assert_gone(p.pid)


def test_silent_accepts_everyone_and_answers_no_one() -> None:
    with Proxy("silent") as p:
        addr = hostport(p.address)
        socks: list[socket.socket] = []
        try:
            # more than the listen backlog (64), in batches below it so the queue never
            # overflows (a dropped SYN costs a 1 s retransmit): the proxy accepted them all
            for _ in range(3):
                socks += [socket.create_connection(addr, timeout=2) for _ in range(32)]
                n = len(socks) + 1  # ... and its listening socket
                wait_for(lambda n=n: open_sockets(p.pid) == n, f"{n - 1} accepted connections")
            socks[0].sendall(b"\x00" * 16)  # a pigpio command
            socks[0].settimeout(0.5)
            with pytest.raises(TimeoutError):
                socks[0].recv(16)
        finally:
            for s in socks:
                s.close()
        os.kill(p.pid, signal.SIGTERM)
        assert p.wait(timeout=5) == 0, p.stderr  # SIGTERM is a clean exit, not a traceback
    assert_gone(p.pid)


def test_pty_bridges_and_vanishes_like_an_unplugged_board() -> None:
    board, device = os.openpty()  # the test plays the board behind /dev/pts/N
    try:
        with Proxy("pty", "--to", os.ttyname(device)) as p:
            assert p.address.startswith("/dev/pts/") and p.address != os.ttyname(device)
            with serial.Serial(p.address, timeout=1) as port:
                port.write(b"\x03\x01import os\r\x04")  # control bytes pass untouched (raw)
                assert read_fd_exactly(board, 13) == b"\x03\x01import os\r\x04"
                os.write(board, b"raw REPL; CTRL-B to exit\r\n>")
                assert port.read(27) == b"raw REPL; CTRL-B to exit\r\n>"
                p.kill()
                # Observed on Linux: the slave reads EIO once the proxy's master is gone, which
                # pyserial raises as SerialException("read failed: [Errno 5] ...").
                with pytest.raises(serial.SerialException):
                    port.read(1)
        assert_gone(p.pid)
    finally:
        os.close(board)
        os.close(device)


def test_pty_exits_when_the_device_goes_away() -> None:
    """A bench that dies under the proxy takes the proxy's port with it (no silent dead port)."""
    board, device = os.openpty()
    with Proxy("pty", "--to", os.ttyname(device)) as p:
        os.close(board)
        os.close(device)
        assert p.wait(timeout=5) == 1
        assert "went away" in p.stderr
    assert_gone(p.pid)


def test_proxy_dies_with_its_parent() -> None:
    """PR_SET_PDEATHSIG: a test process that is SIGKILLed leaves no proxy behind."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom tests.faults.proxy import Proxy\n"
         "p = Proxy('silent')\nprint(p.pid, flush=True)\ntime.sleep(60)\n"],
        cwd=REPO, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert parent.stdout is not None
        assert select.select([parent.stdout], [], [], 10)[0], "the parent printed no pid"
        pid = int(parent.stdout.readline())
        pidfd = os.pidfd_open(pid)
    finally:
        parent.kill()
        parent.wait(timeout=5)
    try:
        assert select.select([pidfd], [], [], 5)[0], f"proxy {pid} outlived its parent"
    finally:
        os.close(pidfd)
