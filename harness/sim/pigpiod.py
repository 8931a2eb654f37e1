"""A simulated Raspberry Pi that speaks pigpiod's socket protocol on 127.0.0.1.

The unmodified `pigpio` client drives it: 16-byte requests (cmd, p1, p2, p3 + p3
extension bytes), 16-byte answers whose last word is the result, and notification
sockets streaming 12-byte reports (seq, flags, tick, bank-1 levels) for every edge.
Edges carry their exact scheduled tick (trigger pulses, waveforms), so timing measured
on the Pi side is exact even when a thread wakes a little late. GPIOs wired to the
virtual board travel over the board link (see wire.py). A notification client that stops
reading is hung up on once it falls too far behind, so it can't stall the other clients.
SimPi is also the GPIO core other daemons' front ends share (rgpiod.py): they drive lines
with drive()/release() and hear every edge through edge_listeners. The protocol itself
(requests, notification streams, waveforms) is pigpiod_protocol.py's.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Callable

from harness.gpio.daemon import close_all
from harness.sim import clock, wire
from harness.sim.pigpiod_protocol import (
    INPUT,
    NUM_GPIO,
    OUTPUT,
    PUD_OFF,
    PUD_UP,
    Notifier,
    PigpiodProtocol,
    recv_exact,
    send_backlog,
)


class SimPi(PigpiodProtocol):
    """GPIO state, pigpiod command server, notification streams and the board link."""

    def __init__(self, wiring: list[tuple[int, int, str]] = (), port: int = 0,
                 on_reset_line: Callable[[int], None] | None = None) -> None:
        self.to_board = {g: p for g, p, d in wiring if d == "to_board"}
        self.from_board = {p: g for g, p, d in wiring if d == "from_board"}
        # the board's RUN/EN pin: pulled up on the board, low holds the board in reset
        self.reset_lines = {g for g, _, d in wiring if d == "reset"}
        # a Pi input jumpered to a Pi output (wiring.stimulus_sense): it follows that output
        self.sense_of: dict[int, list[int]] = {}
        for g, src, d in wiring:
            if d == "sense":
                self.sense_of.setdefault(src, []).append(g)
        self.driven = {*self.from_board.values(), *(g for gs in self.sense_of.values() for g in gs)}
        # other daemons on the same GPIOs (the rgpiod front end): called with every edge
        self.edge_listeners: list[Callable[[int, int, int], None]] = []
        self.on_reset_line = on_reset_line
        self._want_port = port
        self._lock = threading.RLock()
        self.level = [0] * NUM_GPIO
        self.mode = [INPUT] * NUM_GPIO
        self.pull = [PUD_OFF] * NUM_GPIO
        self.glitch = [0] * NUM_GPIO
        self.reported = [0] * NUM_GPIO  # levels as notifications see them (glitch filter)
        self._glitch_gen = [0] * NUM_GPIO
        self._pending: list[tuple[int, int] | None] = [None] * NUM_GPIO
        self._wave_due = 0  # unwrapped µs of the next waveform step
        self._timers: list[threading.Timer] = []
        for g in self.reset_lines:
            self.level[g] = 1
        self.board_modes: dict[int, tuple[int, int]] = {}
        self.edges = [0] * NUM_GPIO
        self._notifiers: dict[int, Notifier] = {}
        self._next_handle = 0
        self._building: list[tuple[int, int, int]] = []
        self._waves: dict[int, list[tuple[int, int, int]]] = {}
        self._next_wave = 0
        self._wave_thread: threading.Thread | None = None
        self._wave_stop = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()
        self._board: socket.socket | None = None
        self._board_tx = threading.Lock()
        self.port = 0
        self.wire_port = 0

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> SimPi:
        self._cmd_srv = self._listen(self._want_port)
        self._wire_srv = self._listen(0)
        self.port = self._cmd_srv.getsockname()[1]
        self.wire_port = self._wire_srv.getsockname()[1]
        self._spawn(self._accept_loop, self._cmd_srv, self._serve_client)
        self._spawn(self._accept_loop, self._wire_srv, self._serve_board)
        return self

    @staticmethod
    def _listen(port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            raise
        s.listen(8)
        return s

    def _spawn(self, fn, *args) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Close every socket and join every thread: nothing is left listening."""
        self._stop.set()
        self._wave_stop.set()
        close_all([getattr(self, "_cmd_srv", None), getattr(self, "_wire_srv", None),
                   self._board, *list(self._clients)])
        for timer in self._timers:
            timer.cancel()
        for t in [*self._threads, self._wave_thread, *self._timers]:
            if t is not None and t is not threading.current_thread():
                t.join(timeout=2)

    def __enter__(self) -> SimPi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self, srv: socket.socket, handler) -> None:
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([srv], [], [], 0.2)
                if not r:
                    continue
                conn, _ = srv.accept()
            except (OSError, ValueError):
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._spawn(handler, conn)

    # ---- GPIO model --------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """The GPIO lock: another daemon's front end holds it to change levels in order."""
        return self._lock

    def levels(self) -> int:
        """Bank 1 (GPIO 0-31) as pigpio reports it."""
        with self._lock:
            return sum(1 << g for g in range(32) if self.level[g])

    def edge_count(self, gpio: int) -> int:
        return self.edges[gpio]

    def _set_level(self, gpio: int, value: int, tick: int) -> None:
        """One edge: notify, and pass it down the wire if the GPIO is wired to the board."""
        with self._lock:
            if self.level[gpio] == value:
                return
            self.level[gpio] = value
            self.edges[gpio] += 1
            if gpio < 32:
                if self.glitch[gpio]:
                    self._filter_edge(gpio, value, tick)
                else:
                    self.reported[gpio] = value
                    self._notify(gpio, tick)
            pin = self.to_board.get(gpio)
            if pin is not None:  # under the GPIO lock: the wire carries levels in order
                self._send_board(wire.encode(wire.EDGE, pin, value, tick))
            if gpio in self.reset_lines and self.on_reset_line is not None:
                self.on_reset_line(value)
            for listener in self.edge_listeners:
                listener(gpio, value, tick)
            for sense in self.sense_of.get(gpio, ()):  # the jumper carries the edge at once
                self._set_level(sense, value, tick)

    def _notify(self, gpio: int, tick: int) -> None:
        """One 12-byte report to every running notification watching gpio (lock held)."""
        bank = sum(1 << g for g in range(32) if self.reported[g])
        for handle, n in list(self._notifiers.items()):
            if n.active and n.bits & (1 << gpio):
                n.backlog += struct.pack("<HHII", n.seq & 0xFFFF, 0, tick & 0xFFFFFFFF, bank)
                n.seq += 1
                self._flush(handle, n)

    def _flush(self, handle: int, n: Notifier) -> None:
        if not send_backlog(n):
            self._drop_notifier(handle)

    def _drop_notifier(self, handle: int) -> None:
        """Forget the notifier and hang up on its client; its own thread closes the socket."""
        n = self._notifiers.pop(handle, None)
        if n is not None:
            n.backlog.clear()
            try:
                n.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _filter_edge(self, gpio: int, value: int, tick: int) -> None:
        """Glitch filter (pigpio's FG), in the tick domain: a change is reported once the level
        has held for the steady time, stamped with the tick it became steady; a shorter pulse
        is never reported. Edges can be applied a little after their tick (waveforms), so
        steadiness is judged from ticks, with a timer only for the last change."""
        steady = self.glitch[gpio]
        pending = self._pending[gpio]
        if pending is not None and clock.tick_diff(tick, pending[1]) >= steady:
            self.reported[gpio] = pending[0]
            self._notify(gpio, (pending[1] + steady) & clock.TICK_MASK)
        self._glitch_gen[gpio] += 1
        self._pending[gpio] = (value, tick) if value != self.reported[gpio] else None
        if self._pending[gpio] is not None:
            self._settle_later(gpio, self._glitch_gen[gpio], (tick + steady) & clock.TICK_MASK)

    def _settle_later(self, gpio: int, gen: int, due_tick: int) -> None:
        wait_us = max(0, clock.tick_diff(due_tick, clock.tick()))
        timer = threading.Timer(wait_us / 1e6 + 0.0002, self._settled, (gpio, gen, due_tick))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _settled(self, gpio: int, gen: int, due_tick: int) -> None:
        with self._lock:
            if self._stop.is_set() or gen != self._glitch_gen[gpio]:
                return  # the level changed again within the steady time
            w = self._wave_thread
            if w is not None and w.is_alive() and \
                    clock.tick_diff(due_tick, self._wave_due & clock.TICK_MASK) >= 0:
                self._settle_later(gpio, gen, due_tick)  # a wave edge before due is not out yet
                return
            self.reported[gpio] = self._pending[gpio][0]
            self._pending[gpio] = None
            self._notify(gpio, due_tick)

    def _idle_level(self, gpio: int) -> int:
        return 1 if self.pull[gpio] == PUD_UP or gpio in self.reset_lines else 0

    def _settle_input(self, gpio: int) -> None:
        """An input nothing drives settles at its pull's level (the caller holds the lock)."""
        if self.mode[gpio] == INPUT and gpio not in self.driven:
            self._set_level(gpio, self._idle_level(gpio), clock.tick())

    def drive(self, gpio: int, level: int, tick: int | None = None) -> None:
        """Make gpio an output at level (an edge at tick, default now)."""
        with self._lock:
            self.mode[gpio] = OUTPUT
            self._set_level(gpio, level, clock.tick() if tick is None else tick)

    def release(self, gpio: int, pull: int = PUD_OFF) -> None:
        """Make gpio an input with a pull; undriven, it settles at the pull's level."""
        with self._lock:
            self.mode[gpio], self.pull[gpio] = INPUT, pull
            self._settle_input(gpio)

    # ---- board link --------------------------------------------------------------------------
    def _send_board(self, frame: bytes) -> None:
        with self._board_tx:
            b = self._board
            if b is None:
                return  # board in reset: the edge reaches nothing
            try:
                b.sendall(frame)
            except OSError:
                self._board = None

    def _serve_board(self, conn: socket.socket) -> None:
        # a board that stops reading must not wedge the Pi: sends give up after 2 s
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 2, 0))
        with self._lock:  # no edge may slip in between the hello and the current levels
            with self._board_tx:
                old, self._board = self._board, conn
            t = clock.tick()
            self._send_board(wire.encode(wire.HELLO, 0, 0, t))
            for gpio, pin in self.to_board.items():
                self._send_board(wire.encode(wire.EDGE, pin, self.level[gpio], t))
        if old is not None:
            try:
                old.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            while not self._stop.is_set():
                frame = recv_exact(conn, wire.FRAME_SIZE)
                if frame is None:
                    break
                frame_type, pin, value, pull, tick = wire.decode(frame)
                if frame_type == wire.MODE:
                    self.board_modes[pin] = (value, pull)
                elif frame_type == wire.EDGE and pin in self.from_board:
                    self._set_level(self.from_board[pin], value, tick)
        except OSError:
            pass
        finally:
            with self._board_tx:
                if self._board is conn:
                    self._board = None
            conn.close()
