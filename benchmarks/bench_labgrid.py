"""Shared-lab figures on a loopback lab (tests/sim/lab.py: a real labgrid-coordinator and
labgrid-exporter serving a simulated bench): the time to acquire and release a labgrid place,
bare (`labgrid-client acquire` / `release`) and as a tsfrig run does it (the holder process
acquires, `labgrid-client env` resolves the serial port and GPIO daemon; release confirmed);
then two `tsfrig run`s on one place: what the second, waiting one printed, how long it waited
and how soon after the first let the place go it had it. Prints, asserts nothing.

    .venv/bin/python benchmarks/bench_labgrid.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.benches.labgrid import LabgridProvider  # noqa: E402
from harness.config import load_config  # noqa: E402
from tests.faults.matrix import wait_until  # noqa: E402
from tests.sim.lab import PLACE, Lab, missing_tools, running_lab, start_run  # noqa: E402


def ms(xs: list[float]) -> str:
    return (f"p50 {statistics.median(xs) * 1000:6.0f} ms  min {min(xs) * 1000:6.0f} ms  "
            f"max {max(xs) * 1000:6.0f} ms")


def bare(lab: Lab, rounds: int) -> tuple[list[float], list[float]]:
    acq, rel = [], []
    for _ in range(rounds):
        for cmd, out in (("acquire", acq), ("release", rel)):
            t0 = time.monotonic()
            r = lab.client("-p", PLACE, cmd)
            out.append(time.monotonic() - t0)
            assert r.returncode == 0, r.stderr
    return acq, rel


def through_tsfrig(lab: Lab, rounds: int) -> tuple[list[float], list[float]]:
    os.environ.update(lab.env)  # LG_COORDINATOR and labgrid-client on PATH, as a user has
    target = load_config(lab.rig).targets[0]
    acq, rel = [], []
    for _ in range(rounds):
        provider = LabgridProvider(target, None)
        t0 = time.monotonic()
        provider.start()
        acq.append(time.monotonic() - t0)
        t0 = time.monotonic()
        provider.stop()
        rel.append(time.monotonic() - t0)
        assert lab.holder() == "None"
    return acq, rel


def waiting_run(lab: Lab, tmp: Path) -> None:
    first = start_run(lab, tmp / "a", "-k", "hard")
    wait_until(lambda: lab.holder() != "None", 60, every_s=0.2)
    second = start_run(lab, tmp / "b", "-k", "test_wake and hard", "--lg-wait", "300")
    codes = first.finish(), second.finish()
    print(f"\nfirst run exit {codes[0]}, second run exit {codes[1]}; the second printed "
          "(stderr, as it came):")
    t_start = second.lines[0][0] if second.lines else 0.0
    for t, line in second.lines:
        print(f"  +{t - t_start:5.1f} s  {line.rstrip()}")
    a, b = first.trace_times(), second.trace_times()
    if any("waiting for place" in line for _, line in second.lines) and "acquired" in b:
        print(f"handover: the second had the place {(b['acquired'] - a['releasing']) * 1000:.0f}"
              " ms after the first began to let it go (its board closed -> holder's release "
              "-> coordinator -> the second's monitor event -> its acquire)")
    else:
        print("the second run did not wait (the first was done before it asked)")


def main(rounds: int) -> None:
    if missing_tools():
        sys.exit(f"bench_labgrid: {missing_tools()}")
    with tempfile.TemporaryDirectory(prefix="tsfrig-bench-lab-") as tmp, \
            running_lab(Path(tmp)) as lab:
        version = lab.client("version").stdout.strip()
        print(f"labgrid {version}, coordinator and exporter on loopback, {rounds} rounds")
        acq, rel = bare(lab, rounds)
        print(f"labgrid-client acquire            {ms(acq)}")
        print(f"labgrid-client release            {ms(rel)}")
        acq, rel = through_tsfrig(lab, rounds)
        print(f"tsfrig acquire (+ env, addresses) {ms(acq)}")
        print(f"tsfrig release (confirmed)        {ms(rel)}")
        waiting_run(lab, Path(tmp))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
