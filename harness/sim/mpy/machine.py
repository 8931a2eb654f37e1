# machine module of the tsfrig virtual board (MicroPython unix port; never run by CPython).
#
# Found ahead of the built-in `machine` through MICROPYPATH. Pins are wired to the simulated
# Pi over one TCP connection (TSFRIG_WIRE=host:port) carrying 8-byte frames (see
# harness/sim/wire.py). An "interrupt controller" thread receives edges and dispatches IRQs:
#   hard IRQ: the handler runs right there, on that thread, concurrently with the VM, with
#     micropython.heap_lock() held by that thread (the lock is per-thread in this build),
#     so a handler that allocates raises MemoryError as on hardware; an uncaught exception
#     disables that IRQ. Then the idle loop is woken per TSFRIG_IRQ_WAKE:
#       "schedule" (default): micropython.schedule() a no-op, meant to wake the loop at
#         once as a bare-metal core leaves WFE on any interrupt. Measured on this build
#         (benchmarks/bench_sim.py): it does not interrupt the loop's poll; scheduled work
#         runs at the next 1 ms re-poll, and IRQ -> wake is p50 ~0.65 ms, p99 ~1.1 ms;
#       "poll": nothing, the loop notices flag.set() at its next 1 ms re-poll (the unix
#         port's behaviour for objects without a file descriptor): the same median, and
#         in some runs a longer tail (p99 up to ~4 ms).
#   soft IRQ: micropython.schedule(handler, pin), as ports do; when the schedule queue is
#     full the IRQ is dropped silently (counted in _irq_dropped, a tsfrig debugging aid).
# TSFRIG_IRQ_LATENCY_US / TSFRIG_IRQ_JITTER_US inject latency before dispatch, measured
# from the edge's tick (same clock as time.ticks_us()).
# TSFRIG_EMULATE=<port> (the target's `emulate:`, harness/board/profiles.py) makes the board act as
# that port where the suite can tell: TSFRIG_EMULATE_HARD=0 makes Pin.irq refuse a `hard`
# argument as esp32's does, TSFRIG_EMULATE_THREAD=0 hides _thread, and micropython becomes
# _emu_micropython (its schedule queue TSFRIG_EMULATE_SCHED_DEPTH deep), for code that
# imports it after machine. os.uname() names the port (os.py).
import os
import sys
import time

import micropython

try:  # the firmware's own machine (PinBase, mem32, time_pulse_us ...); below replaces some
    from umachine import *  # noqa: F401,F403
except ImportError:
    pass

IN = 0
OUT = 1
OPEN_DRAIN = 2
PULL_UP = 1
PULL_DOWN = 2
IRQ_RISING = 1
IRQ_FALLING = 2

NPINS = 64
_levels = bytearray(NPINS)
_trigger = bytearray(NPINS)
_hard = bytearray(NPINS)
_last_flags = bytearray(NPINS)
_handlers = [None] * NPINS
_pins = [None] * NPINS
_irq_dropped = 0
_irq_enabled = True
_sock = None
_HELLO_TIMEOUT_S = 5
_wake = os.getenv("TSFRIG_IRQ_WAKE") or "schedule"
_latency = int(os.getenv("TSFRIG_IRQ_LATENCY_US") or 0)
_jitter = int(os.getenv("TSFRIG_IRQ_JITTER_US") or 0)
_emulate = os.getenv("TSFRIG_EMULATE") or ""
_hard_ok = os.getenv("TSFRIG_EMULATE_HARD") != "0"
_UNSET = object()
if _emulate:
    import _emu_micropython as micropython

    sys.modules["micropython"] = micropython


def _noop(_):
    pass


def _pin_number(id):
    if isinstance(id, int):
        n = id
    elif isinstance(id, str) and id.upper().startswith("GP") and id[2:].isdigit():
        n = int(id[2:])
    elif isinstance(id, Pin):
        return id._n
    else:
        raise ValueError("invalid pin: %r (use 0-%d or 'GP<n>')" % (id, NPINS - 1))
    if not 0 <= n < NPINS:
        raise ValueError("invalid pin: %r" % (id,))
    return n


def _dispatch(n, level):
    """Run or schedule pin n's IRQ for an edge to `level` (called on the controller thread)."""
    global _irq_dropped
    flag = IRQ_RISING if level else IRQ_FALLING
    h = _handlers[n]
    if h is None or not (_trigger[n] & flag) or not _irq_enabled:
        return
    _last_flags[n] = flag
    pin = _pins[n]
    if _hard[n]:
        micropython.heap_lock()
        try:
            h(pin)
        except BaseException as e:
            micropython.heap_unlock()
            _handlers[n] = None  # an uncaught exception disables the IRQ, as on ports
            print("Uncaught exception in IRQ callback handler")
            sys.print_exception(e)
            return
        micropython.heap_unlock()
        if _wake == "schedule":
            try:
                micropython.schedule(_noop, None)
            except RuntimeError:
                pass  # queue full: the loop wakes anyway, something is pending
    else:
        try:
            micropython.schedule(h, pin)
        except RuntimeError:
            _irq_dropped += 1


def _wait_latency(tick32):
    now = time.ticks_us()
    edge = now - ((now - tick32) & 0xFFFFFFFF)
    due = edge + _latency
    if _jitter:
        import random

        due += random.randint(0, _jitter)
    while time.ticks_diff(due, time.ticks_us()) > 0:
        pass


def _controller(s):
    buf = bytearray(8)
    mv = memoryview(buf)
    while True:
        got = 0
        while got < 8:
            try:
                r = s.readinto(mv[got:])
            except OSError:
                r = 0
            if not r:  # the wire is cut: from now on the pins carry nothing
                _cut(s)
                s.close()
                return
            got += r
        if buf[0] != 69:  # b"E"
            continue
        n = buf[1]
        level = buf[2]
        if n >= NPINS or _levels[n] == level:
            continue
        _levels[n] = level
        if _latency or _jitter:
            _wait_latency(buf[4] | buf[5] << 8 | buf[6] << 16 | buf[7] << 24)
        _dispatch(n, level)


def _connect():
    global _sock
    addr = os.getenv("TSFRIG_WIRE")
    if not addr:
        return
    import socket
    import _thread

    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    try:
        s.connect(socket.getaddrinfo(host, int(port))[0][-1])
        s.settimeout(_HELLO_TIMEOUT_S)
        hello = s.read(8)  # the Pi's hello: from here on no edge is lost
        s.settimeout(None)
    except OSError:
        hello = None
    if not hello or hello[0] != 72:  # b"H"
        # no Pi on the other end: a board with no jumpers still imports machine
        s.close()
        return
    _sock = s
    _thread.start_new_thread(_controller, (s,))


def _cut(s):
    """Forget a dead wire; the controller thread closes it (it may be reading it now)."""
    global _sock
    if _sock is s:
        _sock = None


def _send(frame):
    # A pulled jumper raises nothing on a real board: a failed write just cuts the wire.
    s = _sock
    if s is not None:
        try:
            s.write(frame)
        except OSError:
            _cut(s)


class _IRQ:
    def __init__(self, n):
        self._n = n

    def flags(self):
        return _last_flags[self._n]

    def trigger(self, value=None):
        if value is not None:
            _trigger[self._n] = value
        return _trigger[self._n]


class Pin:
    IN = IN
    OUT = OUT
    OPEN_DRAIN = OPEN_DRAIN
    PULL_UP = PULL_UP
    PULL_DOWN = PULL_DOWN
    IRQ_RISING = IRQ_RISING
    IRQ_FALLING = IRQ_FALLING

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self._n = _pin_number(id)
        self._mode = IN
        self._pull = 0
        # preallocated frames: writing a pin on the wake path allocates nothing
        self._edge = bytearray(b"E\x00\x00\x00\x00\x00\x00\x00")
        self._edge[1] = self._n
        _pins[self._n] = self
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        if mode != -1:
            self._mode = mode
        if pull != -1:
            self._pull = pull or 0
        frame = bytearray(b"M\x00\x00\x00\x00\x00\x00\x00")
        frame[1] = self._n
        frame[2] = 1 if self._mode in (OUT, OPEN_DRAIN) else 0
        frame[3] = self._pull
        _send(frame)
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return _levels[self._n]
        level = 1 if v else 0
        _levels[self._n] = level
        if self._mode in (OUT, OPEN_DRAIN):
            f = self._edge
            f[2] = level
            t = time.ticks_us()
            f[4] = t & 0xFF
            f[5] = (t >> 8) & 0xFF
            f[6] = (t >> 16) & 0xFF
            f[7] = (t >> 24) & 0xFF
            _send(f)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=_UNSET):
        if hard is not _UNSET and not _hard_ok:
            raise TypeError("extra keyword arguments given")  # esp32: no `hard` argument
        n = self._n
        _handlers[n] = handler
        _trigger[n] = trigger if handler is not None else 0
        _hard[n] = 1 if hard is not _UNSET and hard else 0
        return _IRQ(n)

    def __repr__(self):
        return "Pin(%d)" % self._n


class Signal:
    def __init__(self, pin, *args, invert=False, **kw):
        # a Pin, or any pin-like object (a machine.PinBase subclass), as the port's Signal takes
        if isinstance(pin, Pin) or (hasattr(pin, "value") and not args and not kw):
            self._pin = pin
        else:
            self._pin = Pin(pin, *args, **kw)
        self._invert = invert

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._invert
        self._pin.value((1 if v else 0) ^ self._invert)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)


def disable_irq():
    global _irq_enabled
    state = _irq_enabled
    _irq_enabled = False
    return state


def enable_irq(state=True):
    global _irq_enabled
    _irq_enabled = state


def _ask_bridge(request):
    fd = os.getenv("TSFRIG_BOARD_CTL_FD")  # the bridge's control pipe
    if fd:
        try:
            open(int(fd), "wb").write(request)
        except (OSError, ValueError):
            pass
        else:
            t0 = time.ticks_ms()  # the bridge kills the VM within ms; 5 s is a lost bridge
            while time.ticks_diff(time.ticks_ms(), t0) < 5000:
                time.sleep_ms(10)
    raise SystemExit  # no bridge: at least restart like a soft reset


def reset():
    """A hard reset, as on rp2: the board bridge kills this VM, the serial port goes away and
    comes back with a freshly booted board. Never returns."""
    _ask_bridge(b"H")


def bootloader(value=0):
    """As on rp2: the board leaves for its UF2 bootloader (the port goes away, a drop volume
    appears); it boots the image copied there. Never returns."""
    _ask_bridge(b"B")


def soft_reset():
    """As on rp2: SystemExit, which the board turns into `MPY: soft reboot`."""
    raise SystemExit


def unique_id():
    return b"tsfrig-vb"


def freq(*args):
    return 125_000_000


def idle():
    time.sleep_us(100)


_connect()
if os.getenv("TSFRIG_EMULATE_THREAD") == "0":
    sys.modules["_thread"] = None  # `import _thread` then gives None: no threads here
