"""Suite benchmark on the simulated bench: prints figures, asserts nothing.

- full suite wall time (goal <= 30 s on 2 cores)
- per-scenario host overhead: soft reboot + start until READY, and log readout (goal <= 150 ms)
- latency measurement error against an injected board IRQ latency (goal <= 20 µs p99), split
  into the harness's clock-alignment error and the virtual board's own timing error

    .venv/bin/python benchmarks/bench_suite.py [--skip-suite]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.board.session import BoardSession
from harness.config import TargetConfig, load_config
from harness.gpio import connect_gpio
from harness.gpio.ticks import TICK_MASK, tick_diff
from harness.sim.bench import SimBench
from harness.suite.catalogue import suite_tests
from harness.suite.observation import Observation, timeline
from harness.suite.scenarios import BenchHandle, run_isolated

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


def run_injected_latency(target: TargetConfig, injected_us: int, pulses: int,
                         on_ready: Callable[[SimBench], None] | None = None) -> Observation:
    """The latency scenario on a simulated bench whose board delays its IRQ by injected_us,
    through the target's GPIO backend; on_ready(bench) once all is set up, just before the
    scenario (e.g. to watch its wires)."""
    target = dataclasses.replace(target, irq_latency_us=injected_us)
    w = target.wiring
    with tempfile.TemporaryDirectory() as flash, SimBench(target, flash_dir=Path(flash)) as b:
        rig = connect_gpio(target.gpio.backend, *b.gpio_addresses[target.gpio.backend], w)
        t = BoardSession(b.serial_port)
        try:
            t.soft_reset()
            t.upload()
            h = BenchHandle(pi=rig, target=t, wiring=w, wake_timeout_ms=200,
                            device_timeout_s=10)
            if on_ready is not None:
                on_ready(b)
            latency = suite_tests()["test_latency"].scenario
            return run_isolated(h, latency, "hard", n=pulses, gap_ms=(1.0, 4.0))
        finally:
            t.close()
            rig.close()


def latency_error(pulses: int = 200) -> None:
    """Inject a known IRQ latency on the simulated board, run the latency scenario through the
    harness, and split the error in two: the harness's own (its board->Pi clock alignment,
    checked against the shared clock of the simulated bench) and the simulator's (how exactly
    the virtual board realises the injected latency under host scheduling)."""
    obs = run_injected_latency(load_config(REPO / "rig_config.yaml").targets[0], INJECTED_US,
                               pulses)
    t0 = obs.log.first("READY")["t0"]
    rows = timeline(obs)
    harness_err, sim_err = [], []
    for i, (irq, stim) in enumerate(zip(obs.irq_t, obs.stim_us, strict=False)):
        truth = tick_diff((t0 + irq) & TICK_MASK, stim & TICK_MASK)  # shared clock: exact
        reported = rows[i]["irq_us"] - rows[i]["stimulus_us"]
        harness_err.append(abs(reported - truth))
        sim_err.append(abs(truth - INJECTED_US))
    print(f"latency measurement error, harness (stimulus -> IRQ as reported vs the shared "
          f"clock, {len(harness_err)} pulses): p50 {pct(harness_err, 50):.1f} µs, "
          f"p99 {pct(harness_err, 99):.1f} µs, max {max(harness_err):.1f} µs")
    print(f"injected {INJECTED_US} µs IRQ latency as realised by the virtual board: |error| "
          f"p50 {pct(sim_err, 50):.1f} µs, p99 {pct(sim_err, 99):.1f} µs, "
          f"max {max(sim_err):.1f} µs (host scheduling, not measurement)")


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
        latency_error()


if __name__ == "__main__":
    main()
