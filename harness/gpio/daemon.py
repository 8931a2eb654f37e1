"""Socket chores the GPIO clients and the simulated daemons share: a request answered within a
deadline (the daemons' client libraries have none), and closing sockets so that a thread
blocked reading one wakes up."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable

from harness.gpio import GpioError


def ask(host: str, port: int, request: bytes, answer_size: int, timeout_s: float,
        daemon: str, fix: str) -> bytes:
    """Send one request to a GPIO daemon and read its fixed-size answer, all within timeout_s;
    GpioError (a bench fault) saying what the daemon did instead."""
    where = f"{daemon} at {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.sendall(request)
            answer = b""
            while len(answer) < answer_size:
                chunk = s.recv(answer_size - len(answer))
                if not chunk:
                    raise GpioError(f"{where} closed the connection without answering: {fix}")
                answer += chunk
    except TimeoutError:
        raise GpioError(f"{where} accepted the connection but did not answer within "
                        f"{timeout_s:.0f} s: it is hung or not {daemon}; restart it") from None
    except OSError as e:
        raise GpioError(f"{where} does not answer ({e}): {fix}") from None
    return answer


def close_all(socks: Iterable[socket.socket | None],
              readers: Iterable[threading.Thread | None] = ()) -> None:
    """Shut down and close each socket (None and already-dead ones are skipped quietly): a
    thread blocked in recv() on one of them returns. Each of readers (a client's
    notification thread, told to stop) is given a second to end between the two: a recv()
    on a socket closed under it would die of EBADF, and say so in a traceback."""
    socks = [s for s in socks if s is not None]
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
    for thread in readers:
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
    for s in socks:
        s.close()
