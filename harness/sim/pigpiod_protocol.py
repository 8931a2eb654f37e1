"""pigpiod's socket protocol as the simulated Pi (harness/sim/pigpiod.py) serves it: a
client's 16-byte requests and their answers, the notification sockets it turns into, and the
waveforms it plays. A mixin: the GPIO state is SimPi's."""

from __future__ import annotations

import select
import socket
import struct
import threading

from harness.sim import clock

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


class PigpiodProtocol:
    """SimPi's pigpiod front end (the GPIO core other daemons share stays in SimPi)."""

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
                self._settle_input(p1)
                return 0
            if cmd == MODEG:
                return self.mode[p1]
            if cmd == PUD:
                if p2 > 2:
                    return PI_BAD_PUD
                self.pull[p1] = p2
                self._settle_input(p1)
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
