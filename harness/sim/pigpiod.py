"""A simulated Raspberry Pi that speaks pigpiod's socket protocol on 127.0.0.1.

The unmodified `pigpio` client drives it: 16-byte requests (cmd, p1, p2, p3 + p3
extension bytes), 16-byte answers whose last word is the result, and notification
sockets streaming 12-byte reports (seq, flags, tick, bank-1 levels) for every edge.
Edges carry their exact scheduled tick (trigger pulses, waveforms), so timing measured
on the Pi side is exact even when a thread wakes a little late. GPIOs wired to the
virtual board travel over the board link (see wire.py). A notification client that stops
reading is hung up on once it falls too far behind, so it can't stall the other clients.
SimPi is also the GPIO core other daemons' front ends share (rgpiod.py): they drive lines
with drive()/release() and hear every edge through edge_listeners.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Callable

from harness.gpio.daemon import close_all
from harness.sim import clock, wire

# pigpiod command numbers (pigpio.h) used by the harness and the pigpio client.
MODES, MODEG, PUD, READ, WRITE = 0, 1, 2, 3, 4
WDOG, BR1, BR2, TICK, HWVER = 9, 10, 11, 16, 17
NB, NP, NC, PIGPV = 19, 20, 21, 26
WVCLR, WVAG, WVBSY, WVHLT, TRIG = 27, 28, 32, 33, 37
WVCRE, WVDEL, WVTX, WVNEW, FG, NOIB, WVTXM = 49, 50, 51, 53, 97, 99, 100
# pigpio error codes
PI_BAD_USER_GPIO, PI_BAD_GPIO, PI_BAD_MODE, PI_BAD_LEVEL, PI_BAD_PUD = -2, -3, -4, -5, -6
PI_BAD_WDOG_TIMEOUT, PI_BAD_HANDLE, PI_BAD_PULSELEN = -15, -25, -46
PI_BAD_WAVE_ID, PI_EMPTY_WAVEFORM, PI_UNKNOWN_COMMAND, PI_BAD_FILTER = -66, -69, -88, -125

HW_REVISION = 0xC03111  # Pi 4 Model B
PIGPIO_VERSION = 79
NUM_GPIO = 54
MAX_EXTENSION = 1 << 20
INPUT, OUTPUT = 0, 1
PUD_OFF, PUD_DOWN, PUD_UP = 0, 1, 2
# How far a notification client may fall behind before it is dropped: the kernel holds up to
# NOTIFY_SNDBUF (doubled by Linux) plus the client's receive buffer, the server NOTIFY_BACKLOG.
NOTIFY_SNDBUF = 1 << 17
NOTIFY_BACKLOG = 1 << 16


class Notifier:
    """One notification stream: its socket and the reports it has no room for yet."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.bits = 0
        self.active = False
        self.seq = 0
        self.backlog = bytearray()  # reports the client's socket had no room for yet


class SimPi:
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

    def drive(self, gpio: int, level: int, tick: int | None = None) -> None:
        """Make gpio an output at level (an edge at tick, default now)."""
        with self._lock:
            self.mode[gpio] = OUTPUT
            self._set_level(gpio, level, clock.tick() if tick is None else tick)

    def release(self, gpio: int, pull: int = PUD_OFF) -> None:
        """Make gpio an input with a pull; undriven, it settles at the pull's level."""
        with self._lock:
            self.mode[gpio], self.pull[gpio] = INPUT, pull
            if gpio not in self.driven:
                self._set_level(gpio, self._idle_level(gpio), clock.tick())

    # ---- command socket ----------------------------------------------------------------------
    def _serve_client(self, conn: socket.socket) -> None:
        self._clients.add(conn)
        try:
            while not self._stop.is_set():
                head = recv_exact(conn, 16)
                if head is None:
                    return
                cmd, p1, p2, p3 = struct.unpack("<IIII", head)
                if p3 > MAX_EXTENSION:
                    return  # a client this confused gets disconnected, not a hang
                ext = recv_exact(conn, p3) if p3 else b""
                if ext is None:
                    return
                if cmd == NOIB:
                    self._become_notifier(conn, head)
                    return
                res = self._command(cmd, p1, p2, ext)
                conn.sendall(head[:12] + struct.pack("<I", res & 0xFFFFFFFF))
        except OSError:
            return
        finally:
            self._clients.discard(conn)
            conn.close()

    def _become_notifier(self, conn: socket.socket, head: bytes) -> None:
        """Serve one notification socket: take its NC, and send a backlog once there is room
        (edges stop coming, the last reports must still go out)."""
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, NOTIFY_SNDBUF)
        n = Notifier(conn)
        with self._lock:
            handle = self._next_handle
            self._next_handle += 1
            self._notifiers[handle] = n
            conn.sendall(head[:12] + struct.pack("<I", handle))
        try:
            while not self._stop.is_set():  # the client only ever sends NC here
                owed = n.backlog and self._notifiers.get(handle) is n
                r, w, _ = select.select([conn], [conn] if owed else [], [], 0.2)
                if w:
                    with self._lock:
                        if self._notifiers.get(handle) is n:
                            self._flush(handle, n)
                if not r:
                    continue
                head = recv_exact(conn, 16)
                if head is None:
                    break
                cmd, p1, _, _ = struct.unpack("<IIII", head)
                if cmd == NC:
                    break
        except (OSError, ValueError):
            pass
        with self._lock:
            if self._notifiers.get(handle) is n:
                del self._notifiers[handle]

    def _command(self, cmd: int, p1: int, p2: int, ext: bytes) -> int:
        gpio_cmds = {MODES, MODEG, PUD, READ, WRITE, TRIG, FG, WDOG}
        if cmd in gpio_cmds and p1 >= NUM_GPIO:
            return PI_BAD_USER_GPIO if cmd in (TRIG, FG, WDOG) else PI_BAD_GPIO
        with self._lock:
            if cmd == MODES:
                if p2 > 7:
                    return PI_BAD_MODE
                self.mode[p1] = p2
                if p2 == INPUT and p1 not in self.driven:
                    self._set_level(p1, self._idle_level(p1), clock.tick())
                return 0
            if cmd == MODEG:
                return self.mode[p1]
            if cmd == PUD:
                if p2 > 2:
                    return PI_BAD_PUD
                self.pull[p1] = p2
                if self.mode[p1] == INPUT and p1 not in self.driven:
                    self._set_level(p1, self._idle_level(p1), clock.tick())
                return 0
            if cmd == READ:
                return self.level[p1]
            if cmd == WRITE:
                if p2 > 1:
                    return PI_BAD_LEVEL
                self.mode[p1] = OUTPUT
                self._set_level(p1, p2, clock.tick())
                return 0
            if cmd == TRIG:
                level = struct.unpack("<I", ext[:4])[0] if len(ext) >= 4 else 2
                if not 1 <= p2 <= 100:
                    return PI_BAD_PULSELEN
                if level > 1:
                    return PI_BAD_LEVEL
                t = clock.tick()
                self._set_level(p1, level, t)
                self._set_level(p1, 1 - level, t + p2)
                return 0
            if cmd == FG:
                if p2 > 300000:
                    return PI_BAD_FILTER
                self.glitch[p1] = p2
                self.reported[p1] = self.level[p1]
                self._pending[p1] = None
                self._glitch_gen[p1] += 1
                return 0
            if cmd == WDOG:
                return 0 if p2 <= 60000 else PI_BAD_WDOG_TIMEOUT
            if cmd == BR1:
                return self.levels()
            if cmd == BR2:
                return sum(1 << (g - 32) for g in range(32, NUM_GPIO) if self.level[g])
            if cmd == TICK:
                return clock.tick()
            if cmd == HWVER:
                return HW_REVISION
            if cmd == PIGPV:
                return PIGPIO_VERSION
            if cmd in (NB, NP, NC):
                n = self._notifiers.get(p1)
                if n is None:
                    return PI_BAD_HANDLE
                if cmd == NB:
                    n.bits, n.active = p2, True
                elif cmd == NP:
                    n.active = False
                else:
                    self._notifiers.pop(p1, None)
                return 0
            return self._wave_command(cmd, p1, ext)

    # ---- waveforms ---------------------------------------------------------------------------
    def _wave_command(self, cmd: int, p1: int, ext: bytes) -> int:
        if cmd == WVCLR:
            self._building, self._waves = [], {}
            return 0
        if cmd == WVNEW:
            self._building = []
            return 0
        if cmd == WVAG:
            self._building += list(struct.iter_unpack("<III", ext[: len(ext) // 12 * 12]))
            return len(self._building)
        if cmd == WVCRE:
            if not self._building:
                return PI_EMPTY_WAVEFORM
            wid = self._next_wave
            self._next_wave += 1
            self._waves[wid], self._building = self._building, []
            return wid
        if cmd == WVDEL:
            return 0 if self._waves.pop(p1, None) is not None else PI_BAD_WAVE_ID
        if cmd in (WVTX, WVTXM):
            if p1 not in self._waves:
                return PI_BAD_WAVE_ID
            self._halt_wave()
            pulses = self._waves[p1]
            self._wave_stop.clear()
            self._wave_thread = threading.Thread(target=self._play, args=(pulses,), daemon=True)
            self._wave_thread.start()
            return len(pulses)
        if cmd == WVBSY:
            return int(self._wave_thread is not None and self._wave_thread.is_alive())
        if cmd == WVHLT:
            self._halt_wave()
            return 0
        return PI_UNKNOWN_COMMAND

    def _halt_wave(self) -> None:
        t = self._wave_thread
        if t is not None and t.is_alive() and t is not threading.current_thread():
            self._wave_stop.set()
            self._lock.release()  # let the player finish its current edge
            try:
                t.join(timeout=2)
            finally:
                self._lock.acquire()

    def _play(self, pulses: list[tuple[int, int, int]]) -> None:
        """Apply each pulse at its scheduled tick; the tick, not the wake-up, is what's reported."""
        start = clock.now_us() + 50
        due = start
        for on, off, delay in pulses:
            self._wave_due = due
            wait_s = (due - clock.now_us()) / 1e6
            if wait_s > 0 and self._wave_stop.wait(wait_s):
                return
            if self._wave_stop.is_set():
                return
            for g in range(32):
                bit = 1 << g
                if on & bit:
                    self._set_level(g, 1, due)
                elif off & bit:
                    self._set_level(g, 0, due)
            due += delay

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


def send_backlog(n: Notifier) -> bool:
    """Send what the client's socket takes now, never waiting (the GPIO lock is held): a
    client that stops reading would otherwise freeze every other client. False when the
    client is to be dropped: its backlog outgrew NOTIFY_BACKLOG (a client that can't keep up
    has lost edges anyway) or its socket failed."""
    try:
        while n.backlog:
            del n.backlog[: n.sock.send(n.backlog, socket.MSG_DONTWAIT)]
    except BlockingIOError:
        return len(n.backlog) <= NOTIFY_BACKLOG
    except OSError:
        return False
    return True


def recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf

