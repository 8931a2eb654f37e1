"""The fault matrix: one real fault per case, injected into real processes of a running
`tsfrig run` on the simulated bench (a killed or stopped VM, a slow-booting build, a pigpiod
that dies, stalls or never answers, a serial port that vanishes, broken firmware, SIGINT and
SIGTERM, a full disk, two targets with the first broken). Each case says the verdict, exit
code and message it must produce. tests/test_fault_matrix.py asserts them;
benchmarks/bench_faults.py prints the table with the time each verdict took."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.benches import BenchAddress
from harness.config import load_config
from harness.sim.launch import SimProvider
from tests.faults import write_broken

REPO = Path(__file__).resolve().parents[2]
TAG_VAR = "TSFRIG_FAULT_TAG"  # inherited by every process a run starts: finds orphans


@dataclass
class Outcome:
    """What one faulted run produced."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    doc: dict | None
    junit: dict[str, str]
    html: str
    leftover: list[str]  # processes of the run still alive after it exited
    temp_left: list[str]  # files the run left in its TMPDIR (but its results fallback)
    # a fault no process survives (SIGKILL of the whole group): what it left, and the next
    # run in the same TMPDIR, which must remove it (temp_left is then that run's)
    left_by_fault: list[str] = field(default_factory=list)
    next_run: Outcome | None = None
    junit_props: dict[str, str] = field(default_factory=dict)  # junit.xml suite properties
    latest: str = ""  # the run directory reports/latest points at ("" unmoved)
    run_dirs: list[str] = field(default_factory=list)  # every run directory's name
    fallback: dict | None = None  # results kept in TMPDIR when the run dir could not take them
    fallback_path: str = ""
    tmp_files: list[str] = field(default_factory=list)  # *.tmp left in the report dir

    def outcomes(self) -> dict[str, str]:
        return {t["nodeid"].split("::")[-1]: t["outcome"] for t in (self.doc or {}).get(
            "tests", [])}

    def messages(self) -> str:
        return "\n".join(t["message"] for t in (self.doc or {}).get("tests", []))


@dataclass
class Bench:
    """What a case sets up before the run: config, extra args, injection, clean-up."""

    args: list[str] = field(default_factory=list)
    on_line: Callable[[str, subprocess.Popen], None] | None = None
    on_start: Callable[[subprocess.Popen, str], None] | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    on_out: Callable[[str, subprocess.Popen], None] | None = None  # as on_line, for stdout
    own_group: bool = False  # tsfrig leads its own process group (a signal to all of it)


# ---- processes ----------------------------------------------------------------------------

def tagged(tag: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process carrying this run's tag."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes()
            if f"{TAG_VAR}={tag}".encode() not in env.split(b"\0"):
                continue
            stat = (d / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie is already dead
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(d.name), cmd.strip()))
    return found


def vm_pids(tag: str) -> list[int]:
    """The virtual board's MicroPython VM process(es) of this run."""
    return [pid for pid, cmd in tagged(tag) if "micropython" in cmd and "harness" not in cmd]


def wait_until(cond: Callable[[], object], timeout_s: float, every_s: float = 0.02) -> bool:
    """Poll a condition that has no event to wait on (a file or process appearing)."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)
    return True


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


# ---- running tsfrig -----------------------------------------------------------------------

def run_faulted(tmp: Path, bench: Bench, k: str, timeout_s: float = 240,
                tmpdir: Path | None = None) -> Outcome:
    """`tsfrig run` with this bench, injecting its fault; collect every artefact. TMPDIR is
    tmpdir, by default tmp/tmp."""
    tag = uuid.uuid4().hex
    tmpdir = tmpdir or tmp / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    report = Path(bench.args[bench.args.index("--report-dir") + 1]) \
        if "--report-dir" in bench.args else tmp / "r"  # a case's own (a small disk)
    env = {**os.environ, TAG_VAR: tag, "TMPDIR": str(tmpdir), "CI": "1", **bench.env}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--report-dir", str(report),
           "-k", k, *[a for a in bench.args if a != "--report-dir" and a != str(report)]]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=bench.own_group)
    err_lines: list[str] = []
    out: list[str] = []

    def read_err() -> None:
        for line in proc.stderr:
            err_lines.append(line)
            if bench.on_line is not None:
                bench.on_line(line, proc)

    def read_out() -> None:
        for line in proc.stdout:
            out.append(line)
            if bench.on_out is not None:
                bench.on_out(line, proc)

    readers = [threading.Thread(target=read_err, daemon=True),
               threading.Thread(target=read_out, daemon=True)]
    for r in readers:
        r.start()
    try:
        if bench.on_start is not None:
            bench.on_start(proc, tag)
        code = proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        seconds = time.monotonic() - t0
        for r in readers:
            r.join(timeout=10)
        for clean in bench.cleanups:
            clean()
    wait_until(lambda: not tagged(tag), 3.0)  # children stopping on their parent's death
    leftover = tagged(tag)
    for pid, _ in leftover:  # the test itself leaves nothing behind either way
        _signal(pid, signal.SIGKILL)
    run_dir = report / "latest"  # a killed run never moved it: then its own directory
    if not run_dir.exists():
        runs = [d for d in report.glob("*") if d.is_dir()] if report.exists() else []
        run_dir = runs[0] if len(runs) == 1 else run_dir
    doc = json.loads((run_dir / "results.json").read_text()) \
        if (run_dir / "results.json").exists() else None
    html = (run_dir / "index.html").read_text() if (run_dir / "index.html").exists() else ""
    fallbacks = sorted(tmpdir.glob("tsfrig-*-results.json"))
    junit = run_dir / "junit.xml"
    return Outcome(code, "".join(out), "".join(err_lines), seconds, doc,
                   junit_outcomes(junit), html,
                   [f"{pid} {cmd}" for pid, cmd in leftover],
                   sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*")
                          if p not in fallbacks),
                   junit_props=junit_properties(junit),
                   latest=os.readlink(report / "latest") if (report / "latest").is_symlink()
                   else "",
                   run_dirs=sorted(d.name for d in report.iterdir() if d.is_dir()
                                   and not d.is_symlink()) if report.exists() else [],
                   fallback=json.loads(fallbacks[0].read_text()) if fallbacks else None,
                   fallback_path=str(fallbacks[0]) if fallbacks else "",
                   tmp_files=sorted(str(p) for p in report.rglob("*.tmp"))
                   if report.exists() else [])


def finished_tests(stderr: str) -> set[str]:
    """The tests the run's progress lines reported finished (`... passed` and the like)."""
    return {name for name, _ in re.findall(
        r"^tsfrig: (?:\[\S+\] )?(\S+): .*?\s(passed|failed|error|xfailed)(?:: .*)?$", stderr, re.M)}


def junit_outcomes(path: Path) -> dict[str, str]:
    """testcase name -> failed / error / skipped / passed, as junit.xml says."""
    if not path.exists():
        return {}
    got = {}
    for case in ET.parse(path).getroot().iter("testcase"):  # a nameless one shows as ""
        tags = {child.tag for child in case}
        got[case.get("name", "")] = ("error" if "error" in tags else "failed"
                                     if "failure" in tags else "skipped"
                                     if "skipped" in tags else "passed")
    return got


def junit_properties(path: Path) -> dict[str, str]:
    """junit.xml's suite properties (the firmware, tsfrig.verdict, tsfrig.interrupted)."""
    if not path.exists():
        return {}
    return {p.get("name", ""): p.get("value", "")
            for p in ET.parse(path).getroot().iter("property")}


# ---- benches ------------------------------------------------------------------------------

def rig_config(tmp: Path, **replace: str) -> Path:
    """The shipped rig config with some text replaced, written to tmp."""
    text = (REPO / "rig_config.yaml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp / "rig.yaml"
    path.write_text(text)
    return path


SHORT_TIMEOUT = {"device_timeout_s: 10": "device_timeout_s: 5"}


def sim_bench(tmp: Path, overlay: str | None = None, marker: bool = False,
              **replace: str) -> tuple[Bench, Path]:
    """The default simulated bench, optionally with a firmware overlay; with marker, the
    returned path appears once the board is inside flag.wait()."""
    mark = tmp / "in_wait"
    args = ["--config", str(rig_config(tmp, **{**SHORT_TIMEOUT, **replace}))]
    if overlay:
        args += ["--overlay", str(write_broken(overlay, tmp / "overlay", mark if marker
                                               else None))]
    return Bench(args=args), mark


@contextlib.contextmanager
def serial_bench(tmp: Path, pigpio_via: list[str] | None = None, serial_via: bool = False
                 ) -> Iterator[tuple[Bench, Path, object, object]]:
    """A `tsfrig sim` (firmware marking when it is inside wait()) reached as a real bench
    (kind: serial), through proxies that faults can be injected into: pigpio_via is the
    tcp proxy mode (["tcp"] or ["silent"]), serial_via puts a pty proxy on the port."""
    from harness.config import load_config, with_overlay
    from harness.sim.launch import SimProvider
    from tests.faults.proxy import Proxy

    mark = tmp / "in_wait"
    overlay = write_broken("marks_wait", tmp / "overlay", mark)
    rig = with_overlay(load_config(REPO / "rig_config.yaml"), str(overlay))
    sim = SimProvider(rig.targets[0], rig)
    addr = sim.start()
    stack = contextlib.ExitStack()
    stack.callback(sim.stop)
    with stack:
        pigpio = f"{addr.gpio_host}:{addr.gpio_port}"
        pi_proxy = ser_proxy = None
        if pigpio_via:
            args = [*pigpio_via] + (["--to", pigpio] if pigpio_via[0] == "tcp" else [])
            pi_proxy = stack.enter_context(Proxy(*args))
            pigpio = pi_proxy.address
        port = addr.serial_port
        if serial_via:
            ser_proxy = stack.enter_context(Proxy("pty", "--to", port))
            port = ser_proxy.address
        host, _, pport = pigpio.rpartition(":")
        cfg = tmp / "bench.yaml"
        cfg.write_text(serial_target_yaml(port, host, int(pport), budgets=True))
        yield Bench(args=["--config", str(cfg)]), mark, pi_proxy, ser_proxy


# The shipped wiring and lean budgets (a 5 s device timeout), as YAML under a target.
WIRING_AND_BUDGETS = """\
  wiring:
    stimulus: {pi_gpio: 17, board_pin: 2}
    ack: {board_pin: 3, pi_gpio: 27}
  budgets:
    latency_us: {p50: 3000, p90: 30000, p99: 100000, max: 500000}
    wake_timeout_ms: 200
    device_timeout_s: 5"""


@contextlib.contextmanager
def shipped_sim() -> Iterator[BenchAddress]:
    """`tsfrig sim` on the shipped config's first target (stimulus GPIO17 -> pin 2, pin 3 ->
    ack GPIO27), for a serial target to point at; stopped afterwards."""
    rig = load_config(REPO / "rig_config.yaml")
    sim = SimProvider(rig.targets[0], rig)
    address = sim.start()
    try:
        yield address
    finally:
        sim.stop()


def serial_target_yaml(port: str, host: str, gpio_port: int, stim_pin: int = 2,
                       ack_pin: int = 3, budgets: bool = False) -> str:
    """A rig config with one real-bench target (kind: serial) on this port and pigpiod."""
    wiring = WIRING_AND_BUDGETS.replace("board_pin: 2}", f"board_pin: {stim_pin}}}") \
        .replace("{board_pin: 3,", f"{{board_pin: {ack_pin},")
    if not budgets:
        wiring = wiring.split("\n  budgets:")[0]
    body = "\n".join("  " + line for line in wiring.splitlines())
    return (f"version: 1\ntargets:\n  - name: bench\n    kind: serial\n"
            f"    serial: {{port: {port}}}\n    pigpio: {{host: {host}, port: {gpio_port}}}\n"
            f"{body}\n")


def when(cond: Callable[[str], object], act: Callable[[str], None],
         timeout_s: float = 60) -> Callable:
    """on_start hook: once cond(tag) holds while the run goes on, do act(tag)."""
    def start(proc: subprocess.Popen, tag: str) -> None:
        def watch() -> None:
            if wait_until(lambda: cond(tag) or proc.poll() is not None, timeout_s) \
                    and proc.poll() is None:
                act(tag)
        threading.Thread(target=watch, daemon=True).start()
    return start


def when_marked(mark: Path, act: Callable[[str], None]) -> Callable:
    """on_start hook: once the board is inside wait() (mid-scenario), do act(tag)."""
    return when(lambda _tag: mark.exists(), act)


def on_progress(pattern: str, act: Callable[[subprocess.Popen], None]) -> Callable:
    """on_line hook: the first progress line matching pattern triggers act(proc)."""
    fired = threading.Event()

    def line(text: str, proc: subprocess.Popen) -> None:
        if not fired.is_set() and re.search(pattern, text):
            fired.set()
            act(proc)
    return line


def slow_boot_executable(tmp: Path, slow_boot: int, seconds: float) -> Path:
    """A firmware build whose `slow_boot`-th boot takes `seconds` (then boots normally)."""
    from harness.sim.firmware import find_executable

    real = find_executable(None)
    exe = tmp / "slow-micropython"
    exe.write_text(f"""#!/bin/sh
n=$(($(cat {tmp}/boots 2>/dev/null || echo 0) + 1))
echo $n > {tmp}/boots
[ "$n" -eq {slow_boot} ] && sleep {seconds}
exec {real} "$@"
""")
    exe.chmod(0o755)
    return exe


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
        _signal(pid, signal.SIGKILL)


def _stop_vm_for(seconds: float, bench: Bench) -> Callable[[str], None]:
    def act(tag: str) -> None:
        pids = vm_pids(tag)
        for pid in pids:
            _signal(pid, signal.SIGSTOP)
        timer = threading.Timer(seconds, lambda: [_signal(p, signal.SIGCONT) for p in pids])
        timer.start()
        bench.cleanups.append(timer.cancel)
        bench.cleanups.append(lambda: [_signal(p, signal.SIGCONT) for p in pids])
    return act


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
    def act(tag: str) -> None:
        pids = [pid for pid, cmd in tagged(tag) if "harness.cli sim" in cmd]
        for pid in pids:
            _signal(pid, signal.SIGSTOP)
        timer = threading.Timer(seconds, lambda: [_signal(p, signal.SIGCONT) for p in pids])
        timer.start()
        bench.cleanups.append(timer.cancel)
        bench.cleanups.append(lambda: [_signal(p, signal.SIGCONT) for p in pids])
    return act


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
               r"behind\))(.|\n)*the scenario "
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
