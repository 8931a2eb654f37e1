"""20 signals in the window where a finished run's files are written: SIGINT and SIGTERM at
each step of the write (the test hook TSFRIG_SIGNAL_AT holds the writer there until the
signal lands), then 8 more at spread delays after pytest's `[100%]`, with no hook. Prints
one row per signal: what each artefact says. Asserts nothing (the fault matrix's
`*_writing_*` cases do).

    .venv/bin/python benchmarks/bench_signals.py [--delays: only the 8 delayed ones]
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.interrupts import STEP_VAR  # noqa: E402
from tests.faults.cases import WRITE_STEPS  # noqa: E402
from tests.faults.matrix import on_progress, run_faulted, sim_bench  # noqa: E402

DELAYS_S = (0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.2, 0.25)


def one(sig: signal.Signals, step: str | None, delay_s: float) -> str:
    with tempfile.TemporaryDirectory(prefix="tsfrig-bench-") as tmp:
        bench, _ = sim_bench(Path(tmp))
        if step is not None:
            bench.env[STEP_VAR] = step
            bench.on_line = on_progress(rf"^tsfrig-test: at {step}$",
                                        lambda proc: proc.send_signal(sig))
        else:
            bench.env["PYTHONUNBUFFERED"] = "1"  # pytest's progress line as it is printed
            bench.on_out = on_progress(r"\[100%\]$", lambda proc: threading.Timer(
                delay_s, lambda: proc.poll() is None and proc.send_signal(sig)).start())
        out = run_faulted(Path(tmp), bench, "test_wake and hard")
    doc = out.doc or {}
    where = f"at {step}" if step else f"+{delay_s:.2f} s after [100%]"
    junit = out.junit_props.get("tsfrig.verdict", "-")
    html = "INTERRUPTED" if 'id="verdict">INTERRUPTED<' in out.html else \
        "PASS" if 'id="verdict">PASS<' in out.html else "-"
    named = bool(doc) and out.latest == doc.get("run_id") and out.run_dirs == [out.latest]
    trace = "Traceback" in out.stderr + out.stdout
    return (f"{sig.name:8} {where:24} {out.code:>4} {doc.get('verdict', '(none)'):12} "
            f"{junit:12} {html:12} {'yes' if named else 'NO':>13} {'YES' if trace else 'no':>9} "
            f"{len(out.temp_left) + len(out.tmp_files):>9} {out.seconds:>7.1f}")


def main() -> None:
    print(f"{'signal':8} {'when':24} {'exit':>4} {'results':12} {'junit':12} {'index.html':12} "
          f"{'named+latest':>13} {'traceback':>9} {'temp left':>9} {'seconds':>7}")
    for step in WRITE_STEPS:
        for sig in (signal.SIGINT, signal.SIGTERM):
            print(one(sig, step, 0.0), flush=True)
    for i, delay in enumerate(DELAYS_S):
        print(one((signal.SIGINT, signal.SIGTERM)[i % 2], None, delay), flush=True)


if __name__ == "__main__":
    main()
