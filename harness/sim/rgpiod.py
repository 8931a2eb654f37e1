"""A simulated Linux SBC (a Raspberry Pi 5) that speaks rgpiod's socket protocol, the daemon
of the lg library, on the same simulated GPIOs as the pigpiod one: the unmodified `rgpio`
client drives it, and both daemons see one set of wires.

Wire format (lg: rgpiod's socket thread and command table): a request is a 16-byte header
(magic u32, extension size u32, command u16, then how many 8-, 4- and 2-byte arguments the
extension holds, u16 each) and the extension, 8-byte arguments first. The answer is the
same header with the status (i32, negative: an lg error code) where the magic was and the
size of an answer extension (SBC, GIC, GIL, TICK), followed by that extension.
A connection that sends NOIB becomes a notification stream of 16-byte reports (timestamp ns
u64, chip u8, gpio u8, level u8, flags u8, 4 pad bytes) for every edge on a line claimed for
alerts with its handle; the timestamp is CLOCK_MONOTONIC ns as the kernel stamps a GPIO event
(here the simulated edge's µs × 1000, the clock the virtual board's ticks_us reads).
Outputs are software-timed, as rgpiod's are: tx_pulse and tx_wave are played by a thread per
line that changes the level when it wakes, and the edge carries the time it really happened,
not the one asked for. TICK answers CLOCK_REALTIME, as lg's lguTimestamp() does.
"""

from __future__ import annotations

import collections
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from harness.gpio.daemon import close_all
from harness.sim import clock
from harness.sim.pigpiod import SimPi
from harness.sim.pigpiod_protocol import (
    NOTIFY_SNDBUF,
    PUD_DOWN,
    PUD_OFF,
    PUD_UP,
    Notifier,
    recv_exact,
    send_backlog,
)

# rgpiod command numbers (lg's rgpio.h), those the rgpio client sends for GPIO work
GO, GC, GSIX, GSOX, GSAX, GSF, GR, GW = 10, 11, 12, 13, 14, 15, 19, 20
GPX, GWAVE, GBUSY, GROOM, GIC, GIL, GMODE = 23, 26, 27, 28, 31, 32, 33
NC, NR, NP, NOIB, SBC, FREE, LGV, TICK = 71, 72, 73, 117, 120, 121, 140, 141
# lg error codes
OKAY, BAD_HANDLE, BAD_TX_TYPE, UNKNOWN_COMMAND = 0, -5, -10, -47
BAD_EVENT_REQUEST, BAD_GPIO_NUMBER, CANNOT_OPEN_CHIP, GPIO_BUSY = -72, -73, -78, -79
GPIO_NOT_ALLOCATED, BAD_PWM_MICROS, BAD_GPIOCHIP, TX_QUEUE_FULL = -80, -86, -89, -96

HEADER = struct.Struct("<IIHHHH")
ANSWER = struct.Struct("<iIHHHH")
REPORT = struct.Struct("<QBBBBI")
LG_VERSION = 0x00020200
SBC_NAME = "tsfrig-sim-pi5"
CHIP_LINES, CHIP_NAME, CHIP_LABEL = 54, "gpiochip0", "pinctrl-rp1"
TX_BUF = 10  # queued tx_pulse / tx_wave entries per line
MIN_TX_US = 10  # lg's minimum on+off time of a pulse
MAX_EXTENSION = 1 << 20
SET_PULL_UP, SET_PULL_DOWN = 32, 64
RISING, FALLING = 1, 2
TX_PWM, TX_WAVE = 0, 1
# gpio_get_mode bits: kernel in use / output, lg input / output / alert
MODE_KERNEL_USED, MODE_KERNEL_OUTPUT, MODE_LG_INPUT, MODE_LG_OUTPUT, MODE_LG_ALERT = \
    1, 2, 1 << 8, 1 << 9, 1 << 10


@dataclass
class _Claim:
    chip_handle: int
    kind: str  # input | output | alert
    edges: int = 0  # alert: RISING | FALLING
    notify: int = -1  # alert: the notification handle its reports go to


@dataclass
class _Tx:
    """A line's software-timed output queue: ("pwm", on, off, cycles) or ("wave", steps)."""

    queue: collections.deque = field(default_factory=collections.deque)
    playing: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class _Stop(Exception):
    pass


class SimRgpiod:
    """rgpiod's command server and notification streams over a SimPi's GPIOs."""

    def __init__(self, pi: SimPi, port: int = 0) -> None:
        self.pi = pi
        self._want_port = port
        self.port = 0
        self._handles = iter(range(1, 1 << 15))  # chips and notifications share one space
        self._chips: dict[int, object] = {}  # chip handle -> its owning connection
        self._claims: dict[int, _Claim] = {}
        self._notifiers: dict[int, Notifier] = {}
        self._tx: dict[int, _Tx] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()
        pi.edge_listeners.append(self._on_edge)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> SimRgpiod:
        self._srv = SimPi._listen(self._want_port)
        self.port = self._srv.getsockname()[1]
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, fn, *args) -> threading.Thread:
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        return t

    def stop(self) -> None:
        """Close every socket, stop every output thread, join them all."""
        self._stop.set()
        with self.pi.lock:
            for gpio in list(self._tx):
                self._stop_tx(gpio)
        close_all([getattr(self, "_srv", None), *list(self._clients)])
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        if self._on_edge in self.pi.edge_listeners:
            self.pi.edge_listeners.remove(self._on_edge)

    def __enter__(self) -> SimRgpiod:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._srv], [], [], 0.2)
                if not r:
                    continue
                conn, _ = self._srv.accept()
            except (OSError, ValueError):
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._spawn(self._serve_client, conn)

    # ---- command socket ----------------------------------------------------------------------
    def _serve_client(self, conn: socket.socket) -> None:
        self._clients.add(conn)
        try:
            while not self._stop.is_set():
                head = recv_exact(conn, HEADER.size)
                if head is None:
                    return
                _, size, cmd, n_q, n_i, _ = HEADER.unpack(head)
                if size > MAX_EXTENSION:
                    return  # as rgpiod: a message this large ends the connection
                ext = recv_exact(conn, size) if size else b""
                if ext is None:
                    return
                if cmd == NOIB:
                    self._become_notifier(conn)
                    return
                q = struct.unpack_from(f"<{n_q}Q", ext) if 8 * n_q <= len(ext) else ()
                i = struct.unpack_from(f"<{n_i}I", ext, 8 * n_q) \
                    if 8 * n_q + 4 * n_i <= len(ext) else ()
                status, answer = self._command(conn, cmd, q, i)
                conn.sendall(ANSWER.pack(status, len(answer), cmd, 0, 0, 0) + answer)
        except OSError:
            return
        finally:
            self._free_owned(conn)  # the daemon frees a gone client's lines and handles
            self._clients.discard(conn)
            conn.close()

    def _become_notifier(self, conn: socket.socket) -> None:
        """Serve one notification stream until the client or NC closes it."""
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, NOTIFY_SNDBUF)
        n = Notifier(conn)
        n.active = True
        with self.pi.lock:
            handle = next(self._handles)
            self._notifiers[handle] = n
            conn.sendall(ANSWER.pack(handle, 0, NOIB, 0, 0, 0))
        try:
            while not self._stop.is_set() and self._notifiers.get(handle) is n:
                r, w, _ = select.select([conn], [conn] if n.backlog else [], [], 0.2)
                if w:
                    with self.pi.lock:
                        if self._notifiers.get(handle) is n and not send_backlog(n):
                            self._close_notifier(handle)
                if r and not conn.recv(64):
                    break  # the client hung up
        except (OSError, ValueError):
            pass
        with self.pi.lock:
            if self._notifiers.get(handle) is n:
                del self._notifiers[handle]

    def _close_notifier(self, handle: int) -> None:
        """Forget a notification handle and hang up its stream (lock held)."""
        n = self._notifiers.pop(handle, None)
        if n is not None:
            try:
                n.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _command(self, conn: socket.socket, cmd: int, q: tuple, i: tuple) -> tuple[int, bytes]:
        """One command: (status, answer extension)."""
        with self.pi.lock:
            try:
                return self._gpio_command(conn, cmd, q, i)
            except IndexError:  # fewer arguments than the command takes
                return UNKNOWN_COMMAND, b""

    def _gpio_command(self, conn, cmd: int, q: tuple, i: tuple) -> tuple[int, bytes]:
        if cmd == GO:
            if i[0] > 255:
                return BAD_GPIOCHIP, b""
            if i[0] != 0:  # one gpiochip on this board
                return CANNOT_OPEN_CHIP, b""
            h = next(self._handles)
            self._chips[h] = conn
            return h, b""
        if cmd in (NC, NP, NR):
            n = self._notifiers.get(i[0])
            if n is None:
                return BAD_HANDLE, b""
            if cmd == NC:
                self._close_notifier(i[0])
            else:
                n.active = cmd == NR
            return OKAY, b""
        if cmd == FREE:
            self._free_owned(conn)
            return OKAY, b""
        if cmd == SBC:
            name = SBC_NAME.encode() + b"\0"
            return len(name), name
        if cmd == LGV:
            return LG_VERSION, b""
        if cmd == TICK:
            return 8, struct.pack("<Q", time.time_ns())
        if cmd not in (GC, GSIX, GSOX, GSAX, GSF, GR, GW, GPX, GWAVE, GBUSY, GROOM, GIC, GIL,
                       GMODE):
            return UNKNOWN_COMMAND, b""
        if cmd == GWAVE:  # the pulses come first, then handle and gpio
            i = i[-2:]
        if i[0] not in self._chips:
            return BAD_HANDLE, b""
        if cmd == GC:
            self._close_chip(i[0])
            return OKAY, b""
        if cmd == GIC:
            info = struct.pack("<I32s32s", CHIP_LINES, CHIP_NAME.encode(), CHIP_LABEL.encode())
            return len(info), info
        if cmd in (GSIX, GSOX):
            gpio = i[2]
        elif cmd == GSAX:
            gpio = i[3]
        else:
            gpio = i[1]
        if gpio >= CHIP_LINES:
            return BAD_GPIO_NUMBER, b""
        if cmd == GIL:
            info = self._line_info(gpio)
            return len(info), info
        return self._line_command(cmd, i[0], gpio, q, i), b""

    def _line_command(self, cmd: int, h: int, gpio: int, q: tuple, i: tuple) -> int:
        claim = self._claims.get(gpio)
        if cmd in (GSIX, GSOX, GSAX, GW, GPX, GWAVE) and claim and claim.chip_handle != h:
            return GPIO_BUSY  # another process holds the line (the kernel says EBUSY)
        if cmd == GSIX:
            self._claim_input(h, gpio, i[1])
            return OKAY
        if cmd == GSOX:
            self._claim_output(h, gpio, i[3])
            return OKAY
        if cmd == GSAX:
            if not RISING <= i[2] <= RISING | FALLING:
                return BAD_EVENT_REQUEST
            self._claim_input(h, gpio, i[1])
            self._claims[gpio] = _Claim(h, "alert", i[2], i[4])
            return OKAY
        if cmd == GSF:
            if claim is None:
                return GPIO_NOT_ALLOCATED
            self._free_line(gpio)
            return OKAY
        if cmd == GR:
            if claim is None:  # as lg: reading an unclaimed line claims it as an input
                self._claim_input(h, gpio, 0)
            return self.pi.level[gpio]
        if cmd == GMODE:
            return self._mode_bits(gpio)
        if cmd in (GBUSY, GROOM):
            if i[2] not in (TX_PWM, TX_WAVE):
                return BAD_TX_TYPE
            tx = self._tx.get(gpio)
            if cmd == GBUSY:
                return int(tx is not None and (tx.playing or bool(tx.queue)))
            return TX_BUF - (len(tx.queue) if tx else 0)
        # the rest drive the line; lg claims an unclaimed or input line as an output first
        if claim is None or claim.kind != "output":
            self._claim_output(h, gpio, self.pi.level[gpio] if cmd != GW else i[2])
        if cmd == GW:
            self.pi.drive(gpio, 1 if i[2] else 0)
            return OKAY
        if cmd == GPX:
            on, off, cycles = i[2], i[3], i[5]
            if on == off == 0:  # stop pulsing: the active pulse ends, the queue is dropped
                self._stop_tx(gpio)
                return OKAY
            if on + off <= MIN_TX_US:
                return BAD_PWM_MICROS
            return self._queue(gpio, ("pwm", on, off, cycles))
        # GWAVE: a group of one line (bit 0 of each pulse's bits/mask is the line)
        steps = [(q[k], q[k + 1], q[k + 2]) for k in range(0, len(q) - 2, 3)]
        return self._queue(gpio, ("wave", steps))

    def _line_info(self, gpio: int) -> bytes:
        claim = self._claims.get(gpio)
        return struct.pack("<II32s32s", gpio, self._mode_bits(gpio), f"GPIO{gpio}".encode(),
                           b"lg" if claim else b"")

    def _mode_bits(self, gpio: int) -> int:
        claim = self._claims.get(gpio)
        if claim is None:
            return 0
        return MODE_KERNEL_USED | {"input": MODE_LG_INPUT, "alert": MODE_LG_ALERT,
                                   "output": MODE_KERNEL_OUTPUT | MODE_LG_OUTPUT}[claim.kind]

    # ---- lines -------------------------------------------------------------------------------
    def _claim_input(self, h: int, gpio: int, flags: int) -> None:
        pull = PUD_UP if flags & SET_PULL_UP else PUD_DOWN if flags & SET_PULL_DOWN else PUD_OFF
        self._stop_tx(gpio)
        self._claims[gpio] = _Claim(h, "input")
        self.pi.release(gpio, pull)

    def _claim_output(self, h: int, gpio: int, level: int) -> None:
        self._claims[gpio] = _Claim(h, "output")
        self.pi.drive(gpio, 1 if level else 0)

    def _free_line(self, gpio: int) -> None:
        """A freed line goes back to an input, as the kernel releases it."""
        self._stop_tx(gpio)
        del self._claims[gpio]
        self.pi.release(gpio, self.pi.pull[gpio])

    def _close_chip(self, h: int) -> None:
        for gpio in [g for g, c in self._claims.items() if c.chip_handle == h]:
            self._free_line(gpio)
        self._chips.pop(h, None)

    def _free_owned(self, conn: socket.socket) -> None:
        with self.pi.lock:
            for h in [h for h, owner in self._chips.items() if owner is conn]:
                self._close_chip(h)

    def _on_edge(self, gpio: int, level: int, tick: int) -> None:
        """An edge on the simulated wires (GPIO lock held): a report to the stream of the
        alert that watches this line, stamped in ns on the monotonic clock."""
        claim = self._claims.get(gpio)
        if claim is None or claim.kind != "alert" or not claim.edges & (RISING if level
                                                                        else FALLING):
            return
        n = self._notifiers.get(claim.notify)
        if n is None or not n.active:
            return
        now = clock.now_us()
        ns = (now + clock.tick_diff(tick, now & clock.TICK_MASK)) * 1000
        n.backlog += REPORT.pack(ns, 0, gpio, level, 0, 0)
        if not send_backlog(n):
            self._close_notifier(claim.notify)

    # ---- software-timed output ---------------------------------------------------------------
    def _queue(self, gpio: int, entry: tuple) -> int:
        tx = self._tx.setdefault(gpio, _Tx())
        if len(tx.queue) >= TX_BUF:
            return TX_QUEUE_FULL
        tx.queue.append(entry)
        if tx.thread is None or not tx.thread.is_alive():
            tx.playing = True
            tx.thread = self._spawn(self._play, gpio, tx)
        return TX_BUF - len(tx.queue)

    def _stop_tx(self, gpio: int) -> None:
        """End the line's output at once; its thread exits without another edge (lock held)."""
        tx = self._tx.pop(gpio, None)
        if tx is not None:
            tx.queue.clear()
            tx.stop.set()

    def _play(self, gpio: int, tx: _Tx) -> None:
        """Play the line's queue as a daemon thread does: each level change happens when the
        thread wakes, late by however long the host took to run it."""
        try:
            while True:
                with self.pi.lock:
                    if not tx.queue or tx.stop.is_set() or self._stop.is_set():
                        tx.playing = False
                        return
                    entry = tx.queue.popleft()
                if entry[0] == "pwm":
                    _, on, off, cycles = entry
                    n = 0
                    while cycles == 0 or n < cycles:
                        self._level(gpio, 1, tx)
                        self._sleep_us(on, tx)
                        self._level(gpio, 0, tx)
                        self._sleep_us(off, tx)
                        n += 1
                else:
                    for bits, mask, delay in entry[1]:
                        if mask & 1:
                            self._level(gpio, bits & 1, tx)
                        self._sleep_us(delay, tx)
        except _Stop:
            with self.pi.lock:
                tx.playing = False

    def _level(self, gpio: int, level: int, tx: _Tx) -> None:
        with self.pi.lock:
            if tx.stop.is_set() or self._stop.is_set():
                raise _Stop
            self.pi.drive(gpio, level)  # stamped now: when the thread got here

    def _sleep_us(self, us: int, tx: _Tx) -> None:
        if us and tx.stop.wait(us / 1e6):
            raise _Stop
