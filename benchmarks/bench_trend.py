"""Trend benchmark: prints figures, asserts nothing.

- `tsfrig trend` over N runs (default 50) made by copying one real simulated-bench run N times
  with varied build, latency (a drift, noise, a few 20 ms shifts) and an occasional failure:
  time to collect, to build the trend (N-1 neighbour compares), to write trend.html, and the
  size of trend.html and trend.json

    .venv/bin/python benchmarks/bench_trend.py [--runs 50]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_report import run_suite  # benchmarks/ is on the path when run as a script

from harness.config import load_config
from harness.reports.trend import build_trend, collect, write_trend

REPO = Path(__file__).resolve().parent.parent
SUBSET = "hard and (latency or wake)"


def real_run(report_dir: Path) -> dict:
    return json.loads((run_suite(report_dir, SUBSET) / "results.json").read_text())


def variants(doc: dict, n: int, out: Path, seed: int = 1) -> None:
    rnd = random.Random(seed)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        d = copy.deepcopy(doc)
        d["run_id"] = f"bench-{i:03d}"
        d["started"] = (t0 + timedelta(hours=i)).isoformat()
        fw = d["targets"][0]["firmware"]
        fw["build_hash"], fw["version"] = f"{i:04x}beef", f"3.4.0; MicroPython bench-{i}"
        shift = 20000.0 if i % 17 == 16 else 2.0 * i  # slow drift, a 20 ms regression now and then
        for t in d["tests"]:
            for m, s in t.get("latency", {}).items():
                t["latency"][m] = [v * rnd.uniform(0.95, 1.05) + shift for v in s]
            if t["scenario"] == "wake" and i % 13 == 12:
                t["outcome"], t["message"] = "failed", "wake [hard] on sim: pulse 4: no wake"
        d["verdict"] = "pass" if all(t["outcome"] == "passed" for t in d["tests"]) else "fail"
        (out / d["run_id"]).mkdir()
        (out / d["run_id"] / "results.json").write_text(json.dumps(d))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    n = ap.parse_args().runs
    cfg = load_config(REPO / "rig_config.yaml").compare
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        doc = real_run(tmp / "real")
        samples = sum(len(v) for t in doc["tests"] for v in t.get("latency", {}).values())
        (tmp / "reports").mkdir()
        variants(doc, n, tmp / "reports")
        t0 = time.perf_counter()
        runs = collect([tmp / "reports"])
        t1 = time.perf_counter()
        trend = build_trend(runs, cfg)
        t2 = time.perf_counter()
        html, js = write_trend(tmp / "reports", trend)
        t3 = time.perf_counter()
        verdicts = [c["verdict"] for c in trend["compares"]]
        print(f"runs: {n} ({len(doc['tests'])} scenarios, {samples} latency samples each)")
        print(f"collect (load + schema check): {t1 - t0:.2f} s")
        print(f"build_trend ({len(verdicts)} neighbour compares): {t2 - t1:.2f} s")
        print(f"write trend.html + trend.json: {t3 - t2:.3f} s")
        print(f"total trend.html build time: {t3 - t0:.2f} s")
        print(f"trend.html: {html.stat().st_size / 1024:.0f} KiB; "
              f"trend.json: {js.stat().st_size / 1024:.0f} KiB")
        print("neighbour verdicts: " + ", ".join(f"{v} {verdicts.count(v)}" for v in
                                                 ("regression", "fixed", "ok", "incomplete")))


if __name__ == "__main__":
    main()
