"""`tsfrig doctor` on the simulated bench: prints figures, asserts nothing.

- wall time of the whole command as a person runs it (bench start and stop included)
- each check's share, from doctor's own --json timings

    .venv/bin/python benchmarks/bench_doctor.py [RUNS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(runs: int = 5) -> None:
    walls: list[float] = []
    checks: dict[str, list[float]] = {}
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "harness.cli", "doctor", "--json"], cwd=REPO,
                           capture_output=True, text=True, timeout=180)
        walls.append(time.perf_counter() - t0)
        doc = json.loads(r.stdout)
        if r.returncode != 0:
            failed = [c for c in doc["checks"] if c["status"] == "fail"]
            print(f"doctor exit {r.returncode}: {failed}")
        for c in doc["checks"]:
            checks.setdefault(c["check"], []).append(c["seconds"])
    print(f"tsfrig doctor on the sim bench ({runs} runs, wall s): median "
          f"{statistics.median(walls):.2f}, min {min(walls):.2f}, max {max(walls):.2f}")
    for name, secs in checks.items():
        print(f"  {name:<14} median {statistics.median(secs):.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
