"""Host-side choreography of each scenario: soft-reboot the board, start the device
scenario, drive the GPIO stimulus in step with the board, collect both ends' records.

Waits are on events (the Pi seeing an ack edge, the board sending a record), each
with a deadline. Gaps between isolated pulses are stimulus spacing, not synchronisation.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.board.log_protocol import LogParser
from harness.board.recovery import recover_after_fault
from harness.board.session import BoardSession, BoardStopped, TargetError
from harness.config import Wiring
from harness.gpio import GpioRig
from harness.power import PowerSwitch
from harness.suite.analysis import Observation, logged_exception
from harness.suite.catalogue import Scenario

log = logging.getLogger(__name__)


# Stress steps: (pulse rate Hz, pulses). Rates step up to 5 kHz.
STRESS_STEPS = [(100, 50), (500, 100), (1000, 100), (2000, 100), (5000, 100)]
MAX_MISSES = 5  # isolated pulses in a row with no wake before a scenario stops early
SUSPECT_READOUT_S = 1.5  # READY/readout deadline once the build has already hung this run


@dataclass
class BenchHandle:
    """What a scenario needs: both ends of the wires and the target's settings."""

    pi: GpioRig
    target: BoardSession
    wiring: Wiring
    wake_timeout_ms: float
    device_timeout_s: float
    hard_irq: bool = True  # esp32: no hard IRQs
    progress: Callable[..., None] | None = None
    # the target's profile (harness/board/profiles.py) with the config's keys applied
    second_waiter: str = "second-wins"
    latency_us: dict[str, float] | None = None
    sched_depth: int = 4  # micropython.schedule's queue on this board
    # fail fast: once this build has hung, crashed or lost its waiter in an earlier scenario,
    # a scenario stops at the first unanswered pulse and waits less for the board's readout
    # and for recovery's soft reset
    suspect: bool = False
    started_at: float = 0.0
    ready_s: float = 0.0
    parser: LogParser | None = None
    waiter_exit: dict | None = None  # the board said its waiter died (WAITER_EXIT record)
    power: PowerSwitch | None = None  # recovery's last step, if the target has a switch

    @property
    def max_misses(self) -> int:
        return 1 if self.suspect else MAX_MISSES

    @property
    def recovery_soft_s(self) -> float | None:
        """Fail fast: on a build that already hung or crashed, recovery's soft reset gets the
        suspect deadline before the RUN pin (or power) takes over."""
        return SUSPECT_READOUT_S if self.suspect else None

    @property
    def readout_timeout_s(self) -> float:
        return min(self.device_timeout_s, SUSPECT_READOUT_S) if self.suspect \
            else self.device_timeout_s

    def waiter_died(self) -> bool:
        """Has the board reported that its waiter task ended? (reads what already arrived)"""
        if self.waiter_exit is None and self.parser is not None:
            rec = self.target.poll_record(self.parser, "WAITER_EXIT")
            if rec is not None:
                self.waiter_exit = rec.payload
        return self.waiter_exit is not None


    def where_stopped(self) -> str:
        """Where in the scenario the board went quiet: after which pulse, how long after."""
        if self.parser is None or self.parser.log.first("READY") is None:
            return " (before the scenario was armed)"
        pulses = self.pi.stimulus.count()
        if not pulses:
            return " (before the first pulse)"
        return (f" ({(time.monotonic() - self.pi.last_pulse_at) * 1000:.0f} ms after pulse "
                f"{pulses})")


def recovering(run: Callable[..., Observation]) -> Callable[..., Observation]:
    """A scenario whose board hangs, resets or loses its link tries to get it back before
    the fault goes up (Ctrl-C and a soft reset, the RUN pin, power): the fault raised again
    says where the board went quiet, what it raised before and what got it back."""
    @functools.wraps(run)
    def wrapper(b: BenchHandle, *args, **kwargs) -> Observation:
        try:
            return run(b, *args, **kwargs)
        except (BoardStopped, TargetError) as e:
            log.warning("%s: %s", run.__name__, e)
            where = b.where_stopped() if isinstance(e, BoardStopped) else ""
            # the Pi silent at the same moment: the bench's host stalled, not the board
            stalled = b.pi.stalled() if isinstance(e, BoardStopped) else ""
            # what the board raised before it hung or crashed is the cause: it leads
            first = logged_exception(b.parser.log) \
                if isinstance(e, BoardStopped) and b.parser is not None else ""
            raise e.recovered(where=where, bench_stalled=stalled, raised_first=first,
                              recovery=recover_after_fault(b.target, b.pi, b.power,
                                                           b.recovery_soft_s)) from e
    return wrapper


def _progress(b: BenchHandle, **kw: int) -> None:
    if b.progress:
        b.progress(**kw)


def _start(b: BenchHandle, sc: Scenario, source: str, **params) -> LogParser:
    b.started_at = time.monotonic()
    b.target.soft_reset()
    p = {"scenario": sc.device, "source": source, "stim_pin": b.wiring.stimulus.board_pin,
         "ack_pin": b.wiring.ack.board_pin, "hard_ok": b.hard_irq,
         "settle_ms": int(b.wake_timeout_ms),
         **params}
    parser = b.parser = LogParser()
    b.waiter_exit = None
    b.target.start(f"import tsf_watcher\ntsf_watcher.run({p!r})")
    b.target.read_until_record(parser, "READY", b.readout_timeout_s)
    b.pi.reset_capture()  # edges before READY are pin set-up (ack driven low), not results
    b.ready_s = time.monotonic() - b.started_at
    log.info("%s [%s] armed in %.0f ms", sc.name, source, b.ready_s * 1000)
    return parser


def _finish(b: BenchHandle, parser: LogParser, sc: Scenario, source: str,
            steps: list[int] | None = None, settle: bool = False) -> Observation:
    """End the scenario. With settle, the board is told how many pulses the Pi sent and
    ends its timed section only once it has handled them all and woken after the last (or
    the wake timeout passes): a board lagging behind a burst is not cut short."""
    t_end = time.monotonic()
    sent = b.pi.stimulus.count() if settle else ""
    b.target.send(f"E{sent}\n".encode())
    err = b.target.read_to_end(parser, b.readout_timeout_s)
    overhead = {"setup_s": round(b.ready_s, 4), "readout_s": round(time.monotonic() - t_end, 4)}
    log.info("%s [%s] done: %d pulses, %d acks, readout %.0f ms", sc.name, source,
             b.pi.stimulus.count(), b.pi.ack.count(), overhead["readout_s"] * 1000)
    return Observation(
        scenario=sc.name, source=source, log=parser.log,
        stim_us=[e.us for e in b.pi.stimulus.edges],
        ack_us=[e.us for e in b.pi.ack.edges],
        error_output=err, steps=steps or [], overhead=overhead, soft_irq=not b.hard_irq,
        wake_timeout_ms=b.wake_timeout_ms,
    )


def _isolated_pulses(b: BenchHandle, n: int, gap_ms: tuple[float, float], seed: int) -> str:
    """n pulses, each waiting for its ack (or the wake timeout) and a random gap. Stops after
    MAX_MISSES pulses in a row go unanswered: the verdict is clear and the rest would only
    cost a wake timeout each. Returns why it stopped early ("" when all n were sent)."""
    rnd = random.Random(seed)
    misses = 0
    for i in range(n):
        acks = b.pi.ack.count()
        b.pi.pulse()
        woke = b.pi.ack.wait_for(acks + 1, b.wake_timeout_ms / 1000)
        misses = 0 if woke else misses + 1
        _progress(b, pulses=i + 1, wakes=b.pi.ack.count())
        if misses >= b.max_misses:
            return (f"{misses} pulse(s) in a row got no wake within wake_timeout_ms "
                    f"({b.wake_timeout_ms:g} ms)")
        if misses and b.waiter_died():
            return "the board's waiter task died"
        time.sleep(rnd.uniform(*gap_ms) / 1000)
    return ""


def _asked(obs: Observation, asked: int, stopped_early: str) -> Observation:
    """Note what the scenario set out to send, so a shortfall can't pass (analysis)."""
    obs.asked, obs.stopped_early = asked, stopped_early
    return obs


def _quiet_window(b: BenchHandle) -> None:
    """After the last pulse, give a spurious wake the chance to show (returns early if one does;
    skipped when the board has said its waiter died, or crashed: nothing can wake)."""
    if not b.waiter_died():
        b.pi.ack.wait_for(b.pi.ack.count() + 1, b.wake_timeout_ms / 1000)


@recovering
def run_isolated(b: BenchHandle, sc: Scenario, source: str, n: int,
                 gap_ms: tuple[float, float] = (1.0, 3.0), **params) -> Observation:
    parser = _start(b, sc, source, cap=max(n + 8, 64), **params)
    stopped = _isolated_pulses(b, n, gap_ms, seed=n)
    _quiet_window(b)
    return _asked(_finish(b, parser, sc, source), n, stopped)


@recovering
def run_coalesce(b: BenchHandle, sc: Scenario, source: str, burst: int = 8,
                 period_us: int = 500, busy_ms: int = 20) -> Observation:
    """One pulse wakes the waiter, which then blocks the loop while a burst arrives."""
    parser = _start(b, sc, source, cap=64, busy_after_wake_us=busy_ms * 1000)
    b.pi.pulse()
    b.pi.ack.wait_for(1, b.wake_timeout_ms / 1000)
    b.pi.burst(burst, period_us)
    _wait_wake_after_last_pulse(b, (busy_ms + b.wake_timeout_ms) / 1000)
    _quiet_window(b)
    obs = _finish(b, parser, sc, source, settle=True)
    obs.steps = [1, burst]
    return _asked(obs, 1 + burst, "")


def _wait_wake_after_last_pulse(b: BenchHandle, timeout_s: float) -> bool:
    """Event wait until the Pi sees an ack edge later than the last stimulus edge."""
    last = b.pi.stimulus.edges[-1].us if b.pi.stimulus.edges else 0
    return b.pi.ack.wait_until(lambda edges: any(e.us > last for e in edges[-4:]), timeout_s)


@recovering
def run_stress(b: BenchHandle, sc: Scenario, source: str, busy_slice_us: int = 300
               ) -> Observation:
    total = sum(n for _, n in STRESS_STEPS)
    parser = _start(b, sc, source, cap=total + 8, busy_slice_us=busy_slice_us)
    stopped = ""
    for rate, n in STRESS_STEPS:
        b.pi.burst(n, 1_000_000 // rate)
        woke = _wait_wake_after_last_pulse(b, b.wake_timeout_ms / 1000)
        _progress(b, pulses=b.pi.stimulus.count(), wakes=b.pi.ack.count())
        if not woke and b.waiter_died():
            stopped = "the board's waiter task died"
            break
    obs = _finish(b, parser, sc, source, steps=[n for _, n in STRESS_STEPS], settle=True)
    return _asked(obs, total, stopped)


@recovering
def run_early_sets(b: BenchHandle, sc: Scenario, source: str, clear: bool, pre: int = 3
                   ) -> Observation:
    """Pulses before the watcher waits; then a quiet window; then one real pulse."""
    parser = _start(b, sc, source, cap=32, pre=pre, clear=clear)
    b.pi.burst(pre, 1000)
    b.target.send(b"G")
    b.target.read_until_record(parser, "WAITING", b.device_timeout_s)
    _quiet_window(b)
    acks = b.pi.ack.count()
    b.pi.pulse()
    b.pi.ack.wait_for(acks + 1, b.wake_timeout_ms / 1000)
    _quiet_window(b)
    return _asked(_finish(b, parser, sc, source), pre + 1, "")


@recovering
def run_fanout(b: BenchHandle, sc: Scenario, source: str, n: int = 5, subscribers: int = 3
               ) -> Observation:
    parser = _start(b, sc, source, cap=32, subscribers=subscribers)
    stopped = _isolated_pulses(b, n, (1.0, 2.0), seed=7)
    _quiet_window(b)
    return _asked(_finish(b, parser, sc, source), n, stopped)


@recovering
def run_second_waiter(b: BenchHandle, sc: Scenario, source: str) -> Observation:
    parser = _start(b, sc, source, cap=8)
    stopped = _isolated_pulses(b, 2, (1.0, 2.0), seed=3)
    return _asked(_finish(b, parser, sc, source), 2, stopped)


@recovering
def run_cancel(b: BenchHandle, sc: Scenario, source: str, n: int = 3) -> Observation:
    parser = _start(b, sc, source, cap=16)
    stopped = _isolated_pulses(b, n, (1.0, 2.0), seed=5)
    _quiet_window(b)
    return _asked(_finish(b, parser, sc, source), n, stopped)


def classify_second_waiter(events: list[list]) -> dict:
    """What two concurrent waiters saw: who woke on the first pulse, who raised, who is stranded."""
    raised = [name for name, _, what in events if what.startswith("raised")]
    woke_first = {name for name, n, what in events if what == "woke" and n <= 1}
    woke_any = {name for name, _, what in events if what == "woke"}
    if raised:
        observed = "raises"
    elif woke_first == {"first", "second"}:
        observed = "both-wake"
    elif woke_first == {"second"}:
        observed = "second-wins"
    elif woke_first == {"first"}:
        observed = "first-wins"
    else:
        observed = "none-wake"
    stranded = sorted({"first", "second"} - woke_any - set(raised))
    return {"second_waiter_observed": observed, "raised": raised, "stranded": stranded,
            "events": events}
