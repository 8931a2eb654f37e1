"""Contract checks on hand-built observations: each catches the defect it names."""

import json
import zlib

from harness.board.log_protocol import LogParser
from harness.suite import analysis as a


def make_obs(irq, wake, wake_n=None, stim=None, acks=None, kind="hard", result=None):
    p = LogParser()
    recs = [("IRQ", {"i0": 0, "v": irq}), ("WAKE", {"i0": 0, "v": wake}),
            ("WAKEN", {"i0": 0, "v": wake_n if wake_n is not None else
                       [sum(1 for t in irq if t <= w) for w in wake]}),
            ("COUNT", {"irqs": len(irq), "wakes": len(wake)}),
            ("RESULT", result or {})]
    for seq, (kind_, payload) in enumerate(recs):
        body = f"@TSF1 {seq} {kind_} {json.dumps(payload)}"
        p.feed(f"{body} #{zlib.crc32(body.encode()):08x}")
    stim = stim if stim is not None else [1000 + t for t in irq]
    acks = acks if acks is not None else [1000 + w + 5 for w in wake]
    return a.Observation("t", kind, p.log, stim, acks)


def test_isolated_ok():
    obs = make_obs([0, 1000, 2000], [50, 1060, 2040])
    assert a.check_isolated(obs, 50) == []
    assert a.check_counts_reconcile(obs) == []


def test_isolated_missing_wake_is_named_by_pulse():
    obs = make_obs([0, 1000, 2000], [50, 2040])
    fails = a.check_isolated(obs, 50)
    assert len(fails) == 1 and fails[0].startswith("pulse 1: IRQ at +")
    assert "no wake within 50 ms" in fails[0]


def test_an_irq_taken_seconds_after_its_edge_says_the_board_stalled():
    """A stopped board takes its queued IRQs when it resumes: the missing wake's line says
    the IRQ itself came late, the cause, not only that no wake followed."""
    irq, wake = [0, 1000, 8_001_000], [50, 1060]
    obs = make_obs(irq, wake, stim=[1000, 2000, 3000], acks=[1000 + w + 5 for w in wake])
    (line,) = a.check_isolated(obs, 500)
    assert line.startswith("pulse 2: IRQ at +"), line
    assert "ms after its edge: the board stalled" in line and "no wake within 500 ms" in line
    on_time = make_obs([0, 1000, 2000], [50, 1060], stim=[1000, 2000, 3000])
    assert "after its edge" not in a.check_isolated(on_time, 500)[0]


def test_double_wake_is_caught():
    obs = make_obs([0, 1000], [50, 60, 1050])
    assert "woke 2 times" in a.check_isolated(obs, 50)[0]


def test_wake_without_set_is_caught_once_racing_set_is_excused():
    ok = make_obs([0, 1000], [50, 55, 1050], wake_n=[1, 1, 2])  # one racing set excused
    assert a.check_no_wake_without_set(ok) == []
    bad = make_obs([0, 1000], [50, 55, 60, 1050], wake_n=[1, 1, 1, 2])
    assert "did not auto-clear" in a.check_no_wake_without_set(bad)[0]


def test_lost_wakeup_after_burst():
    obs = make_obs([0, 100, 200, 300], [50])
    assert "lost wake-up: pulse 3" in a.check_last_set_wakes(obs)[0]
    assert a.check_last_set_wakes(make_obs([0, 100, 200, 300], [50, 20300])) == []


def test_burst_during_busy_must_coalesce():
    irq = [0] + [1000 + 500 * i for i in range(8)]
    once = make_obs(irq, [50, 20100])
    assert a.check_burst_coalesced(once, 1, 20000) == []
    each = make_obs(irq, [50] + [20100 + 10 * i for i in range(8)])
    assert "woke the waiter 8 times" in a.check_burst_coalesced(each, 1, 20000)[0]


def test_counts_mismatch_and_soft_overflow_are_told_apart():
    obs = make_obs([0, 100], [50, 150], stim=[0, 100, 200])
    assert "IRQ count 2 != pulses the Pi sent 3" in a.check_counts_reconcile(obs)[0]
    soft = make_obs([0, 100], [50, 150], stim=[0, 100, 200], kind="soft")
    assert "scheduler queue overflow" in a.check_counts_reconcile(soft)[0]


def test_pending_and_clear():
    # 3 early pulses, watcher ready at 5000, real pulse at 40000
    irq = [0, 1000, 2000, 40000]
    remembered = make_obs(irq, [5010, 40050], result={"pre_seen": 3, "t_ready": 5000})
    assert a.check_pending(remembered, 3, cleared=False, wake_timeout_ms=50) == []
    assert "did not discard" in a.check_pending(remembered, 3, True, 50)[0]
    forgotten = make_obs(irq, [40050], result={"pre_seen": 3, "t_ready": 5000})
    assert "forgotten" in a.check_pending(forgotten, 3, False, 50)[0]
    assert a.check_pending(forgotten, 3, True, 50) == []


def test_latency_budget_and_percentiles():
    samples = {"irq_to_wake_us": [100.0] * 99 + [900.0]}
    assert a.check_latency(samples, {"p50": 200, "max": 1000}) == []
    assert "max = 900 µs exceeds" in a.check_latency(samples, {"max": 500})[0]


def test_timeline_aligns_board_clock_to_pi():
    # board clock runs 1_000_000 µs behind the Pi's stimulus-relative time
    obs = make_obs([0, 1000], [40, 1040], stim=[5000, 6000], acks=[5045, 6045])
    rows = a.timeline(obs)
    assert rows[0]["stimulus_us"] == 0 and rows[1]["stimulus_us"] == 1000
    assert rows[0]["wake_us"] == 45 and rows[0]["ack_us"] == 45
    assert rows[1]["irq_us"] == 1005


def test_isolated_checks_cannot_pass_vacuously():
    no_irq = make_obs([], [], stim=[1000, 3000, 5000])
    assert "3 pulses sent and the board recorded no IRQ" in a.check_isolated(no_irq, 200)[0]
    assert a.check_counts_reconcile(no_irq)  # and the counts say so too
    nothing_sent = make_obs([], [], stim=[])
    assert "nothing was tested" in a.check_isolated(nothing_sent, 200)[0]


def test_pi_ticks_leave_the_driver_unwrapped_across_a_32_bit_wrap():
    from harness.gpio.ticks import TickUnwrapper

    unwrap = TickUnwrapper()
    ticks = [0xFFFF_FF00, 0xFFFF_FFF0, 0x0000_0010, 0x0000_0100, 0x0000_00F0]
    assert [unwrap(t) for t in ticks] == [0xFFFF_FF00, 0xFFFF_FFF0, 0x1_0000_0010,
                                          0x1_0000_0100, 0x1_0000_00F0]


def test_a_wake_later_than_the_timeout_is_a_lost_wakeup_wherever_it_happens():
    # pulse 1's wake comes 8 s after its IRQ but before the next one: the old per-pulse check
    # counted it as woken; the deadline says it was lost
    obs = make_obs([0, 1000, 9_000_000], [50, 8_001_000, 9_000_050])
    assert a.check_isolated(obs, 200) == []
    fails = a.check_wake_deadline(obs, 200)
    assert len(fails) == 1 and fails[0].startswith("lost wake-up: 1 pulse(s) woke the waiter "
                                                   "later than wake_timeout_ms (200 ms)")
    assert "worst pulse 1, woken 8000 ms" in fails[0]
    assert a.check_wake_deadline(make_obs([0, 1000], [50, 1060]), 200) == []


def test_a_board_that_takes_its_irq_late_is_caught_on_the_pi_clock():
    # the IRQ itself is stamped late (the board was stopped): IRQ -> wake looks fast, the
    # stimulus -> ack edge does not
    obs = make_obs([0, 5_000_000], [50, 5_000_040], stim=[1000, 3000],
                   acks=[1055, 5_001_045])
    fails = a.check_wake_deadline(obs, 200)
    assert fails and "pulse 1, woken 4998 ms after its stimulus edge (Pi clock)" in fails[0]
    assert "its IRQ came" in fails[0]


def test_the_coalesce_busy_period_is_not_a_lost_wakeup():
    irq = [0] + [1000 + 500 * i for i in range(8)]
    obs = make_obs(irq, [50, 20_100])
    assert a.check_wake_deadline(obs, 10, busy_ms=20) == []
    assert a.check_wake_deadline(obs, 10)


def test_latency_samples_pair_by_time_so_a_missing_wake_hides_no_sample():
    obs = make_obs([0, 1000, 2000], [50, 2900])  # pulse 1's wake is missing
    s = a.latency_samples(obs)
    assert s["irq_to_wake_us"] == [50.0, 1900.0, 900.0]
    assert "max = 1900 µs exceeds the budget 1000 µs" in a.check_latency_max(obs, {"max": 1000})[0]


def test_a_scenario_cut_short_cannot_pass_and_says_whose_fault_it_is():
    ok = make_obs([0, 1000], [50, 1060])
    ok.asked, ok.wake_timeout_ms = 2, 200
    assert a.check_all_pulses_sent(ok) == [] and a.bench_shortfall(ok) == ""
    # the board stopped waking: the host gave up after 2 of 20 pulses
    missed = make_obs([0, 1000], [50], acks=[1055])
    missed.asked, missed.wake_timeout_ms = 20, 200
    missed.stopped_early = "5 pulse(s) in a row got no wake within wake_timeout_ms (200 ms)"
    assert a.check_all_pulses_sent(missed) == [
        "the scenario stopped after 2 of its 20 pulses: 5 pulse(s) in a row got no wake "
        "within wake_timeout_ms (200 ms)"]
    assert a.bench_shortfall(missed) == ""
    # every ack is stamped in time: the Pi reported them late, the board is not to blame
    late_reports = make_obs([0, 1000], [50, 1060])
    late_reports.asked, late_reports.wake_timeout_ms = 20, 200
    late_reports.stopped_early = missed.stopped_early
    assert a.check_all_pulses_sent(late_reports) == []
    assert "pigpiod reported the edges late" in a.bench_shortfall(late_reports)
    # the Pi fell short for no reason the board gave
    short = make_obs([0, 1000], [50, 1060])
    short.asked = 20
    assert a.bench_shortfall(short).startswith("the Pi sent 2 of the 20 pulses")
