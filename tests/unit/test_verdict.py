"""The classification on its own, no bench: each rule of the verdict table in README, and
the precedence between them (the cases where a wrong order would let a firmware bug pass as
a bench fault, or a bench fault count against the firmware)."""

import pytest

from harness import verdict as v
from harness.board.recovery import Recovery
from harness.verdict import Evidence, classify


def test_nothing_wrong_is_a_pass():
    assert classify(Evidence()) == v.Verdict(v.PASSED)


def test_a_broken_clause_is_a_firmware_failure_led_by_that_clause():
    got = classify(Evidence(contract_failures=("pulse 3: no wake within 200 ms", "counts")))
    assert got.outcome == v.FAILED
    assert got.cause == "pulse 3: no wake within 200 ms" and got.details == ["counts"]


def test_a_board_exception_is_a_firmware_failure_and_leads_the_message():
    got = classify(Evidence(contract_failures=("pulse 1: no wake within 200 ms",),
                            board_exception="ValueError: boom"))
    assert got.outcome == v.FAILED
    assert got.cause == "board raised ValueError: boom"  # not the timeout it caused
    assert got.details == ["pulse 1: no wake within 200 ms"]


def test_a_hang_after_bring_up_is_the_firmwares():
    got = classify(Evidence(board_stopped="board stopped answering; Ctrl-C got it back"))
    assert got.outcome == v.FAILED and got.cause.startswith("board stopped answering")


@pytest.mark.parametrize("field", ["bench_fault", "board_exception", "board_stopped",
                                   "harness_error"])
def test_anything_during_bring_up_is_a_bench_fault(field):
    got = classify(Evidence(in_bring_up=True, **{field: "it went wrong"}))
    assert got.outcome == v.ERROR
    assert got.cause.startswith("bench fault (not a firmware verdict)")
    assert "it went wrong" in got.cause


def test_a_bench_fault_is_an_error_even_with_failed_clauses():
    got = classify(Evidence(bench_fault="pigpiod gone", contract_failures=("lost wake",)))
    assert got.outcome == v.ERROR and "pigpiod gone" in got.cause


def test_what_the_board_raised_outranks_a_later_bench_fault():
    got = classify(Evidence(board_exception="TypeError: x", bench_fault="link lost"))
    assert got.outcome == v.FAILED


def test_a_harness_bug_is_never_a_firmware_verdict():
    got = classify(Evidence(harness_error="KeyError: 'x'", contract_failures=("c",)))
    assert got.outcome == v.ERROR and "harness error" in got.cause


def test_an_interrupted_test_is_never_a_pass_nor_a_failure():
    got = classify(Evidence(interrupted=True, board_exception="ValueError: x"))
    assert got.outcome == v.INTERRUPTED


@pytest.mark.parametrize("outcomes, interrupted, bench, verdict, code", [
    (["passed", "passed"], False, False, "pass", 0),
    (["passed", "failed"], False, False, "fail", 1),
    (["failed", "error"], False, False, "error", 2),
    (["passed"], False, True, "error", 2),
    (["passed", "failed"], True, False, "interrupted", 130),
])
def test_run_verdict_and_exit_code(outcomes, interrupted, bench, verdict, code):
    got = v.run_verdict(outcomes, interrupted, bench)
    assert got == verdict
    assert v.exit_code(got, "SIGINT" if interrupted else None) == code


def test_sigterm_exit_code():
    assert v.exit_code("interrupted", "SIGTERM") == 143


def test_board_exception_summary_leads_with_the_exception():
    tb = ('Traceback (most recent call last):\n  File "a.py", line 1, in f\n'
          '  File "asyncio/core.py", line 9, in run\nTypeError: can\'t convert NoneType to int\n')
    got = v.board_exception_summary(tb)
    assert got.startswith("TypeError: can't convert NoneType to int (")
    assert 'File "asyncio/core.py", line 9, in run' in got
    assert v.board_exception_summary("") == ""


class _Raised(v.FirmwareFault):
    summary = "ValueError: boom"


class _Mute(v.FirmwareFault):
    pass


def test_evidence_from_what_a_scenario_raised():
    assert classify(v.evidence_from(_Raised("x"))).cause == "board raised ValueError: boom"
    hung = _Mute("board stopped answering", where=" (120 ms after pulse 3)",
                 recovery=Recovery(step="Ctrl-C + soft reset"))
    got = classify(v.evidence_from(hung))
    assert got.outcome == v.FAILED
    assert got.cause == ("board stopped answering (120 ms after pulse 3); "
                         "Ctrl-C + soft reset got it back")
    gone = _Mute("board stopped answering",  # the port vanished
                 recovery=Recovery(failure="serial link lost", link_lost=True))
    assert classify(v.evidence_from(gone)).outcome == v.ERROR
    assert classify(v.evidence_from(v.BenchFault("pigpiod gone"))).outcome == v.ERROR
    assert "harness error" in classify(v.evidence_from(KeyError("x"))).cause
    assert classify(v.evidence_from(None)).outcome == v.PASSED


def test_a_fault_gets_what_the_scenario_learnt_through_its_constructor():
    from harness.board.session import BoardStopped

    hung = BoardStopped("board crashed", then="it crashed")
    again = hung.recovered(where=" (at pulse 3)", raised_first="ValueError: x",
                           recovery=Recovery(step="Ctrl-C + soft reset"))
    assert type(again) is BoardStopped and again.then == "it crashed"
    assert (hung.where, hung.recovery) == ("", None)  # the original is left as it was
    assert classify(v.evidence_from(again)).cause == (
        "board raised ValueError: x; then it crashed (at pulse 3); Ctrl-C + soft reset got it "
        "back")
