"""Report benchmark: prints figures, asserts nothing.

- index.html generation time for a 10 000-sample run (goal < 2 s) and its size
- false-regression rate of `tsfrig compare` over same-build run pairs on the simulated bench
  (goal 0/10), with the rig config's settings and, for contrast, with no floor (H0: no shift,
  still Holm-corrected); benchmarks/bench_gate.py measures the gate in depth

    .venv/bin/python benchmarks/bench_report.py [--pairs 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.config import load_config
from harness.reports.compare import compare_runs
from harness.reports.results import validate
from harness.reports.run_report import write_report

REPO = Path(__file__).resolve().parent.parent
SUBSET = "latency"


def run_suite(report_dir: Path, k: str = SUBSET) -> Path:
    """One real `tsfrig run` on the simulated bench; its run directory (for the other
    benchmarks too)."""
    subprocess.run([sys.executable, "-m", "harness.cli", "run", "--report-dir", str(report_dir),
                    "-k", k], cwd=REPO, check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return (report_dir / "latest").resolve()


def grow_to(doc: dict, total: int, seed: int = 1) -> dict:
    """Resample the run's measured latencies (with ±5 % jitter) until the run holds `total`
    samples per metric across its latency tests: the shape of a long real run."""
    rnd = random.Random(seed)
    lat_tests = [t for t in doc["tests"] if t.get("latency")]
    per_test = total // len(lat_tests)
    for t in lat_tests:
        for metric, values in t["latency"].items():
            t["latency"][metric] = [round(rnd.choice(values) * rnd.uniform(0.95, 1.05), 1)
                                    for _ in range(per_test)]
    return doc


def report_time(tmp: Path, run: Path) -> None:
    doc = json.loads((run / "results.json").read_text())
    big = grow_to(doc, 10_000)
    validate(big)
    d = tmp / "big"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(big))
    n = sum(len(v) for t in big["tests"] for v in t.get("latency", {}).values())
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = write_report(d)
        times.append(time.perf_counter() - t0)
    print(f"report for {n} latency samples ({n // 2} per metric): generation "
          f"{min(times):.2f} s best of 3, {max(times):.2f} s worst; "
          f"index.html {out.stat().st_size / 1024:.0f} KiB; "
          f"results.json {(d / 'results.json').stat().st_size / 1024:.0f} KiB")
    print(f"report for a real run ({run.name}): index.html "
          f"{(run / 'index.html').stat().st_size / 1024:.0f} KiB")


def false_regressions(tmp: Path, pairs: int) -> None:
    cfg = load_config(REPO / "rig_config.yaml").compare
    # the contrast: the gate with no floor (H0: no shift at all), i.e. what the floor that
    # covers run-to-run spread saves a team from
    narrow = dataclasses.replace(cfg, effect_floor_us=0.0, min_effect_size=0.0)
    runs = [run_suite(tmp / f"r{i}") for i in range(2 * pairs)]
    flagged, flagged_narrow, shifts = 0, 0, []
    for i in range(pairs):
        base, new = runs[2 * i], runs[2 * i + 1]
        res = compare_runs(base, new, cfg)
        flagged += bool(res.regressions)
        flagged_narrow += bool(compare_runs(base, new, narrow).regressions)
        shifts += [abs(row.test.median_shift_us) for row in res.latency]
        for line in res.regressions:
            print(f"  pair {i}: {line}")
    shifts.sort()
    print(f"same-build pairs flagged by compare: {flagged}/{pairs} with the config's thresholds "
          f"(alpha {cfg.alpha:g}, effect floor {cfg.effect_floor_us:g} µs, min effect "
          f"{cfg.min_effect_size:g}); {flagged_narrow}/{pairs} with no floor (H0: no shift)")
    print(f"same-build median shifts (µs, {len(shifts)} metric pairs): "
          f"median {shifts[len(shifts) // 2]:.0f}, max {shifts[-1]:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        first = run_suite(tmp / "first")
        report_time(tmp, first)
        false_regressions(tmp, args.pairs)


if __name__ == "__main__":
    main()
