"""The fault matrix's cases: one real fault per case, injected into real processes of a
running `tsfrig run` on the simulated bench (a killed or stopped VM, a slow-booting build, a
pigpiod that dies, stalls or never answers, a serial port that vanishes, broken firmware,
SIGINT and SIGTERM, a full disk, two targets with the first broken), each with the verdict,
exit code and message it must produce. tests/faults/matrix.py runs them;
tests/faults/test_fault_matrix.py asserts them; benchmarks/bench_faults.py prints the table."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.faults.matrix import (
    WIRING_AND_BUDGETS,
    Bench,
    Outcome,
    on_progress,
    run_faulted,
    send_signal,
    serial_bench,
    sim_bench,
    slow_boot_executable,
    tagged,
    vm_pids,
    when,
    when_marked,
)

# ---- the cases ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    verdict: str  # results.json verdict
    code: int  # exit code
    message: str  # regex found in a test's message or on stderr
    passed_after: bool = False  # some test after the faulted one still passed
    swept: bool = False  # the fault leaves temp files no process can remove: the next run does
    wrong: str = ""  # regex of a cause or fix that would point the wrong way: must not appear
    # seconds to verdict it must stay under: only bounds far above the measured time, that
    # catch a regression in kind (a recovery timeout per test) and not a slow machine
    within_s: float | None = None


FIRMWARE_K = "hard and (test_wake or test_auto_reset)"
Case = Callable[[Path], tuple[Outcome, Expect]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def _firmware_case(name: str, message: str) -> Case:
    def run(tmp: Path) -> tuple[Outcome, Expect]:
        bench, _ = sim_bench(tmp, name)
        return run_faulted(tmp, bench, FIRMWARE_K), Expect("fail", 1, message)
    run.__name__ = f"firmware_{name}"
    return run


for _name, _message in {
    "import_raises": r"board raised ImportError: asyncio: this build's asyncio fails",
    "ctor_raises": r"board raised RuntimeError: ThreadSafeFlag: no free event slot",
    "wait_raises_at_once": r"board raised ValueError: wait: flag state corrupt",
    "wait_raises_after_wakes": r"board raised ValueError: wait: flag state corrupt after 3",
    "poll_path_typeerror": r"board crashed or reset during the scenario|board raised TypeError",
    "wait_busy_loops": r"board stopped answering.*got it back",
}.items():
    case(_firmware_case(_name, _message))


@case
def firmware_raises_then_segfaults(tmp: Path) -> tuple[Outcome, Expect]:
    """The whole suite on a build whose every wait() raises and whose VM then segfaults
    (cfe6a11e39 reverted): each result leads with the TypeError and names the crash, and
    the verdict comes fast (fail fast; a soft reset right after the crash-reboot works)."""
    bench, _ = sim_bench(tmp, "ioctl_none_segfaults",
                         **{"device_timeout_s: 10": "device_timeout_s: 10"})
    return run_faulted(tmp, bench, "test_"), Expect(
        "fail", 1, r"^board raised TypeError: can't convert NoneType to int .*; then it "
                   r"crashed: SIGSEGV \('virtual board: the MicroPython VM crashed \(SIGSEGV\)",
        within_s=120)


def _kill_vm(tag: str) -> None:
    for pid in vm_pids(tag):
        send_signal(pid, signal.SIGKILL)


def _stop_for(seconds: float, bench: Bench,
              pids_of: Callable[[str], list[int]]) -> Callable[[str], None]:
    """SIGSTOP the run's processes pids_of(tag) names for `seconds`, then SIGCONT (also at
    the bench's clean-up, should the run end first)."""
    def act(tag: str) -> None:
        pids = pids_of(tag)
        for pid in pids:
            send_signal(pid, signal.SIGSTOP)
        timer = threading.Timer(seconds, lambda: [send_signal(p, signal.SIGCONT) for p in pids])
        timer.start()
        bench.cleanups.append(timer.cancel)
        bench.cleanups.append(lambda: [send_signal(p, signal.SIGCONT) for p in pids])
    return act


def _stop_vm_for(seconds: float, bench: Bench) -> Callable[[str], None]:
    return _stop_for(seconds, bench, vm_pids)


@case
def vm_killed_mid_scenario(tmp: Path) -> tuple[Outcome, Expect]:
    bench, mark = sim_bench(tmp, "marks_wait", marker=True)
    bench.on_start = when_marked(mark, _kill_vm)
    return run_faulted(tmp, bench, "hard and (test_wake or test_latency)"), \
        Expect("fail", 1, r"board crashed: SIGKILL \('virtual board: .*got it back",
               passed_after=True)


@case
def vm_stopped_15s_mid_scenario(tmp: Path) -> tuple[Outcome, Expect]:
    bench, mark = sim_bench(tmp, "marks_wait", marker=True)
    bench.on_start = when_marked(mark, _stop_vm_for(15, bench))
    return run_faulted(tmp, bench, "hard and (test_wake or test_latency)"), \
        Expect("fail", 1, r"board stopped answering.*got it back", passed_after=True)


@case
def vm_stopped_15s_in_bring_up(tmp: Path) -> tuple[Outcome, Expect]:
    """Stopped as the bring-up's first soft reboot starts its VM: the bring-up recovers it."""
    bench, _ = sim_bench(tmp)
    seen: set[int] = set()

    def second_vm(tag: str) -> bool:
        seen.update(vm_pids(tag))
        return len(seen) >= 2
    bench.on_start = when(second_vm, _stop_vm_for(15, bench))
    return run_faulted(tmp, bench, "test_wake and hard"), Expect("pass", 0, "")


@case
def vm_stopped_15s_in_upload(tmp: Path) -> tuple[Outcome, Expect]:
    """Stopped once the upload's first file is on its flash: the upload goes mute, and the
    bring-up recovers the board and sends the files again (CI once saw this as a bench
    fault, when the row above stopped the VM late on a loaded machine)."""
    bench, _ = sim_bench(tmp)

    def uploading(tag: str) -> bool:
        return any((Path(f"/proc/{pid}/cwd") / "tsf_clock.py").exists()
                   for pid in vm_pids(tag))
    bench.on_start = when(uploading, _stop_vm_for(15, bench))
    return run_faulted(tmp, bench, "test_wake and hard"), Expect("pass", 0, "")


@case
def vm_slow_to_boot(tmp: Path) -> tuple[Outcome, Expect]:
    exe = slow_boot_executable(tmp, slow_boot=3, seconds=7)
    bench, _ = sim_bench(tmp, **{"executable: auto": f"executable: {exe}",
                                 "device_timeout_s: 10": "device_timeout_s: 10"})
    return run_faulted(tmp, bench, "hard and (test_wake or test_auto_reset)"), \
        Expect("pass", 0, "")


@case
def pigpiod_killed(tmp: Path) -> tuple[Outcome, Expect]:
    with serial_bench(tmp, pigpio_via=["tcp"]) as (bench, mark, pi_proxy, _):
        bench.on_start = when_marked(mark, lambda _tag: pi_proxy.kill())
        out = run_faulted(tmp, bench, "hard and (test_wake or test_latency)")
    return out, Expect("error", 2, r"bench fault \(not a firmware verdict\): pigpiod at ")


@case
def pigpiod_silent(tmp: Path) -> tuple[Outcome, Expect]:
    with serial_bench(tmp, pigpio_via=["silent"]) as (bench, _, _, _):
        out = run_faulted(tmp, bench, "test_wake and hard")
    return out, Expect("error", 2, r"pigpiod at .* did not answer within 5 s")


@case
def pigpiod_stalled_7s(tmp: Path) -> tuple[Outcome, Expect]:
    with serial_bench(tmp, pigpio_via=["tcp"]) as (bench, mark, pi_proxy, _):
        def stall(_tag: str) -> None:
            pi_proxy.stop()
            timer = threading.Timer(7, pi_proxy.cont)
            timer.start()
            bench.cleanups.append(timer.cancel)
        bench.on_start = when_marked(mark, stall)
        out = run_faulted(tmp, bench, "hard and (test_wake or test_auto_reset or test_latency)")
    return out, Expect("error", 2, r"pigpiod at .* (failed to|stalled)", passed_after=True)


@case
def serial_port_vanishes(tmp: Path) -> tuple[Outcome, Expect]:
    with serial_bench(tmp, serial_via=True) as (bench, mark, _, ser_proxy):
        bench.on_start = when_marked(mark, lambda _tag: ser_proxy.kill())
        out = run_faulted(tmp, bench, "hard and (test_wake or test_latency)")
    return out, Expect("error", 2, r"serial link to the board lost")


def _interrupt(sig: signal.Signals) -> Case:
    def run(tmp: Path) -> tuple[Outcome, Expect]:
        bench, _ = sim_bench(tmp)
        bench.on_line = on_progress(r"\bpassed$", lambda proc: proc.send_signal(sig))
        return run_faulted(tmp, bench, "hard"), \
            Expect("interrupted", 128 + sig, r"interrupted by " + sig.name)
    run.__name__ = sig.name.lower()
    return run


case(_interrupt(signal.SIGINT))
case(_interrupt(signal.SIGTERM))


@case
def sigterm_mid_test(tmp: Path) -> tuple[Outcome, Expect]:
    """SIGTERM while the second test's board is inside wait(): that test is in no artefact
    (pytest's junit.xml had a nameless `<testcase/>` for it)."""
    bench, mark = sim_bench(tmp, "marks_wait", marker=True)
    runs: list[subprocess.Popen] = []

    def first_passed(text: str, proc: subprocess.Popen) -> None:
        if not runs and re.search(r"\bpassed$", text):
            mark.unlink(missing_ok=True)  # the next mark is the second test's wait()
            runs.append(proc)
    bench.on_line = first_passed
    bench.on_start = when(lambda _tag: runs and mark.exists(),
                          lambda _tag: runs[0].send_signal(signal.SIGTERM))
    return run_faulted(tmp, bench, "hard and (test_wake or test_auto_reset)"), \
        Expect("interrupted", 143, r"interrupted by SIGTERM")


@case
def sigterm_parallel_process_group(tmp: Path) -> tuple[Outcome, Expect]:
    """`--parallel`, and SIGTERM to the whole process group (as `timeout` or a CI runner
    sends it): the sim dies with the worker, whose GPIO client must still close quietly."""
    bench, _ = sim_bench(tmp)
    bench.args.append("--parallel")
    bench.own_group = True
    bench.on_line = on_progress(r"\bpassed$",
                                lambda proc: os.killpg(proc.pid, signal.SIGTERM))
    return run_faulted(tmp, bench, "hard"), \
        Expect("interrupted", 143, r"interrupted by SIGTERM")


@case
def sigkill(tmp: Path) -> tuple[Outcome, Expect]:
    """Nothing can be said after SIGKILL: the run must not read as a pass, and its bench
    processes must still go (they are told when their parent dies)."""
    bench, _ = sim_bench(tmp)
    bench.on_line = on_progress(r"\bpassed$", lambda proc: proc.send_signal(signal.SIGKILL))
    return run_faulted(tmp, bench, "hard"), Expect("incomplete", -9, "")


def _mounted_tmpfs(path: Path, size: str) -> Callable[[], None]:
    """A small tmpfs at path (the test runs as root, as CI does); returns its unmount."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                   check=True, capture_output=True)
    return lambda: subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(disk: Path) -> None:
    """Take every free byte of the disk."""
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()


@case
def sigkill_process_group(tmp: Path) -> tuple[Outcome, Expect]:
    """SIGKILL of the whole process group, as `timeout -s KILL` or a cancelled CI job send:
    the simulated bench dies with the run, so nothing can remove its flash directory then
    (the sigkill case above kills tsfrig alone, and the bench, told of its parent's death,
    cleans up). The next run in the same TMPDIR must remove it, and pass."""
    bench, _ = sim_bench(tmp)
    bench.own_group = True
    bench.on_line = on_progress(r"\bpassed$", lambda proc: os.killpg(proc.pid, signal.SIGKILL))
    out = run_faulted(tmp, bench, "hard")
    (tmp / "next").mkdir()
    nxt = run_faulted(tmp / "next", Bench(args=list(bench.args)), "test_wake and hard",
                      tmpdir=tmp / "tmp")
    out.left_by_fault, out.temp_left, out.next_run = out.temp_left, nxt.temp_left, nxt
    out.leftover += nxt.leftover
    return out, Expect("incomplete", -9, "", swept=True)


@case
def report_dir_on_full_disk(tmp: Path) -> tuple[Outcome, Expect]:
    disk = tmp / "disk"
    unmount = _mounted_tmpfs(disk, "256k")
    try:
        _fill(disk)
        bench, _ = sim_bench(tmp)
        bench.args += ["--report-dir", str(disk / "reports")]
        out = run_faulted(tmp, bench, "test_wake and hard")
    finally:
        unmount()
    return out, Expect("error", 2, r"^tsfrig: --report-dir .*No space left on device")


@case
def report_dir_fills_mid_run(tmp: Path) -> tuple[Outcome, Expect]:
    """The disk fills up after the second test: every finished test is kept in TMPDIR, the
    error names that file and what was not written, no temp file stays."""
    disk = tmp / "disk"
    unmount = _mounted_tmpfs(disk, "2m")
    try:
        bench, _ = sim_bench(tmp)
        bench.args += ["--report-dir", str(disk / "reports")]
        bench.on_line = on_progress(r"test_auto_reset\[sim-hard\].*\bpassed$",
                                    lambda _proc: _fill(disk))
        out = run_faulted(tmp, bench, "hard and (test_wake or test_auto_reset or "
                          "test_pending_set or test_clear_discards)")
    finally:
        unmount()
    return out, Expect("error", 2, r"^tsfrig: not written to \S+: results\.json \(No space "
                       r"left on device\).*; every result \(\d+ tests\) and the verdict are "
                       r"in \S+tsfrig-\S+-results\.json$")


# The steps of writing a finished run's files (harness.interrupts.step): a signal at each.
WRITE_STEPS = ("results", "junit", "index", "rename", "report", "latest")


def _signal_in_write(step: str, sig: signal.Signals) -> Case:
    def run(tmp: Path) -> tuple[Outcome, Expect]:
        from harness.interrupts import STEP_VAR

        bench, _ = sim_bench(tmp)
        bench.env[STEP_VAR] = step
        bench.on_line = on_progress(rf"^tsfrig-test: at {step}$",
                                    lambda proc: proc.send_signal(sig))
        return run_faulted(tmp, bench, "test_wake and hard"), \
            Expect("interrupted", 128 + sig, rf"interrupted by {sig.name}")
    run.__name__ = f"{sig.name.lower()}_writing_{step}"
    return run


for _i, _step in enumerate(WRITE_STEPS):
    case(_signal_in_write(_step, (signal.SIGTERM, signal.SIGINT)[_i % 2]))


@case
def two_targets_first_broken(tmp: Path) -> tuple[Outcome, Expect]:
    broken = tmp / "not-a-micropython"
    broken.write_text("#!/bin/sh\necho 'this firmware image is corrupt' >&2\nexit 1\n")
    broken.chmod(0o755)
    cfg = tmp / "two.yaml"
    cfg.write_text(f"""\
version: 1
defaults:
  kind: sim
{WIRING_AND_BUDGETS}
targets:
  - name: broken
    firmware: {{executable: {broken}}}
  - name: good
""")
    out = run_faulted(tmp, Bench(args=["--config", str(cfg)]), "test_wake and hard")
    return out, Expect("error", 2, r"target broken: simulated bench did not start: tsfrig: the "
                       r"virtual board did not boot: .* exited before reaching its prompt",
                       passed_after=True)


# ---- stalls that must not pass, absurd settings, fixes that name the likely cause --------

def _stop_sim_for(seconds: float, bench: Bench) -> Callable[[str], None]:
    """SIGSTOP the simulated bench process (the simulated Pi with its pigpiod, and the
    board's serial bridge) for `seconds`: a Pi host that stalls."""
    return _stop_for(seconds, bench,
                     lambda tag: [pid for pid, cmd in tagged(tag) if "harness.cli sim" in cmd])


TEN_S = {"device_timeout_s: 10": "device_timeout_s: 10"}  # the board answers after an 8 s stall


@case
def vm_stopped_8s_in_stress(tmp: Path) -> tuple[Outcome, Expect]:
    """The board stalls 8 s mid-stress but answers in the end: its wakes 8 s late are lost
    wake-ups (beyond wake_timeout_ms), never a pass."""
    bench, mark = sim_bench(tmp, "marks_wait", marker=True, **TEN_S)
    bench.on_start = when_marked(mark, _stop_vm_for(8, bench))
    return run_faulted(tmp, bench, "test_stress and hard"), \
        Expect("fail", 1, r"^stress \[hard\] on sim: lost wake-up: \d+ pulse\(s\) woke the "
               r"waiter later than wake_timeout_ms \(\d+ ms\); worst pulse \d+, woken \d{4} ms")


@case
def vm_stopped_8s_in_wake(tmp: Path) -> tuple[Outcome, Expect]:
    """The board stalls 8 s among isolated pulses: the host stops after 5 unanswered pulses,
    so the scenario did not do what it set out to; the board's fault, and it cannot pass."""
    bench, mark = sim_bench(tmp, "marks_wait", marker=True, **TEN_S)
    bench.on_start = when_marked(mark, _stop_vm_for(8, bench))
    return run_faulted(tmp, bench, "test_wake and hard"), \
        Expect("fail", 1, r"^wake \[hard\] on sim: (lost wake-up|IRQ count|\d+ of \d+ pulses "
               r"reached the IRQ handler only after the scenario had ended \(the board fell "
               r"behind\)|pulse \d+: IRQ at \+\d+ µs \(\d+ ms after its edge: the board "
               r"stalled)(.|\n)*the scenario "
               r"stopped after \d+ of its 20 pulses: 5 pulse\(s\) in a row got no wake")


@case
def simulated_pi_stopped_8s_in_stress(tmp: Path) -> tuple[Outcome, Expect]:
    """The simulated Pi (pigpiod and the board's bridge) stalls 8 s: a bench fault that says
    pigpiod stalled, not 'check the stimulus GPIO is free' and never the firmware's hang."""
    bench, mark = sim_bench(tmp, "marks_wait", marker=True, **TEN_S)
    bench.on_start = when_marked(mark, _stop_sim_for(8, bench))
    return run_faulted(tmp, bench, "test_stress and hard"), \
        Expect("error", 2, r"^bench fault \(not a firmware verdict\): .*(pigpiod.* stalled|the "
               r"board and the Pi went silent together)", wrong=r"GPIO is free|jumper")


@case
def injected_irq_latency_1s(tmp: Path) -> tuple[Outcome, Expect]:
    """The sim's injected IRQ latency at its sane maximum (1 s): wiring is fine, every wake
    is late, and the cause said is the board's late interrupts, not the jumper or ground."""
    bench, _ = sim_bench(tmp, **{"irq_latency_us: 0 ": "irq_latency_us: 1000000 "})
    return run_faulted(tmp, bench, "test_wake and hard"), \
        Expect("fail", 1, r"^wake \[hard\] on sim: lost wake-up: .*its IRQ came \d+ ms after "
               r"the edge \(the board stalled, or takes its interrupts late\)",
               wrong=r"jumper|shared ground")


def _absurd_setting(name: str, old: str, new: str, message: str) -> Case:
    def run(tmp: Path) -> tuple[Outcome, Expect]:
        bench, _ = sim_bench(tmp, **{old: new})
        return run_faulted(tmp, bench, "test_wake and hard"), Expect("error", 2, message)
    run.__name__ = f"config_{name}"
    return run


for _name, _old, _new, _message in (
    ("wake_timeout_sub_microsecond", "wake_timeout_ms: 500", "wake_timeout_ms: 0.000001",
     r"^tsfrig: rig\.yaml:\d+: targets\[0\]\.budgets\.wake_timeout_ms: expected a number "
     r"from 1 to 60000 ms, got 1e-06$"),
    ("irq_latency_1e12", "irq_latency_us: 0 ", "irq_latency_us: 1000000000000 ",
     r"^tsfrig: rig\.yaml:\d+: targets\[0\]\.irq_latency_us: expected an integer from 0 to "
     r"1000000 µs, got 1000000000000$"),
    ("device_timeout_1e9", "device_timeout_s: 10", "device_timeout_s: 1000000000",
     r"^tsfrig: rig\.yaml:\d+: targets\[0\]\.budgets\.device_timeout_s: expected a number "
     r"from 1 to 600 s, got 1000000000$"),
):
    case(_absurd_setting(_name, _old, _new, _message))
