# micropython module of a virtual board that emulates another port (MicroPython unix port;
# never run by CPython). machine.py puts it in sys.modules["micropython"] when the bench
# sets TSFRIG_EMULATE, so code that imports micropython after machine sees it.
#
# Everything is the firmware's own micropython except schedule(): its queue holds
# TSFRIG_EMULATE_SCHED_DEPTH calls, as MICROPY_SCHEDULER_DEPTH does on the emulated port
# (the unix port's own queue holds 4). Queued calls run from one call on the real queue, in
# order; a full queue raises RuntimeError("schedule queue full") as the port does. Nothing
# here allocates, so a hard IRQ handler can call it with the heap locked.
import os
import sys

import _thread
from micropython import *  # noqa: F401,F403
from micropython import schedule as _real_schedule

_depth = int(os.getenv("TSFRIG_EMULATE_SCHED_DEPTH") or 4)
_funcs = [None] * _depth
_args = [None] * _depth
_state = [0, 0, 0]  # head, pending, drain queued on the real scheduler
_lock = _thread.allocate_lock()
_FULL = RuntimeError("schedule queue full")


def _drain(_):
    while True:
        _lock.acquire()
        head, n = _state[0], _state[1]
        if not n:
            _state[2] = 0
            _lock.release()
            return
        f, a = _funcs[head], _args[head]
        _funcs[head] = _args[head] = None
        _state[0] = (head + 1) % _depth
        _state[1] = n - 1
        _lock.release()
        try:
            f(a)
        except Exception as e:  # noqa - as the port's scheduler: report, run the rest
            print("Uncaught exception in scheduled callback")
            sys.print_exception(e)


def schedule(func, arg):
    _lock.acquire()
    n = _state[1]
    if n >= _depth:
        _lock.release()
        raise _FULL
    i = (_state[0] + n) % _depth
    _funcs[i] = func
    _args[i] = arg
    _state[1] = n + 1
    queue = not _state[2]
    _state[2] = 1
    _lock.release()
    if queue:
        try:
            _real_schedule(_drain, None)
        except RuntimeError:  # the real queue is full: the next schedule() tries again
            _state[2] = 0
