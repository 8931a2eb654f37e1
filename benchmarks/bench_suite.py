"""Suite benchmark on the simulated bench: prints figures, asserts nothing.

- full suite wall time (goal <= 30 s on 2 cores)
- per-scenario host overhead: soft reboot + start until READY, and log readout (goal <= 150 ms)
- latency measurement error against an injected board IRQ latency (goal <= 20 µs p99)

    .venv/bin/python benchmarks/bench_suite.py [--skip-suite]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INJECTED_US = 1000


def run_suite(config: Path, report_dir: Path, k: str | None = None) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "harness.cli", "run", "--config", str(config),
           "--report-dir", str(report_dir)]
    if k:
        cmd += ["-k", k]
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=REPO, check=False, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    return wall, json.loads((report_dir / "latest" / "results.json").read_text())


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-suite", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if not args.skip_suite:
            wall, doc = run_suite(REPO / "rig_config.yaml", tmp_path / "suite")
            tests = doc["tests"]
            over = [t["details"]["overhead"] for t in tests
                    if t.get("details", {}).get("overhead")]
            setup = [o["setup_s"] * 1000 for o in over]
            readout = [o["readout_s"] * 1000 for o in over]
            total = [a + b for a, b in zip(setup, readout, strict=True)]
            passed = sum(t["outcome"] == "passed" for t in tests)
            print(f"suite: {len(tests)} tests, {passed} passed, wall {wall:.1f} s")
            print(f"per-scenario overhead: median {statistics.median(total):.0f} ms, "
                  f"max {max(total):.0f} ms (setup median {statistics.median(setup):.0f} ms, "
                  f"readout median {statistics.median(readout):.0f} ms)")
        # latency error: inject a known IRQ latency and read it back off the timeline
        cfg = (REPO / "rig_config.yaml").read_text().replace(
            "irq_latency_us: 0", f"irq_latency_us: {INJECTED_US}")
        cfg_path = tmp_path / "rig_injected.yaml"
        cfg_path.write_text(cfg)
        _, doc = run_suite(cfg_path, tmp_path / "inj", k="test_latency and hard")
        for t in doc["tests"]:
            rows = [r for r in t.get("timeline", [])
                    if r["irq_us"] is not None and r["stimulus_us"] is not None]
            err = [abs(r["irq_us"] - r["stimulus_us"] - INJECTED_US) for r in rows]
            if err:
                print(f"latency error vs injected {INJECTED_US} µs ({t['irq_kind']}, {len(err)} "
                      f"pulses): p50 {pct(err, 50):.1f} µs, p99 {pct(err, 99):.1f} µs, "
                      f"max {max(err):.1f} µs")


if __name__ == "__main__":
    main()
