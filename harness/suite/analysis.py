"""Turn one scenario's raw observations (harness/suite/observation.py) into facts in the
flag's own terms: each check returns the lines that say what broke, empty when it held."""

from __future__ import annotations

from harness.board.log_protocol import DeviceLog
from harness.suite.observation import Observation, timeline
from harness.suite.stats import percentile
from harness.verdict import board_exception_summary


def fmt_us(v: float | None) -> str:
    return "?" if v is None else f"+{v:.0f} µs"


# ---- the board's own words: exceptions and output, for the verdict ----------------------

def error_lines(error_output: str) -> list[str]:
    """The board's error output, each line marked as such for the device log."""
    return [f"[board error output] {ln}" for ln in error_output.splitlines() if ln.strip()]


def board_exception(obs: Observation) -> str:
    """What the board raised during the scenario, from its error output or from the waiter's
    own report of why it died; the exception leads, the last frames follow."""
    if obs.error_output:
        return board_exception_summary(obs.error_output)
    return logged_exception(obs.log)


def logged_exception(log: DeviceLog) -> str:
    """What the board's log says it raised: a traceback it printed (a task died) or the
    waiter's own report of why it died; "" if nothing. Also for a scenario cut short by a
    crash: what went wrong first leads the verdict."""
    counts = log.first("COUNT") or {}
    printed = printed_traceback(log.lines)
    if printed and not log.first("WAITER_EXIT"):  # a task died: asyncio printed it
        return f"{board_exception_summary(printed)} in a task (asyncio printed it)"
    died = log.first("WAITER_EXIT")
    exit_why = (died or {}).get("exc") or counts.get("waiter_exit")
    if exit_why and exit_why != "cap":
        tb = (died or {}).get("traceback", "")
        summary = board_exception_summary(tb) if tb else exit_why
        return f"{summary} in the waiter task (flag.wait() raised; the waiter died)"
    return ""


def printed_traceback(lines: list[str]) -> str:
    """The first traceback the board printed as plain output (e.g. asyncio's "Task exception
    wasn't retrieved"), up to and including its exception line."""
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            block = [line]
            for nxt in lines[i + 1:]:
                block.append(nxt)
                if not nxt.startswith((" ", "\t")):
                    return "\n".join(block)
    return ""


def device_excerpt(obs: Observation, n: int = 25) -> str:
    """The board's own output (not the log protocol), last n lines, for a failure message."""
    lines = [ln for ln in obs.log.lines if not ln.startswith("@TSF")][-n:]
    return "\n".join(lines) if lines else "(no device output besides the log protocol)"


def timeline_text(rows: list[dict], limit: int = 12) -> str:
    """The matched stimulus/IRQ/wake/ack timeline as a small table for a failure message."""
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    out = ["seq  stimulus   irq   wake    ack   (µs, Pi clock)"]
    for r in rows[:limit]:
        out.append(f"{r['seq']:>3} {f(r['stimulus_us']):>8} {f(r['irq_us']):>6} "
                   f"{f(r['wake_us']):>6} {f(r['ack_us']):>6}")
    if len(rows) > limit:
        out.append(f"... {len(rows) - limit} more")
    return "\n".join(out)


# ---- checks: each returns failure sentences (empty when the clause holds) ----------------

def scheduler_overflow(obs: Observation) -> int:
    """Pulses lost to a full micropython.schedule queue: soft IRQs only, and only when the
    port's own drop count (where known) accounts for the whole shortfall."""
    c = obs.counts
    short = c["pi_edges"] - c["irqs"]
    dropped = (obs.log.first("COUNT") or {}).get("dropped")
    soft = obs.source == "soft" or obs.soft_irq
    if not soft or short <= 0 or (dropped is not None and dropped != short):
        return 0
    return short


def check_counts_reconcile(obs: Observation, allow_overflow: bool = False) -> list[str]:
    """The board saw every edge the Pi sent; a soft-IRQ shortfall is named as scheduler
    overflow (and tolerated where the scenario allows it), never as a lost wake-up."""
    c = obs.counts
    if c["irqs"] == c["pi_edges"]:
        return []
    lost = scheduler_overflow(obs)
    if lost:
        if allow_overflow:
            return []
        return [f"scheduler queue overflow: {lost} of {c['pi_edges']} pulses never reached the "
                "soft IRQ handler (micropython.schedule queue full); not a flag fault"]
    late = (obs.log.first("COUNT") or {}).get("late_irqs", 0)
    if late and c["irqs"] + late == c["pi_edges"]:
        return [f"{late} of {c['pi_edges']} pulses reached the IRQ handler only after the "
                "scenario had ended (the board fell behind)"]
    return [f"IRQ count {c['irqs']} != pulses the Pi sent {c['pi_edges']}: counts don't "
            "reconcile"]


def check_isolated(obs: Observation, wake_timeout_ms: float) -> list[str]:
    """Isolated pulses: pulse i wakes the waiter exactly once, after IRQ i and before IRQ i+1."""
    fails = []
    irq, wake = obs.irq_t, obs.wake_t
    sent = obs.counts["pi_edges"]
    if not sent:
        return ["no stimulus pulse was captured: nothing was tested"]
    if not irq:
        return [f"{sent} pulses sent and the board recorded no IRQ: no pulse reached the "
                "handler, so no wake could be checked"]
    tl = timeline(obs)
    for i, t in enumerate(irq):
        nxt = irq[i + 1] if i + 1 < len(irq) else None
        woke = [w for w in wake if w >= t and (nxt is None or w < nxt)]
        at = fmt_us(tl[i]["irq_us"]) if i < len(tl) else "?"
        if not woke:
            fails.append(f"pulse {i}: IRQ at {at}{_late_irq(tl, i, wake_timeout_ms)}, no wake "
                         f"within {wake_timeout_ms:g} ms")
        elif len(woke) > 1:
            fails.append(f"pulse {i}: IRQ at {at}, woke {len(woke)} times (one set, one wake)")
    early = [w for w in wake if not irq or w < irq[0]]
    if early:
        fails.append(f"{len(early)} wake(s) before the first pulse: wake without set()")
    return fails


def irq_delay_us(tl: list[dict], i: int) -> float | None:
    """How long after its stimulus edge pulse i's IRQ came (µs, on the shared timeline); a
    wake timeout or more says the board stalled before it took the interrupt (a stopped VM,
    IRQs held off). None where the timeline cannot place it."""
    row = tl[i] if i < len(tl) else {}
    if row.get("irq_us") is None or row.get("stimulus_us") is None:
        return None
    return row["irq_us"] - row["stimulus_us"]


def _late_irq(tl: list[dict], i: int, wake_timeout_ms: float) -> str:
    took = irq_delay_us(tl, i)
    return f" ({took / 1000:.0f} ms after its edge: the board stalled, or takes its " \
        "interrupts late)" if took is not None and took > wake_timeout_ms * 1000 else ""


def check_all_pulses_sent(obs: Observation) -> list[str]:
    """A scenario that stopped pulsing because the board stopped waking did not test the
    rest: that is the board's failure, said as such (bench_shortfall says the rest)."""
    sent = obs.counts["pi_edges"]
    if obs.asked is None or sent >= obs.asked or not _board_missed(obs):
        return []
    return [f"the scenario stopped after {sent} of its {obs.asked} pulses: "
            f"{obs.stopped_early}"]


def bench_shortfall(obs: Observation) -> str:
    """The Pi sent fewer pulses than the scenario asked for and the board is not to blame:
    the bench did not do what it set out to, so there is no verdict on the firmware."""
    sent = obs.counts["pi_edges"]
    if obs.asked is None or sent >= obs.asked or _board_missed(obs):
        return ""
    if obs.stopped_early:
        return (f"the scenario stopped after {sent} of its {obs.asked} pulses because no ack "
                f"was reported in time ({obs.stopped_early}), yet every ack edge is stamped "
                "within the timeout on the Pi's clock: pigpiod reported the edges late "
                "(pigpiod or the Pi stalled or overloaded?)")
    return (f"the Pi sent {sent} of the {obs.asked} pulses the scenario asked for, and the "
            "cause is not known: run `tsfrig doctor`")


def _board_missed(obs: Observation) -> bool:
    """Did the host stop early because the board really missed wakes (not because the Pi
    reported its acks late)? Judged on the Pi's own timestamps."""
    if not obs.stopped_early:
        return False
    if "died" in obs.stopped_early or not obs.wake_timeout_ms:
        return True
    limit = obs.wake_timeout_ms * 1000
    return any(a is None or a - s > limit for s, a in zip(
        obs.stim_us, _first_after(obs.stim_us, obs.ack_us), strict=True))


def check_wake_deadline(obs: Observation, wake_timeout_ms: float, busy_ms: float = 0
                        ) -> list[str]:
    """No lost wake-up, wherever it happens: every pulse is followed by a wake within
    wake_timeout_ms, measured from the stimulus edge to the first ack edge after it (Pi
    clock: a board that stalls before it even takes the IRQ counts too) and from the IRQ to
    the first wake after it (board clock). A pulse never followed by a wake at all is left to
    the checks that say which wake is missing. busy_ms: how long the scenario itself keeps
    the waiter from running (coalesce), on top of the timeout."""
    limit_us = (wake_timeout_ms + busy_ms) * 1000
    late: list[tuple[float, int, str]] = []
    irq = obs.irq_t
    for starts, ends, how in ((obs.stim_us, obs.ack_us, "after its stimulus edge (Pi clock)"),
                              (irq, obs.wake_t, "after its IRQ (board clock)")):
        for i, (t, end) in enumerate(zip(starts, _first_after(starts, ends), strict=True)):
            if end is not None and end - t > limit_us:
                late.append((end - t, i, how))
    if not late:
        return []
    worst, i, how = max(late)
    pulses = len({p for _, p, _ in late})
    stall = ""
    if i < len(irq) and i < len(obs.stim_us) and "Pi clock" in how:
        took = irq_delay_us(timeline(obs), i)
        if took is not None and took > limit_us:
            stall = (f"; its IRQ came {took / 1000:.0f} ms after the edge (the board "
                     "stalled, or takes its interrupts late)")
    busy = f" after the scenario's {busy_ms:g} ms busy period" if busy_ms else ""
    return [f"lost wake-up: {pulses} pulse(s) woke the waiter later than wake_timeout_ms "
            f"({wake_timeout_ms:g} ms){busy}; worst pulse {i}, woken {worst / 1000:.0f} ms "
            f"{how}{stall}"]


def check_latency_max(obs: Observation, budget: dict[str, float] | None) -> list[str]:
    """The budget's max bounds every sample of every scenario with isolated pulses, not only
    the latency scenario's (which also checks the percentiles)."""
    if not budget or "max" not in budget:
        return []
    samples = {k: v for k, v in latency_samples(obs).items() if v}
    return check_latency(samples, {"max": budget["max"]})


def check_pulses_each_woke(obs: Observation, wake_timeout_ms: float,
                           latency_us: dict[str, float] | None) -> list[str]:
    """Isolated pulses, the checks their scenarios share: no lost wake-up, every edge
    counted, one wake per pulse, none slower than the latency budget's max."""
    return (check_wake_deadline(obs, wake_timeout_ms) + check_counts_reconcile(obs)
            + check_isolated(obs, wake_timeout_ms) + check_latency_max(obs, latency_us))


def check_no_wake_without_set(obs: Observation) -> list[str]:
    """Auto-reset: every wake needs a set since the previous wake (one racing set excused once)."""
    fails = []
    prev_n, excuse = 0, False
    for j, n in enumerate(obs.wake_n):
        if n > prev_n:
            excuse = True
        elif excuse:
            excuse = False
        else:
            fails.append(f"wake {j}: no pulse since wake {j - 1} — wait() returned without a new "
                         "set(): the flag did not auto-clear")
            if len(fails) >= 3:
                break
        prev_n = n
    return fails


def check_last_set_wakes(obs: Observation, step_ends: list[int] | None = None) -> list[str]:
    """No lost wake-up: after the last IRQ of each burst there is a wake."""
    irq, wake = obs.irq_t, obs.wake_t
    ends = step_ends or ([len(irq)] if irq else [])
    fails = []
    tl = timeline(obs)
    for end in ends:
        if end == 0 or end > len(irq):
            continue
        t_last = irq[end - 1]
        if not any(w >= t_last for w in wake):
            at = fmt_us(tl[end - 1]["irq_us"]) if end - 1 < len(tl) else "?"
            fails.append(f"lost wake-up: pulse {end - 1} (IRQ at {at}) was the last set and "
                         "no wake followed it")
    return fails


def check_not_more_wakes_than_sets(obs: Observation) -> list[str]:
    c = obs.counts
    if c["wakes"] > c["irqs"]:
        return [f"{c['wakes']} wakes for {c['irqs']} IRQs: "
                "the flag woke more often than it was set"]
    return []


def latency_samples(obs: Observation) -> dict[str, list[float]]:
    """Isolated pulses only: IRQ i → the first wake after it (board clock), stimulus i → the
    first ack edge after it (Pi clock). Paired by time, not by index, so a missing or extra
    wake shifts no later sample and none is dropped."""
    return {name: [float(e - s) for s, e in zip(starts, _first_after(starts, ends),
                                                strict=True) if e is not None]
            for name, starts, ends in (("irq_to_wake_us", obs.irq_t, obs.wake_t),
                                       ("edge_to_ack_us", obs.stim_us, obs.ack_us))}


def _first_after(starts: list[int], ends: list[int]) -> list[int | None]:
    """For each start (in time order), the first end at or after it (None: none came)."""
    out: list[int | None] = []
    j = 0
    for s in starts:
        while j < len(ends) and ends[j] < s:
            j += 1
        out.append(ends[j] if j < len(ends) else None)
    return out


def check_latency(samples: dict[str, list[float]], budget: dict[str, float]) -> list[str]:
    fails = []
    for metric, values in samples.items():
        if not values:
            fails.append(f"{metric}: no samples")
            continue
        for name, limit in budget.items():
            q = 100.0 if name == "max" else float(name[1:])
            got = percentile(values, q)
            if got > limit:
                fails.append(f"{metric} {name} = {got:.0f} µs exceeds the budget {limit:.0f} µs "
                             f"({len(values)} samples)")
    return fails


def check_burst_coalesced(obs: Observation, first_burst_irq: int, busy_us: int) -> list[str]:
    """Binary flag: sets that pile up while the waiter is busy wake it once, not once each."""
    irq, wake = obs.irq_t, obs.wake_t
    if not wake or len(irq) <= first_burst_irq:
        return []  # the liveness checks report this
    busy_end = wake[0] + busy_us
    burst = irq[first_burst_irq:]
    late = [t for t in burst if t >= busy_end]
    allowed = 1 + len(late)
    woke = len(wake) - 1
    if woke > allowed:
        return [f"a burst of {len(burst)} pulses ({len(burst) - len(late)} during a "
                f"{busy_us // 1000} ms busy period) woke the waiter {woke} times: several sets "
                f"before the waiter runs must wake it once (at most {allowed} here)"]
    return []


def check_pending(obs: Observation, pre: int, cleared: bool, wake_timeout_ms: float) -> list[str]:
    """Sets before the first wait(): remembered unless clear() discarded them."""
    r = obs.result
    irq, wake = obs.irq_t, obs.wake_t
    fails = []
    if r.get("pre_seen") != pre:
        fails.append(f"the board counted {r.get('pre_seen')} of the {pre} pulses sent before "
                     "the watcher was ready")
    if len(irq) <= pre:
        return fails + ["the real pulse after the quiet window never reached the board's IRQ"]
    t_ready, real = r.get("t_ready", 0), irq[pre]
    early = [w for w in wake if w < real]
    after = [w for w in wake if w >= real]
    if cleared:
        if early:
            fails.append(f"after clear(), wait() returned {early[0] - t_ready} µs after the "
                         f"watcher started waiting, {real - early[0]} µs before the real pulse: "
                         "clear() did not discard the earlier set")
        if len(after) != 1:
            fails.append(f"the real pulse after clear() woke the waiter {len(after)} times "
                         "(expected once)")
    else:
        if not early:
            fails.append(f"{pre} pulses before the first wait(): it did not return until the real "
                         f"pulse {real - t_ready} µs later — the earlier set was forgotten")
        elif early[0] - t_ready > wake_timeout_ms * 1000:
            fails.append(f"the pending set woke the first wait() only after "
                         f"{early[0] - t_ready} µs (expected at once, < {wake_timeout_ms:.0f} ms)")
        if len(early) > 1:
            fails.append(f"{pre} pending sets woke the waiter {len(early)} times "
                         "(binary flag: once)")
        if len(after) != 1:
            fails.append(f"the real pulse woke the waiter {len(after)} times (expected once)")
    return fails
