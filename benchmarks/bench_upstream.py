"""MicroPython's own test runner through the virtual board vs natively: prints figures, asserts
nothing.

Takes the user's own MicroPython checkout (never downloads one) and runs its
`tests/run-tests.py` twice per test group on the same unix-port executable: natively
(`MICROPY_MICROPYTHON=<exe>`), and through a virtual board started here (SimBench, the same
bench `tsfrig sim` serves), which the runner drives over the board's serial port as a real
board, through its `tools/pyboard.py`. Prints both pass counts, the wall time of each run and
every test whose result differs. The goal: no test passes natively and fails on the board.
Also prints the soft-reset round trip as pyboard.py sees it (Ctrl-C, Ctrl-A, Ctrl-D, wait
for `soft reboot` and the raw REPL banner).

    .venv/bin/python benchmarks/bench_upstream.py --micropython ~/src/micropython
    .venv/bin/python benchmarks/bench_upstream.py --micropython DIR --group asyncio
    .venv/bin/python benchmarks/bench_upstream.py --micropython DIR --soft-resets 50 --group none
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.config import load_config  # noqa: E402
from harness.sim.bench import SimBench  # noqa: E402
from harness.sim.firmware import FirmwareNotFound, find_executable  # noqa: E402

GROUPS = {  # name: globs relative to <checkout>/tests
    "asyncio": ["extmod/asyncio_*.py"],
    "basics": ["basics/*.py"],
}
RESULT_LINE = re.compile(r"^(pass|FAIL|skip|lrge) +(\S+)")
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
# unittest as a clone with its micropython-lib submodule has it: run-tests.py puts it on the
# native path; a board needs it in its /lib (`mpremote mip install unittest`), copied here
UNITTEST = "lib/micropython-lib/python-stdlib/unittest/unittest"
USES_UNITTEST = re.compile(rb"^\s*(import|from) unittest\b", re.M)


@dataclasses.dataclass
class Run:
    results: dict[str, str]  # test -> pass | fail | skip | ignored
    seconds: float
    note: str = ""  # timed out, runner crashed ...

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results.values() if r == outcome)


def runner_style(tests_dir: Path) -> str:
    """How this run-tests.py is told about a serial board: `-t PORT` (2025 on) or
    `--target pyboard --device PORT` (older), read from its argparse."""
    text = (tests_dir / "run-tests.py").read_text(errors="replace")
    return "test-instance" if '"--test-instance"' in text else "device"


def run_tests(tests_dir: Path, files: list[str], exe: Path, port: str | None, jobs: int,
              timeout_s: float, verbose: bool) -> Run:
    """One run-tests.py invocation; natively when port is None, else through the board."""
    with tempfile.TemporaryDirectory(prefix="tsfrig-upstream-") as result_dir:
        cmd = [sys.executable, "run-tests.py", "-r", result_dir]
        if port is None:
            cmd += ["-j", str(jobs)]
        elif runner_style(tests_dir) == "test-instance":
            cmd += ["-t", port]
        else:
            cmd += ["--target", "pyboard", "--device", port]
        env = dict(os.environ, MICROPY_MICROPYTHON=str(exe), MICROPY_CPYTHON3=sys.executable)
        log = Path(result_dir) / "_stdout.txt"
        note = ""
        t0 = time.monotonic()
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd + files, cwd=tests_dir, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout_s)
                if rc not in (0, 1):
                    note = f"run-tests.py exited {rc}"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)
                note = f"run-tests.py timed out after {timeout_s:.0f} s"
        seconds = time.monotonic() - t0
        text = log.read_text(errors="replace")
        if verbose:
            print(text)
        results: dict[str, str] = {}
        for line in text.splitlines():
            m = RESULT_LINE.match(line)
            if m:
                results[m.group(2)] = {"pass": "pass", "FAIL": "fail"}.get(m.group(1), "skip")
        summary = Path(result_dir) / "_results.json"
        if summary.exists():  # the runner's own verdicts, flaky failures reclassified
            for test, outcome, *_ in json.loads(summary.read_text())["results"]:
                results[test] = outcome
        if note:
            tail = [ln for ln in text.splitlines() if ln.strip()][-3:]
            note += ": " + " | ".join(tail)
        return Run(results, seconds, note)


def expand(tests_dir: Path, globs: list[str], unittest: bool) -> tuple[list[str], list[str]]:
    """The test files, and those left out: tests that need unittest when the checkout has
    none (run-tests.py would abort the whole run at the first)."""
    files, left_out = [], []
    for g in globs:
        for p in sorted(glob.glob(str(tests_dir / g))):
            rel = os.path.relpath(p, tests_dir)
            if not unittest and USES_UNITTEST.search(Path(p).read_bytes()):
                left_out.append(rel)
            else:
                files.append(rel)
    return files, left_out


def soft_reset_round_trip(port: str, n: int) -> list[float]:
    """pyboard.py's enter_raw_repl(soft_reset=True), n times, in ms (a pyboard-style client
    written here, not upstream's)."""
    import serial

    def read_until(s: serial.Serial, ending: bytes, timeout_s: float = 10.0) -> bytes:
        buf, deadline = b"", time.monotonic() + timeout_s
        while not buf.endswith(ending):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {ending!r} from the board: {buf[-200:]!r}")
            buf += s.read(1)
        return buf

    times = []
    with serial.Serial(port, timeout=0.05) as s:
        for _ in range(n + 1):
            t0 = time.perf_counter()
            s.write(b"\r\x03")
            s.reset_input_buffer()
            s.write(b"\r\x01")
            read_until(s, RAW_BANNER + b">")
            s.write(b"\x04")
            read_until(s, b"soft reboot\r\n")
            read_until(s, RAW_BANNER)
            times.append((time.perf_counter() - t0) * 1000)
        s.write(b"\r\x02")
    return times[1:]  # the first also leaves the friendly REPL


def describe(run: Run) -> str:
    done = run.count("pass") + run.count("fail") + run.count("ignored")
    text = (f"{run.count('pass')} passed of {done} run ({run.count('fail')} failed, "
            f"{run.count('skip')} skipped) in {run.seconds:.1f} s")
    return text + (f"  [{run.note}]" if run.note else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--micropython", required=True, type=Path, metavar="DIR",
                    help="your MicroPython checkout (its tests/ and tools/ are used)")
    ap.add_argument("--executable", type=Path, default=None,
                    help="unix-port executable (default: the one the virtual board uses)")
    ap.add_argument("--group", action="append", choices=[*GROUPS, "none"],
                    help="test group(s) to run (default: asyncio and basics)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="parallel jobs for the native run (the board runs one at a time)")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds one run-tests.py invocation may take")
    ap.add_argument("--soft-resets", type=int, default=30, metavar="N",
                    help="soft-reset round trips to time through the board (0: none)")
    ap.add_argument("--verbose", action="store_true", help="print run-tests.py's output")
    args = ap.parse_args()

    tests_dir = args.micropython.expanduser().resolve() / "tests"
    if not (tests_dir / "run-tests.py").is_file() or not (tests_dir.parent / "tools").is_dir():
        print(f"bench_upstream: {tests_dir}/run-tests.py not found: --micropython takes a "
              "MicroPython checkout (with tests/ and tools/)", file=sys.stderr)
        return 2
    try:
        exe = find_executable(args.executable)
    except FirmwareNotFound as e:
        print(f"bench_upstream: {e}", file=sys.stderr)
        return 2
    groups = [g for g in (args.group or ["asyncio", "basics"]) if g != "none"]
    target = load_config(REPO / "rig_config.yaml").targets[0]
    target = dataclasses.replace(
        target, firmware=dataclasses.replace(target.firmware, executable=exe))
    version = subprocess.run([str(exe), "-c", "import sys; print(sys.version)"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    print(f"checkout: {tests_dir.parent}; executable: {exe} ({version})")
    print(f"runner: run-tests.py, serial board given as "
          f"{'-t PORT' if runner_style(tests_dir) == 'test-instance' else '--device PORT'}; "
          f"native -j {args.jobs}")

    unittest = tests_dir.parent / UNITTEST
    if not (unittest / "__init__.py").is_file():
        print(f"no {UNITTEST} in the checkout (git submodule update --init "
              "lib/micropython-lib): tests that import unittest are left out")
    missed = []
    for name in groups:
        files, left_out = expand(tests_dir, GROUPS[name], unittest.is_dir())
        native = run_tests(tests_dir, files, exe, None, args.jobs, args.timeout, args.verbose)
        with tempfile.TemporaryDirectory(prefix="tsfrig-upstream-flash-") as flash:
            if unittest.is_dir():  # the board's own copy, as `mpremote mip install` gives it
                shutil.copytree(unittest, Path(flash) / "lib" / "unittest")
            with SimBench(target, flash_dir=Path(flash)) as bench:
                board = run_tests(tests_dir, files, exe, bench.serial_port, 1, args.timeout,
                                  args.verbose)
        label = " ".join(GROUPS[name])
        print(f"\n{label} ({len(files)} files"
              + (f"; {len(left_out)} left out: {' '.join(left_out)})" if left_out else ")"))
        print(f"  native: {describe(native)}")
        print(f"  board:  {describe(board)}")
        differ = sorted(t for t in set(native.results) | set(board.results)
                        if native.results.get(t) != board.results.get(t))
        for t in differ:
            n, b = native.results.get(t, "-"), board.results.get(t, "-")
            print(f"  differs: {t}: native {n}, board {b}")
            if n == "pass" and b in ("fail", "-"):  # a board skip is the test's own choice
                missed.append(t)
        if not differ:
            print("  no test differs")
        both = sorted(t for t, r in native.results.items()
                      if r == "fail" and board.results.get(t) == "fail")
        if both:
            print(f"  fail both ways (the build's, not the board's): {' '.join(both)}")

    if args.soft_resets:
        with tempfile.TemporaryDirectory(prefix="tsfrig-upstream-flash-") as flash, \
                SimBench(target, flash_dir=Path(flash)) as bench:
            ms = sorted(soft_reset_round_trip(bench.serial_port, args.soft_resets))
        print(f"\nsoft-reset round trip, pyboard.py sequence ({len(ms)}, ms): "
              f"p50 {statistics.median(ms):.0f}, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f}, "
              f"max {ms[-1]:.0f}")
    if groups:
        print("\ngoal (no test passes natively and fails through the board): "
              + ("met" if not missed else f"NOT met: {len(missed)} ({' '.join(missed)})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
