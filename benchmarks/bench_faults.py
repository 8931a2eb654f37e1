"""Fault matrix figures: for each injected fault, the verdict, exit code, seconds to verdict,
processes left and data lost; then the time to verdict of the whole suite on a build whose
flag raises on every wait, and on one whose VM then also segfaults. Prints, asserts nothing
(the matrix's assertions are tests/faults/test_fault_matrix.py).

    .venv/bin/python benchmarks/bench_faults.py [--no-suite] [CASE ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults.cases import CASES  # noqa: E402
from tests.faults.matrix import finished_tests, run_faulted, sim_bench  # noqa: E402


def data_lost(out) -> int:
    """Tests the run reported as finished on its progress lines but no results file kept
    (results.json, or the fallback a full disk's error names)."""
    kept = set(out.outcomes()) | {t["nodeid"].split("::")[-1]
                                  for t in (out.fallback or {}).get("tests", [])}
    return len(finished_tests(out.stderr) - kept)


def main(names: list[str], no_suite: bool = False) -> None:
    print(f"{'fault':32} {'verdict':12} {'exit':>4} {'s to verdict':>12} {'procs left':>10} "
          f"{'files left':>10} {'data lost':>9}  first message")
    for name in names or sorted(CASES):
        with tempfile.TemporaryDirectory(prefix="tsfrig-bench-") as tmp:
            out, want = CASES[name](Path(tmp))
            verdict = (out.fallback or out.doc or {}).get("verdict", "(none)")
            msgs = [t["message"] for t in (out.doc or {}).get("tests", []) if t["message"]]
            first = (msgs[0] if msgs else out.stderr.strip().splitlines()[-1:] or [""])
            first = first if isinstance(first, str) else first[0]
            ok = "" if (out.code == want.code and verdict in (want.verdict, "(none)")) \
                else "  <-- UNEXPECTED"
            print(f"{name:32} {verdict:12} {out.code:>4} {out.seconds:>12.1f} "
                  f"{len(out.leftover):>10} {len(out.temp_left) + len(out.tmp_files):>10} "
                  f"{data_lost(out):>9}  {first[:90]}{ok}")
    if no_suite:
        return
    print()
    for build, what in WHOLE_SUITE.items():
        with tempfile.TemporaryDirectory(prefix="tsfrig-bench-") as tmp:
            bench, _ = sim_bench(Path(tmp), build,
                                 **{"device_timeout_s: 10": "device_timeout_s: 10"})
            t0 = time.monotonic()
            out = run_faulted(Path(tmp), bench, "test_", timeout_s=900)
            n = len(out.outcomes())
            print(f"whole suite on a build {what}: {n} tests, "
                  f"verdict {(out.doc or {}).get('verdict')}, exit {out.code}, "
                  f"{time.monotonic() - t0:.1f} s to verdict")


# broken builds (tests/faults) whose whole-suite time to verdict is measured
WHOLE_SUITE = {
    "wait_raises_at_once": "whose flag raises on every wait",
    "ioctl_none_segfaults": "whose flag raises on every wait and whose VM then segfaults "
                            "(cfe6a11e39 reverted)",
}


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if a != "--no-suite"], "--no-suite" in sys.argv[1:])
