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
    temp_left: list[str]  # files the run left in its TMPDIR

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

def run_faulted(tmp: Path, bench: Bench, k: str, timeout_s: float = 240) -> Outcome:
    """`tsfrig run` with this bench, injecting its fault; collect every artefact."""
    tag = uuid.uuid4().hex
    tmpdir = tmp / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    report = tmp / "r"
    env = {**os.environ, TAG_VAR: tag, "TMPDIR": str(tmpdir), "CI": "1"}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--report-dir", str(report),
           "-k", k, *bench.args]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    out: list[str] = []

    def read_err() -> None:
        for line in proc.stderr:
            err_lines.append(line)
            if bench.on_line is not None:
                bench.on_line(line, proc)

    readers = [threading.Thread(target=read_err, daemon=True),
               threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)]
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
    return Outcome(code, "".join(out), "".join(err_lines), seconds, doc,
                   junit_outcomes(run_dir / "junit.xml"), html,
                   [f"{pid} {cmd}" for pid, cmd in leftover],
                   sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*")))


def junit_outcomes(path: Path) -> dict[str, str]:
    """testcase name -> failed / error / skipped / passed, as junit.xml says."""
    if not path.exists():
        return {}
    got = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        if not case.get("name"):
            continue  # pytest's placeholder for the test a signal cut short: never ran
        tags = {child.tag for child in case}
        got[case.get("name", "")] = ("error" if "error" in tags else "failed"
                                     if "failure" in tags else "skipped"
                                     if "skipped" in tags else "passed")
    return got


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
    return out, Expect("error", 2, r"pigpiod at .* failed to", passed_after=True)


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
def sigkill(tmp: Path) -> tuple[Outcome, Expect]:
    """Nothing can be said after SIGKILL: the run must not read as a pass, and its bench
    processes must still go (they are told when their parent dies)."""
    bench, _ = sim_bench(tmp)
    bench.on_line = on_progress(r"\bpassed$", lambda proc: proc.send_signal(signal.SIGKILL))
    return run_faulted(tmp, bench, "hard"), Expect("incomplete", -9, "")


@case
def report_dir_on_full_disk(tmp: Path) -> tuple[Outcome, Expect]:
    disk = tmp / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                   check=True, capture_output=True)
    try:
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        bench, _ = sim_bench(tmp)
        bench.args += ["--report-dir", str(disk / "reports")]
        out = run_faulted(tmp, bench, "test_wake and hard")
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    return out, Expect("error", 2, r"^tsfrig: --report-dir .*No space left on device")


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
