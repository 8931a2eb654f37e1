"""Virtual Pico benchmark: prints figures, asserts nothing. Needs TSFRIG_VPICO_UF2 and
TSFRIG_VPICO_BOOTROM (harness/vpico/README.md); says so and exits 0 without them.

- boot to REPL: wall time from starting the bench to the board's `>>>` on the pty
- emulated / wall speed, idle (the board waits in WFE) and busy (a loop on the board)
- the suite's wall time on the vpico and on the sim (`tsfrig run`, one target each)
- the vpico's latencies from that run, in emulated µs on the Pi's clock: stimulus -> ISR
  (the handler's ticks_us), stimulus -> wake, IRQ -> wake, edge -> ack
- the harness against the emulator's ground truth (board.mjs's TSFRIG_VPICO_TRUTH: when each
  edge was applied, when the IO_BANK0 interrupt was entered, when the ack pin moved): the
  error of the stimulus and ack stamps the harness reports, and edge -> IRQ entry next to the
  harness's edge -> handler

    .venv/bin/python benchmarks/bench_vpico.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serial

from harness.config import load_config
from harness.stats import QUANTILE_NAMES, summary
from harness.vpico.bench import ENV_UF2, VPicoBench
from harness.vpico.board import ENV_BOOTROM

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "harness/vpico/rig_vpico.yaml"


def fmt(values: list[float], digits: int = 0) -> str:
    s = summary(values)
    return ", ".join(f"{q} {s[q]:.{digits}f}" for q in QUANTILE_NAMES)


def repl(port: str, timeout_s: float = 20) -> serial.Serial:
    s = serial.Serial(port, 115200, timeout=0.05)
    buf, deadline = b"", time.monotonic() + timeout_s
    while b">>> " not in buf and time.monotonic() < deadline:
        s.write(b"\r")
        buf += s.read(200)
    return s


def boot(target) -> None:
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        with VPicoBench(target) as b:
            repl(b.serial_port).close()
            times.append(time.monotonic() - t0)
    print(f"boot to REPL (s, 5 boots): {', '.join(f'{t:.2f}' for t in times)}")


def speed(target) -> None:
    with VPicoBench(target) as b:
        s = repl(b.serial_port)
        t0, e0 = time.monotonic(), b.clock.board_us
        time.sleep(3)
        idle = (b.clock.board_us - e0) / 1e6 / (time.monotonic() - t0)
        s.write(b"import time\rt=time.ticks_ms()\rwhile time.ticks_diff(time.ticks_ms(), t) "
                b"< 2000: pass\r\r")
        s.read(1000)
        t0, e0 = time.monotonic(), b.clock.board_us
        buf, deadline = b"", time.monotonic() + 60
        while buf.count(b">>> ") < 1 and time.monotonic() < deadline:
            buf += s.read(200)
        busy = (b.clock.board_us - e0) / 1e6 / (time.monotonic() - t0)
        s.close()
    print(f"emulated / wall: idle {idle:.2f}, busy {busy:.2f}")


def suite(config: Path, target: str, extra: list[str], env: dict | None = None
          ) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(config),
                        "--target", target, "--report-dir", d, *extra], cwd=REPO,
                       capture_output=True, timeout=1800, env={**os.environ, **(env or {})})
        wall = time.monotonic() - t0
        doc = json.loads(next(Path(d).glob("*/results.json")).read_text())
    return wall, doc


def latencies(doc: dict) -> None:
    for t in doc["tests"]:
        if t.get("scenario") != "latency" or not t.get("timeline"):
            continue
        tl, lat = t["timeline"], t["latency"]
        rows = {
            "stimulus -> ISR": [x["irq_us"] - x["stimulus_us"] for x in tl
                                if x.get("irq_us") is not None],
            "stimulus -> wake": [x["wake_us"] - x["stimulus_us"] for x in tl
                                 if x.get("wake_us") is not None],
            "IRQ -> wake": lat["irq_to_wake_us"],
            "edge -> ack": lat["edge_to_ack_us"],
        }
        for name, values in rows.items():
            print(f"  {t['irq_kind']:5} {name:17} µs: {fmt(values)}")


def ground_truth(kind: str) -> None:
    """One latency scenario with the emulator's truth written down, matched pulse by pulse."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "truth.txt"
        _, doc = suite(CONFIG, "vpico", ["-k", f"test_latency and {kind}"],
                       {"TSFRIG_VPICO_TRUTH": str(path)})
        lines = [x.split() for x in path.read_text().splitlines()]
    wiring = load_config(CONFIG).target("vpico").wiring
    stim, ack = int(wiring.stimulus.board_pin), int(wiring.ack.board_pin)
    test = next(t for t in doc["tests"] if t.get("scenario") == "latency")
    tl = sorted(test["timeline"], key=lambda x: x["seq"])
    rising = [(int(x[3]), int(x[4])) for x in lines if x[0] == "E" and x[1:3] == [str(stim), "1"]]
    rising = rising[-len(tl):]
    entries = [int(x[1]) for x in lines if x[0] == "I"]
    acks = [int(x[3]) for x in lines if x[0] == "O" and x[1] == str(ack)]
    t0 = rising[0][0]
    stim_err, ack_err, entry, handler = [], [], [], []
    for rec, (stamped, applied) in zip(tl, rising, strict=True):
        late = (applied - stamped) / 1000  # the edge reached the board after its stamp
        stim_err.append(abs(rec["stimulus_us"] - (stamped - t0) / 1000) + late)
        first_entry = next(n for n in entries if n >= applied)
        entry.append((first_entry - applied) / 1000)
        if rec.get("irq_us") is not None:
            handler.append(rec["irq_us"] - rec["stimulus_us"])
        if rec.get("ack_us") is not None:
            first_ack = next(n for n in acks if n >= applied)
            ack_err.append(abs((rec["ack_us"] - rec["stimulus_us"]) - (first_ack - applied) / 1000))
    print(f"  {kind:5} stimulus stamp error µs: {fmt(stim_err, 1)}")
    print(f"  {kind:5} edge -> ack error µs:    {fmt(ack_err, 1)}")
    print(f"  {kind:5} edge -> IRQ entry µs (truth):   {fmt(entry, 2)}")
    print(f"  {kind:5} edge -> handler µs (harness):   {fmt(handler)}")


def main() -> int:
    for env in (ENV_UF2, ENV_BOOTROM):
        if not os.environ.get(env):
            print(f"bench_vpico: skipped, set {env} (harness/vpico/README.md)")
            return 0
    target = load_config(CONFIG).target("vpico")
    boot(target)
    speed(target)
    vwall, vdoc = suite(CONFIG, "vpico", [])
    swall, sdoc = suite(REPO / "rig_config.yaml", "sim", [])
    for name, wall, doc in (("vpico", vwall, vdoc), ("sim", swall, sdoc)):
        outcomes = [t["outcome"] for t in doc["tests"]]
        print(f"suite on {name}: {wall:.1f} s wall, verdict {doc['verdict']}, "
              + ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes))))
    print("vpico latencies (emulated µs, Pi clock):")
    latencies(vdoc)
    print("the harness against the emulator's ground truth (emulated µs):")
    for kind in ("hard", "soft"):
        ground_truth(kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
