# tsfrig watcher and scenarios (MicroPython; uploaded to the target, never run by CPython).
#
# The host starts one scenario per soft reboot:
#     import tsf_watcher; tsf_watcher.run({...params...})
# and talks to it with single characters on stdin: "G" (go to the next phase), "E" (end).
# Timed sections never print. IRQ and wake timestamps go into preallocated arrays
# (microseconds since arming, board clock); logs go out afterwards via tsf_log.
#
# Set sources (where flag.set() is called; "source" in the parameters): the stimulus pin's
# IRQ always counts and timestamps the edge;
#   hard     - hard IRQ handler calls flag.set()
#   soft     - soft IRQ handler (micropython.schedule by the port) calls flag.set()
#   thread   - IRQ counts; a _thread notices the new count and calls flag.set()
#   loop     - IRQ counts; an asyncio task notices the new count and calls flag.set()
#   schedule - hard IRQ counts and micropython.schedule()s a function that calls flag.set()
import sys
import time

import asyncio
import micropython
import tsf_identity
import tsf_log
from array import array
from machine import Pin

if hasattr(micropython, "alloc_emergency_exception_buf"):  # absent on the unix port
    micropython.alloc_emergency_exception_buf(128)

ticks_us = time.ticks_us
ticks_diff = time.ticks_diff

# Everything the IRQ and wake paths touch is created before the IRQ is enabled.
CAP = 1
T0 = 0
flag = None
ack = None
ack_level = 0
irq_t = array("i", [0])
n_irq = 0
wake_t = array("i", [0])
wake_n = array("i", [0])
n_wake = 0
busy_after_wake_us = 0
running = True
seen_by_setter = 0
n_late = 0  # IRQs that arrived after the timed section ended
n_deferred_set = 0  # sets made by the thread / loop / schedule set sources
last_set_t = 0
stim = None
set_source = ""
watcher_exit = None  # why the watcher stopped, if it did: reported with the counts
watcher_task = None


def _stamp_irq():
    """Count and timestamp an edge; False once the timed section is over."""
    global n_irq, n_late
    if not running:  # late IRQs are counted apart, never as a set to wake for
        n_late += 1
        return False
    i = n_irq
    if i < CAP:
        irq_t[i] = ticks_diff(ticks_us(), T0)
    n_irq = i + 1
    return True


def isr_set(pin):
    if _stamp_irq():
        flag.set()


def isr_count(pin):
    _stamp_irq()


def _deferred_set():
    global n_deferred_set, last_set_t
    flag.set()
    last_set_t = ticks_diff(ticks_us(), T0)
    n_deferred_set += 1


def _sched_set(_):
    _deferred_set()


def isr_schedule(pin):
    if _stamp_irq():
        micropython.schedule(_sched_set, None)


def _catch_up():
    """The thread / loop set sources: one set for the IRQs counted since their last look."""
    global seen_by_setter
    n = n_irq
    if n != seen_by_setter:
        _deferred_set()
        seen_by_setter = n  # after the set: sets_caught_up() relies on the order


def _setter_thread():
    while running:
        _catch_up()
        time.sleep_us(20)


async def _setter_task():
    while running:
        _catch_up()
        await asyncio.sleep_ms(1)


def sets_caught_up():
    """Every IRQ so far has reached flag.set(), also for the set sources that defer it."""
    if set_source in ("thread", "loop"):
        return seen_by_setter == n_irq
    if set_source == "schedule":
        return n_deferred_set >= n_irq
    return True


def _irq_on(pin, handler, hard):
    """A hard IRQ where the port has them, else a soft one: esp32's Pin.irq has no `hard`
    argument at all (even hard=False raises TypeError), so it is passed only when asked."""
    if hard:
        pin.irq(handler, Pin.IRQ_RISING, hard=True)
    else:
        pin.irq(handler, Pin.IRQ_RISING)


def arm(p):
    """Create the flag, arrays and pins, then enable the IRQ for the requested set source."""
    global CAP, T0, flag, ack, ack_level, irq_t, wake_t, wake_n, n_irq, n_wake
    global busy_after_wake_us, running, seen_by_setter, stim, n_deferred_set, n_late, set_source
    CAP = p.get("cap", 256)
    irq_t = array("i", [0] * CAP)
    wake_t = array("i", [0] * CAP)
    wake_n = array("i", [0] * CAP)
    n_irq = n_wake = seen_by_setter = n_deferred_set = n_late = 0
    busy_after_wake_us = p.get("busy_after_wake_us", 0)
    running = True
    flag = asyncio.ThreadSafeFlag()
    ack_level = 0
    ack = Pin(p["ack_pin"], Pin.OUT, value=0)
    stim = Pin(p["stim_pin"], Pin.IN, Pin.PULL_DOWN)
    source = p["source"]
    set_source = source
    T0 = ticks_us()
    if source == "hard":
        stim.irq(isr_set, Pin.IRQ_RISING, hard=True)
    elif source == "soft":
        stim.irq(isr_set, Pin.IRQ_RISING)
    elif source == "schedule":
        _irq_on(stim, isr_schedule, p.get("hard_ok", True))
    else:
        _irq_on(stim, isr_count, p.get("hard_ok", True))
        if source == "thread":
            import _thread

            _thread.start_new_thread(_setter_thread, ())
        elif source == "loop":
            asyncio.create_task(_setter_task())
    return stim


def record_wake():
    """Timestamp a wake, toggle the ack pin, remember how many IRQs had happened."""
    global n_wake, ack_level
    t = ticks_diff(ticks_us(), T0)
    ack_level ^= 1
    ack.value(ack_level)
    i = n_wake
    if i < CAP:
        wake_t[i] = t
        wake_n[i] = n_irq
    n_wake = i + 1


async def watcher():
    global watcher_exit
    try:
        while n_wake < CAP:  # a flag that never blocks must not wedge the board: stop at CAP
            await flag.wait()
            record_wake()
            if busy_after_wake_us:
                time.sleep_us(busy_after_wake_us)  # blocks the loop: sets pile up meanwhile
            else:
                await asyncio.sleep(0)  # let the host's commands in even if wait() never blocks
        watcher_exit = "cap"
    except BaseException as e:  # noqa - whatever ends the waiter is a finding to report
        watcher_exit = "%s: %s" % (type(e).__name__, e)
        # the waiter is dead, so nothing is timed any more: tell the host now, with the
        # board's traceback, so it stops pulsing into a flag nobody waits on
        tsf_log.emit("WAITER_EXIT", {"exc": watcher_exit, "traceback": _traceback(e)})
        raise


def _traceback(e):
    try:
        import io

        buf = io.StringIO()
        sys.print_exception(e, buf)
        return buf.getvalue()
    except Exception:  # noqa - a port without io.StringIO still reports the exception line
        return ""


def start_watcher():
    global watcher_task
    watcher_task = asyncio.create_task(watcher())


def watcher_state():
    """Where the waiter is at the end: polled (waiting in flag.wait()), done, or elsewhere."""
    t = watcher_task
    if t is None:
        return None
    try:
        from asyncio import core

        return {"done": t.done(), "polled": id(flag) in core._io_queue.map,
                "queued_next": core._task_queue.peek() is t}
    except (ImportError, AttributeError) as e:
        return {"done": t.done(), "error": str(e)}


async def busy_cotask(slice_us):
    """Background load: hogs the loop in blocking slices, as a busy application would."""
    while running:
        time.sleep_us(slice_us)
        await asyncio.sleep(0)


class Host:
    """Commands from the host over stdin: "G" (next phase), "E<pulses sent>\n" (end)."""

    def __init__(self):
        self.reader = asyncio.StreamReader(sys.stdin)

    async def _char(self):
        c = await self.reader.read(1)
        if not c:
            raise OSError("stdin closed")
        return c.decode() if isinstance(c, bytes) else c

    async def expect(self, cmd):
        while await self._char() != cmd:
            pass

    async def end(self):
        """Wait for the end command; return how many pulses the Pi sent (None if not said)."""
        await self.expect("E")
        digits = ""
        while True:
            c = await self._char()
            if c == "\n":
                return int(digits) if digits else None
            digits += c


def dropped_irqs():
    """Soft IRQs the port dropped on a full schedule queue, where it counts them (the virtual
    board does); None where the port doesn't say."""
    import machine

    return getattr(machine, "_irq_dropped", None)


async def settle(pulses, timeout_ms):
    """Before the timed section ends: every pulse the Pi sent has reached the handler and the
    waiter has woken after the last one, or timeout_ms passed with no progress. The host
    can't tell this from its own clock when the board lags behind the stimulus."""
    deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
    give_up = time.ticks_add(time.ticks_ms(), 5000)  # well inside the host's device timeout
    seen = (-1, -1)
    while time.ticks_diff(deadline, time.ticks_ms()) > 0 and \
            time.ticks_diff(give_up, time.ticks_ms()) > 0:
        arrived = n_irq + (dropped_irqs() or 0)
        done = arrived >= pulses and n_wake > 0 and wake_n[min(n_wake, CAP) - 1] >= n_irq
        if done or n_wake >= CAP:
            return
        if (n_irq, n_wake) != seen:  # progress: the board is still catching up
            seen = (n_irq, n_wake)
            deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        await asyncio.sleep_ms(1)


def ready():
    """Armed: tell the host, with the arming instant on the board's clock (low 32 bits), so
    a bench whose clocks are shared (the simulated one) can check the host's clock alignment."""
    tsf_log.emit("READY", {"t0": T0 & 0xFFFFFFFF})


def report(result):
    global running
    running = False
    if stim is not None:
        stim.irq(None)  # the timed section is over: no more IRQs while logs go out
    tsf_log.emit_array("IRQ", irq_t, min(n_irq, CAP))
    tsf_log.emit_array("WAKE", wake_t, min(n_wake, CAP))
    tsf_log.emit_array("WAKEN", wake_n, min(n_wake, CAP))
    counts = {"irqs": n_irq, "wakes": n_wake, "cap": CAP, "deferred_sets": n_deferred_set,
              "last_set_t": last_set_t, "late_irqs": n_late,
              "flag_state_at_end": getattr(flag, "state", None)}
    counts["dropped"] = dropped_irqs()
    counts["waiter"] = watcher_state()  # after a lost wake-up: where was the waiter?
    counts["waiter_exit"] = watcher_exit
    tsf_log.emit("COUNT", counts)
    tsf_log.emit("RESULT", result)
    tsf_log.end()


# ---- scenarios: each arms, says READY, follows the host's commands, returns facts ----


async def sc_watch(p, host):
    """wake, auto_reset, coalesce, latency, stress, set sources: one watcher, host pulses."""
    arm(p)
    start_watcher()
    if p.get("busy_slice_us"):
        asyncio.create_task(busy_cotask(p["busy_slice_us"]))
    ready()
    pulses = await host.end()
    if pulses:
        await settle(pulses, p.get("settle_ms", 200))
    return {}


async def sc_early_sets(p, host):
    """Pulses arrive before the watcher is ready; optionally clear() before the first wait."""
    arm(p)
    ready()
    await host.expect("G")
    deadline = time.ticks_add(time.ticks_ms(), 2000)
    while (n_irq < p["pre"] or not sets_caught_up()) and \
            time.ticks_diff(deadline, time.ticks_ms()) > 0:
        await asyncio.sleep_ms(1)  # the early pulses must all have been set() before waiting
    pre_seen = n_irq
    if p["clear"]:
        flag.clear()
    t_ready = ticks_diff(ticks_us(), T0)
    start_watcher()
    tsf_log.emit("WAITING", {"pre_seen": pre_seen})
    await host.end()
    return {"pre_seen": pre_seen, "t_ready": t_ready, "cleared": p["clear"]}


async def sc_fanout(p, host):
    """The supported pattern: one owner task fans each wake out through an asyncio.Event."""
    arm(p)
    k = p["subscribers"]
    hits = array("i", [0] * k)
    ev = asyncio.Event()

    async def owner():
        while True:
            await flag.wait()
            ev.set()
            ev.clear()
            await asyncio.sleep(0)  # let every subscriber run before acking
            record_wake()

    async def subscriber(j):
        while True:
            await ev.wait()
            hits[j] += 1

    for j in range(k):
        asyncio.create_task(subscriber(j))
    asyncio.create_task(owner())
    ready()
    await host.end()
    return {"subscriber_wakes": list(hits)}


async def sc_second_waiter(p, host):
    """Two tasks wait on one flag at once: characterise what this firmware does."""
    arm(p)
    log = []  # outside any timed path: records (task, pulse count, outcome)

    async def waiter(name):
        try:
            await flag.wait()
            record_wake()
            log.append((name, n_irq, "woke"))
        except Exception as e:  # noqa - the behaviour under test may raise anything
            log.append((name, n_irq, "raised " + type(e).__name__))

    asyncio.create_task(waiter("first"))
    await asyncio.sleep_ms(5)
    asyncio.create_task(waiter("second"))
    await asyncio.sleep_ms(5)
    ready()
    await host.end()
    return {"events": log}


async def sc_cancel(p, host):
    """A cancelled waiter and a timed-out wait_for must leave the flag usable."""
    arm(p)
    t = asyncio.create_task(flag.wait())
    await asyncio.sleep_ms(5)
    t.cancel()
    cancelled = False
    try:
        await t
    except asyncio.CancelledError:
        cancelled = True
    timed_out = False
    try:
        await asyncio.wait_for_ms(flag.wait(), 20)
    except asyncio.TimeoutError:
        timed_out = True
    start_watcher()
    ready()
    await host.end()
    return {"cancelled": cancelled, "timed_out": timed_out}


SCENARIOS = {
    "watch": sc_watch,
    "early_sets": sc_early_sets,
    "fanout": sc_fanout,
    "second_waiter": sc_second_waiter,
    "cancel": sc_cancel,
}


def run(p):
    """Entry point the host calls after a soft reboot."""
    tsf_log.reset()
    tsf_log.emit("HELLO", {"proto": 1, "scenario": p["scenario"], "source": p["source"]})
    tsf_log.emit("ID", tsf_identity.identity())
    host = Host()

    async def main():
        global running
        result = await SCENARIOS[p["scenario"]](p, host)
        running = False  # end of the timed section: later IRQs are counted as late
        return result

    try:
        result = asyncio.run(main())
    except Exception as e:
        report({"error": "%s: %s" % (type(e).__name__, e)})
        raise
    report(result)
