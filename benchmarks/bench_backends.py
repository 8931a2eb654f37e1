"""GPIO backends on the simulated bench: prints figures, asserts nothing.

For pigpio, rgpio with a sense line (wiring.stimulus_sense) and rgpio without one (commanded
stimulus times):
- the suite's wall time (`tsfrig run` on the shipped sim target with that backend);
- the latency measurement error against an injected IRQ latency: the virtual board delays
  its IRQ by INJECTED_US, the latency scenario runs through the backend's rig, and the
  stimulus -> IRQ latency the harness reports (Pi timeline) is compared with the injected
  value (p50 minus injected) and with the truth on the simulated bench's shared clock (the
  real stimulus edge, seen by a listener on the simulated wire, to the board's IRQ stamp).

    .venv/bin/python benchmarks/bench_backends.py [--skip-suite] [--pulses N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_suite import (  # benchmarks/ is on the path when run as a script
    pct,
    run_injected_latency,
    run_suite,
)

from harness.config import load_config
from harness.gpio.ticks import TICK_MASK, tick_diff
from harness.sim.bench import SimBench
from harness.suite.observation import timeline

REPO = Path(__file__).resolve().parent.parent
INJECTED_US = 2000
SENSE_GPIO = 23
BACKENDS = {"pigpio": ("pigpio", None), "rgpio, sensed": ("rgpio", SENSE_GPIO),
            "rgpio, commanded": ("rgpio", None)}


def config_text(backend: str, sense: int | None) -> str:
    """The shipped rig config with the sim target on this backend (and sense line)."""
    text = (REPO / "rig_config.yaml").read_text()
    kind = "    kind: sim                  # sim | serial\n"
    text = text.replace(kind, kind + f"    gpio: {{backend: {backend}}}\n")
    if sense is not None:
        reset = "      reset: {pi_gpio: 22, board_pin: RUN}"
        text = text.replace(reset, f"      stimulus_sense: {sense}\n{reset}")
    return text


def latency_error(config: Path, pulses: int) -> tuple[list[float], list[float]]:
    """(reported stimulus -> IRQ per pulse, |reported - truth| per pulse) in µs."""
    target = load_config(config).targets[0]
    w = target.wiring
    true_rise: list[int] = []  # the stimulus wire's real rising edges, as the sim made them

    def watch_stimulus(b: SimBench) -> None:
        b.pi.edge_listeners.append(
            lambda gpio, level, tick: gpio == w.stimulus.pi_gpio and level and
            true_rise.append(tick & TICK_MASK))

    obs = run_injected_latency(target, INJECTED_US, pulses, watch_stimulus)
    t0 = obs.log.first("READY")["t0"]
    rows = timeline(obs)
    reported, error = [], []
    for i, (irq, edge) in enumerate(zip(obs.irq_t, true_rise, strict=False)):
        if rows[i]["irq_us"] is None:
            continue
        truth = tick_diff((t0 + irq) & TICK_MASK, edge)  # shared clock: exact
        got = rows[i]["irq_us"] - rows[i]["stimulus_us"]
        reported.append(got)
        error.append(abs(got - truth))
    return reported, error


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-suite", action="store_true")
    ap.add_argument("--pulses", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for name, (backend, sense) in BACKENDS.items():
            config = tmp_path / f"{backend}-{sense}.yaml"
            config.write_text(config_text(backend, sense))
            if not args.skip_suite:
                wall, doc = run_suite(config, tmp_path / f"suite-{backend}-{sense}")
                passed = sum(t["outcome"] == "passed" for t in doc["tests"])
                print(f"{name:17} suite: {len(doc['tests'])} tests, {passed} passed, "
                      f"wall {wall:.1f} s")
            reported, error = latency_error(config, args.pulses)
            print(f"{name:17} stimulus -> IRQ, {INJECTED_US} µs injected, {len(reported)} "
                  f"pulses: measured p50 - injected {pct(reported, 50) - INJECTED_US:+.0f} µs; "
                  f"harness error vs the shared clock p50 {pct(error, 50):.0f} µs, "
                  f"p99 {pct(error, 99):.0f} µs, max {max(error):.0f} µs")


if __name__ == "__main__":
    main()
