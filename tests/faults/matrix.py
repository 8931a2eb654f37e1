"""The fault matrix's machinery: a `tsfrig run` on a simulated (or serial) bench with a fault
injected into its real processes at a chosen moment, and what came out of it (verdict, exit
code, junit.xml, processes left behind). The cases are tests/faults/cases.py's;
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

from harness.benches.sim import SimProvider
from harness.config import load_config
from tests.faults import write_broken

REPO = Path(__file__).resolve().parents[2]
# how junit.xml records each results.json outcome
JUNIT = {"passed": "passed", "failed": "failed", "error": "error", "skipped": "skipped",
         "xfailed": "skipped"}
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


def send_signal(pid: int, sig: int) -> None:
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
        send_signal(pid, signal.SIGKILL)
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
    from harness.config import with_overlay
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
