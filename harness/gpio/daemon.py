"""What the GPIO clients (and the simulated daemons) share about talking to a daemon: a
request answered within a deadline and a client library connected within one (the libraries
have none), a failed call turned into a bench fault, and closing sockets so that a thread
blocked reading one wakes up."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from harness.gpio import GpioError, built_within

T = TypeVar("T")


class DaemonLink(Protocol):
    daemon: str  # the client library's name; its daemon is that + "d"
    host: str
    port: int
    command_timeout_s: float
    broken: str


@contextlib.contextmanager
def guarded(rig: DaemonLink, what: str, errors: tuple[type[BaseException], ...],
            fix: str) -> Iterator[None]:
    """Context for a rig's client library calls: a daemon that times out or refuses a command
    is a bench fault (GpioError), never a firmware verdict. Either way the link is marked
    broken (a late answer would be read as the next call's); `errors` are what the library
    raises when refused, `fix` what to check then."""
    daemon = f"{rig.daemon}d"
    log = logging.getLogger(type(rig).__module__)  # trace.log names the backend
    log.debug("%s: %s", rig.daemon, what)
    try:
        yield
    except TimeoutError:  # it accepted the command and then said nothing
        rig.broken = f"failed to {what}: no answer within {rig.command_timeout_s:g} s"
        log.warning("%s at %s:%s %s", daemon, rig.host, rig.port, rig.broken)
        raise GpioError(f"{daemon} at {rig.host}:{rig.port} {rig.broken}, so {daemon} or the "
                        f"Pi stalled (or the network dropped); restart {daemon}, or free the "
                        "Pi's CPU if it is overloaded") from None
    except errors as e:  # struct.error among them: a short answer
        rig.broken = f"failed to {what} ({e or type(e).__name__})"
        log.warning("%s at %s:%s %s", daemon, rig.host, rig.port, rig.broken)
        raise GpioError(f"{daemon} at {rig.host}:{rig.port} {rig.broken}: {fix}") from None


def connected_client(make: Callable[[], T], library: str, host: str, port: int,
                     timeout_s: float, opening: str, fix: str) -> T:
    """make() the `library` client's connection with a deadline (its constructor has none):
    built on a helper thread; one that is still `opening` its streams after timeout_s means
    a silent daemon. `fix`: what to do about a daemon that does not answer at all."""
    where = f"{library}d at {host}:{port}"
    client = built_within(make, timeout_s, f"{library}-connect")
    if client is None:
        raise GpioError(f"{where} did not {opening} within {timeout_s:.0f} s: "
                        f"restart {library}d")
    if not client.connected:
        raise GpioError(f"{where} does not answer: {fix}")
    return client


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
