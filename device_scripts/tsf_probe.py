# tsfrig board probe (MicroPython; uploaded to the target, never run by CPython).
# What this firmware can do, asked of the board itself before the suite: the host picks the
# port's profile from it (harness/board/profiles.py) and warns where it contradicts the config.
# Every probe is guarded: a missing feature is an answer, never a crash.
import sys
import time

_errors = {}


def _guard(name, fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # noqa - any failure is the probe's answer
        _errors[name] = "%s: %s" % (type(e).__name__, e)
        return None


def _uname():
    import os

    u = os.uname()
    return u.sysname, u.machine


def _isr(pin):
    pass


def _hard_irq(pin_id):
    """Can a pin IRQ be hard? Asked on the stimulus pin, and undone at once."""
    from machine import Pin

    p = Pin(pin_id, Pin.IN)
    try:
        p.irq(_isr, Pin.IRQ_RISING, hard=True)
    except Exception as e:  # noqa - esp32: TypeError, there is no `hard` argument
        return False, "%s: %s" % (type(e).__name__, e)
    p.irq(None)
    return True, ""


def _thread():
    import _thread

    return hasattr(_thread, "start_new_thread")


def _sched_depth():
    """Fill micropython.schedule's queue from inside a scheduled call (the scheduler runs
    nothing else meanwhile) until it says it is full, then let the queue drain."""
    import micropython

    found = []
    ran = [0]

    def noop(_):
        ran[0] += 1

    def filler(_):
        n = 0
        try:
            while n < 256:
                micropython.schedule(noop, None)
                n += 1
        except RuntimeError as e:
            found.append((n, str(e)))
            return
        found.append((n, "no limit up to 256"))

    micropython.schedule(filler, None)
    deadline = time.ticks_add(time.ticks_ms(), 2000)
    while (not found or ran[0] < found[0][0]) and time.ticks_diff(deadline, time.ticks_ms()) > 0:
        time.sleep_ms(1)
    if not found:
        return None, "the scheduled call never ran"
    n, why = found[0]
    return (n if why == "schedule queue full" else None), why


def _asyncio():
    for name in ("asyncio", "uasyncio"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        return name, getattr(mod, "__file__", None)
    return None, None


def probe(stim_pin=None):
    """One record the host parses (harness.board.profiles.probe_board)."""
    _errors.clear()
    _guard("machine", __import__, "machine")  # first: the port's own modules come up with it
    impl = sys.implementation
    sysname, machine = _guard("uname", _uname) or ("", "")
    hard = _guard("hard_irq", _hard_irq, stim_pin) if stim_pin is not None else None
    depth = _guard("sched_depth", _sched_depth) or (None, None)
    aio = _guard("asyncio", _asyncio) or (None, None)
    return {
        "platform": sys.platform,
        "sysname": sysname,
        "machine": machine or getattr(impl, "_machine", ""),
        "hard_irq": None if hard is None else hard[0],
        "hard_irq_error": "" if hard is None else hard[1],
        "thread": bool(_guard("thread", _thread)),
        "sched_depth": depth[0],
        "sched_note": depth[1],
        "ticks_period": _guard("ticks_period", lambda: time.ticks_add(0, -1) + 1),
        "asyncio": aio[0],
        "asyncio_file": aio[1],
        "errors": dict(_errors),
    }
