"""Usage errors, selections and leftovers, each as a user meets them: bisect-step's usage
errors (exit 128, nothing built), compare and trend of a full run against a `-k` run and of a
run against itself, `tsfrig sim` on a busy port, and the fault matrix's two SIGKILL rows (the
run alone; its whole process group, then the next run). Prints one row each: outcome | exit |
seconds | left behind. Asserts nothing (tests/suite/test_bisect.py, test_compare.py,
test_trend.py, test_cli_input.py and test_fault_matrix.py do).

    .venv/bin/python benchmarks/bench_usage_and_leftovers.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.faults.cases import CASES  # noqa: E402
from tests.suite.test_bisect import USAGE_ERRORS  # noqa: E402


def listing(d: Path | str) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in Path(d).rglob("*"))


def cli(args: list[str], tmp: Path | str, cwd: Path = REPO
        ) -> tuple[subprocess.CompletedProcess, float]:
    """`tsfrig ARGS` with TMPDIR=tmp: what it said and how long it took."""
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TMPDIR": str(tmp)})
    return r, time.monotonic() - t0


def matrix_rows() -> list[tuple]:
    rows = []
    for name in ("sigkill", "sigkill_process_group"):
        with tempfile.TemporaryDirectory(prefix="tsfrig-bench-") as t:
            out, _ = CASES[name](Path(t))
            left = f"procs {len(out.leftover)}, temp {len(out.temp_left)}"
            if out.next_run is not None:
                dirs = [p for p in out.left_by_fault if "/" not in p]
                left += (f"; the kill left {dirs}; the next run (exit {out.next_run.code}, "
                         f"{out.next_run.seconds:.1f} s) removed it")
            rows.append((f"matrix {name}", (out.doc or {}).get("verdict"), out.code,
                         out.seconds, left))
    return rows


def busy_port_rows() -> list[tuple]:
    rows = []
    for daemon in ("pigpio", "rgpio"):
        with socket.socket() as s, tempfile.TemporaryDirectory(prefix="tsfrig-bench-") as t:
            s.bind(("127.0.0.1", 0))
            s.listen()
            r, sec = cli(["sim", f"--{daemon}-port", str(s.getsockname()[1])], t)
            rows.append((f"tsfrig sim --{daemon}-port <busy>", r.stderr.strip(), r.returncode,
                         sec, f"temp {listing(t)}"))
    return rows


def bisect_rows() -> list[tuple]:
    rows = []
    for case, argv in sorted(USAGE_ERRORS.items()):
        with tempfile.TemporaryDirectory(prefix="tsfrig-bench-") as t:
            tp = Path(t)
            (tp / "bad.yaml").write_text("version: 1\ntargets: [{name: sim, bogus_key: 1}]\n")
            (tp / "file").write_text("")
            before = set(listing(tp))
            r, sec = cli(["bisect-step", "--build", f"touch {tp}/built", *argv], tp, cwd=tp)
            rows.append((f"bisect-step {case}", r.stderr.strip()[:110], r.returncode, sec,
                         f"new files {sorted(set(listing(tp)) - before)}"))
    return rows


def selection_rows() -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tsfrig-bench-") as t:
        tp = Path(t)
        r, sec = cli(["run", "--report-dir", str(tp / "full")], tp)
        rows.append(("tsfrig run, whole suite (BASE)", "", r.returncode, sec, ""))
        r, sec = cli(["run", "-k", "test_wake and hard", "--report-dir", str(tp / "k")], tp)
        rows.append(("tsfrig run -k 'test_wake and hard' (NEW)", "", r.returncode, sec, ""))
        base, new = (tp / "full" / "latest").resolve(), tp / "k" / "latest"
        r, sec = cli(["compare", str(base), str(new), "--out", str(tp / "c.html")], tp)
        said = r.stdout.splitlines()
        counts = {kind: sum(x.startswith(kind) for x in said)
                  for kind in ("INCOMPLETE", "not selected")}
        rows.append(("compare BASE NEW", said[-1], r.returncode, sec, f"lines {counts}"))
        r, sec = cli(["compare", str(new), str(new.resolve()), "--out", str(tp / "c2.html")], tp)
        said = r.stdout.splitlines()
        rows.append(("compare NEW NEW (latest, its run dir)", f"{said[0][:80]} | {said[-1]}",
                     r.returncode, sec, ""))
        r, sec = cli(["trend", str(base), str(new.resolve()), "--out", str(tp / "tr")], tp)
        page = (tp / "tr" / "trend.html").read_text()
        items = {kind: page.count(f'data-kind="{kind}"') for kind in ("INCOMPLETE",
                                                                       "not selected")}
        rows.append(("trend BASE NEW", r.stdout.splitlines()[-1], r.returncode, sec,
                     f"listed {items}"))
        left = [p for p in os.listdir(tp) if p.startswith("tsfrig-")]
        rows.append(("TMPDIR after these runs", "", 0, 0.0, str(left)))
    return rows


def main() -> None:
    print("| case | outcome | exit | seconds | left behind |")
    for rows in (matrix_rows, busy_port_rows, bisect_rows, selection_rows):
        for name, outcome, code, sec, left in rows():
            print(f"| {name} | {outcome} | {code} | {sec:.2f} | {left} |", flush=True)


if __name__ == "__main__":
    main()
