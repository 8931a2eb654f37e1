"""Several boards on one host: wall time of `tsfrig run` on 1, 2 and 4 simulated targets, one
after another (serial) and at once (`--parallel`: one pytest-xdist worker per target), one
run each, printed as seconds and ratios. Prints, asserts nothing.

    .venv/bin/python benchmarks/bench_parallel.py [-k EXPR] [--targets 1 2 4]

Each simulated target is a MicroPython VM and a pigpiod stand-in sharing this host's CPUs,
so the speed-up is bounded by its cores (`nproc` is printed with the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def rig_with(n: int, dest: Path) -> Path:
    """The shipped rig config with its simulated target copied n times (sim1..simN)."""
    doc = yaml.safe_load((REPO / "rig_config.yaml").read_text())
    sim = doc["targets"][0]
    doc["targets"] = [{**sim, "name": f"sim{i + 1}"} for i in range(n)]
    path = dest / f"rig-{n}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def timed_run(config: Path, report_dir: Path, k: str | None, parallel: bool) -> dict:
    """One `tsfrig run`: wall seconds, exit code, verdict and test count."""
    cmd = [sys.executable, "-m", "harness.cli", "run", "--config", str(config),
           "--report-dir", str(report_dir), *(["-k", k] if k else []),
           *(["--parallel"] if parallel else [])]
    t0 = time.monotonic()
    code = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env={**os.environ, "CI": "1"}, timeout=1800, check=False).returncode
    wall = time.monotonic() - t0
    doc = json.loads((report_dir / "latest" / "results.json").read_text())
    return {"wall": wall, "code": code, "verdict": doc["verdict"], "tests": len(doc["tests"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", help="pytest -k selection (default: the whole suite)")
    ap.add_argument("--targets", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    print(f"host: {os.cpu_count()} CPUs; suite selection: {args.k or 'whole suite'}; "
          "one run each")
    print(f"{'targets':>7} {'tests':>5} {'serial s':>9} {'-n s':>7} {'serial/-n':>9} "
          f"{'-n vs 1 serial':>14}  verdicts (serial, -n)")
    base = None
    with tempfile.TemporaryDirectory(prefix="tsfrig-bench-") as tmp:
        for n in args.targets:
            cfg = rig_with(n, Path(tmp))
            serial = timed_run(cfg, Path(tmp) / f"s{n}", args.k, parallel=False)
            par = timed_run(cfg, Path(tmp) / f"p{n}", args.k, parallel=True)
            base = base or serial["wall"] / n  # one target's serial time
            print(f"{n:>7} {par['tests']:>5} {serial['wall']:>9.1f} {par['wall']:>7.1f} "
                  f"{serial['wall'] / par['wall']:>9.2f} {par['wall'] / base:>14.2f}  "
                  f"{serial['verdict']} ({serial['code']}), {par['verdict']} ({par['code']})")
    print("serial/-n: the speed-up; -n vs 1 serial: the parallel run's wall time in units of "
          "one target's serial run (1.00 = perfect scaling)")


if __name__ == "__main__":
    main()
