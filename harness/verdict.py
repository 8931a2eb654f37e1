"""The one place that decides what a test's outcome means.

A firmware team trusts exit codes without reading logs, so the line between "this build
broke the flag" and "the bench could not measure" is drawn here, once, from what was
observed, and every artefact (results.json, junit.xml, index.html, the exit code) follows it.

    firmware failure  -> "failed"       exit 1   regression in compare
    bench fault       -> "error"        exit 2   incomplete in compare
    SIGINT / SIGTERM  -> "interrupted"  130/143  incomplete in compare
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, ERROR, INTERRUPTED = "passed", "failed", "error", "interrupted"


class Fault(Exception):
    """A fault of the bench or the board, with what a scenario learnt of it on the way up,
    given to the constructor: where the board went quiet, what it raised before, whether the
    Pi went silent too, and what got it back (a harness.board.recovery.Recovery); nothing
    when no scenario was running."""

    def __init__(self, *args: object, where: str = "", raised_first: str = "",
                 bench_stalled: str = "", recovery: Any = None) -> None:
        super().__init__(*args)
        self.where = where
        self.raised_first = raised_first  # the board's exception before it hung or crashed
        self.bench_stalled = bench_stalled  # the Pi went silent with the board: how
        self.recovery = recovery

    def recovered(self, **context: Any) -> Fault:
        """This fault again (a copy, its own fields kept), with what the scenario learnt:
        where, raised_first, bench_stalled, recovery."""
        again = copy.copy(self)
        Fault.__init__(again, *self.args, **{"where": self.where, "raised_first":
                                             self.raised_first, "bench_stalled":
                                             self.bench_stalled, "recovery": self.recovery,
                                             **context})
        return again


class BenchFault(Fault):
    """The bench could not measure (serial link, GPIO daemon, wiring, host): never a
    firmware verdict."""


class FirmwareFault(Fault):
    """Evidence against the firmware seen on the wire: the board raised, hung, crashed or
    reset. Only a verdict once the board had come up healthy (after bring-up)."""

    summary = ""  # the board's exception, one line, when it raised one
    then = ""  # the fault as the second half of a verdict led by what the board raised


@dataclass(frozen=True)
class Evidence:
    """What one test observed, reduced to the facts the classification needs."""

    in_bring_up: bool = False  # the fault happened before the board was up and checked
    contract_failures: tuple[str, ...] = ()  # clauses of the flag's contract that did not hold
    board_exception: str = ""  # an exception the board raised (type: text, last frames)
    board_stopped: str = ""  # the board hung, crashed or reset mid-scenario
    bench_fault: str = ""  # the bench could not measure
    harness_error: str = ""  # a bug in tsfrig itself: not the firmware's fault either
    interrupted: bool = False


@dataclass(frozen=True)
class Verdict:
    outcome: str  # passed | failed | error | interrupted
    cause: str = ""  # the first line a person reads: the cause, in the firmware's terms
    details: list[str] = field(default_factory=list)  # further failing clauses


def classify(ev: Evidence) -> Verdict:
    """Outcome and leading cause of one test, by precedence: an interrupted run is never a
    pass; bring-up faults are the bench's; on a board that came up, anything it raised and
    any hang, crash or reset is the firmware's; a fault of the link or daemon is the bench's;
    then the flag's contract decides."""
    if ev.interrupted:
        return Verdict(INTERRUPTED, "interrupted (SIGINT/SIGTERM) before the test finished")
    if ev.in_bring_up:
        why = ev.bench_fault or ev.board_exception or ev.board_stopped or ev.harness_error
        if why:
            return Verdict(ERROR, f"bench fault (not a firmware verdict): bench bring-up: {why}")
    if ev.board_exception:
        return Verdict(FAILED, f"board raised {ev.board_exception}",
                       list(ev.contract_failures))
    if ev.board_stopped:
        return Verdict(FAILED, ev.board_stopped, list(ev.contract_failures))
    if ev.bench_fault:
        return Verdict(ERROR, f"bench fault (not a firmware verdict): {ev.bench_fault}")
    if ev.harness_error:
        return Verdict(ERROR, f"tsfrig harness error (not a firmware verdict, please report): "
                              f"{ev.harness_error}")
    if ev.contract_failures:
        return Verdict(FAILED, ev.contract_failures[0], list(ev.contract_failures[1:]))
    return Verdict(PASSED)


def evidence_from(exc: BaseException | None) -> Evidence:
    """The evidence in an exception a scenario raised before its verdict: the board raised
    (its summary), hung or reset (where it went quiet, what it raised before, which then
    leads, and what got it back; a recovery that found the port gone makes it the bench's),
    a bench fault, or a harness bug."""
    what = str(exc) if exc is not None else ""
    recovery = exc.recovery if isinstance(exc, Fault) else None
    if isinstance(exc, FirmwareFault):
        if exc.summary:
            return Evidence(board_exception=exc.summary)
        if recovery is not None and recovery.link_lost:
            return Evidence(bench_fault=f"{what}; {recovery.failure}")
        if exc.bench_stalled:  # the Pi went silent with the board: the bench's host stalled
            return Evidence(bench_fault=f"the board and the Pi went silent together, so the "
                            f"bench stalled, not the firmware ({what}{exc.where}"
                            f"; {exc.bench_stalled}); free the bench host's CPU or restart "
                            "the bench")
        said = f"; {recovery.says()}" if recovery is not None else ""
        if exc.raised_first:  # it raised, then hung or crashed: the exception is the cause
            then = exc.then or what
            return Evidence(board_exception=f"{exc.raised_first}; then {then}{exc.where}{said}")
        return Evidence(board_stopped=f"{what}{exc.where}{said}")
    if isinstance(exc, BenchFault):
        step = recovery.step if recovery is not None else ""
        return Evidence(bench_fault=what + (f"; board recovered by {step}" if step else ""))
    if exc is not None:
        return Evidence(harness_error=f"{type(exc).__name__}: {exc}")
    return Evidence()


def run_verdict(outcomes: list[str], interrupted: bool, bench_fault: bool) -> str:
    """The run's verdict from its tests: interrupted > error > fail > pass."""
    if interrupted:
        return "interrupted"
    if bench_fault or ERROR in outcomes:
        return "error"
    if FAILED in outcomes:
        return "fail"
    return "pass"


EXIT_CODES = {"pass": 0, "fail": 1, "error": 2}
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells do
NO_TESTS = 5  # pytest's own code for "no tests collected": nothing ran, nothing reported


def exit_code(verdict: str, signal_name: str | None = None) -> int:
    """The process exit code a run verdict promises."""
    if verdict == "interrupted":
        return SIGNAL_EXIT.get(signal_name or "SIGINT", 130)
    return EXIT_CODES[verdict]


def board_exception_summary(error_output: str, frames: int = 3) -> str:
    """'ValueError: boom (at asyncio/core.py line 12, ...)' from a MicroPython traceback:
    the exception line first, then the last frames, so the cause leads."""
    lines = [ln.rstrip() for ln in error_output.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    exc = lines[-1].strip()
    where = [ln.strip() for ln in lines[:-1] if ln.strip().startswith("File ")][-frames:]
    return exc + (f" ({'; '.join(where)})" if where else "")
