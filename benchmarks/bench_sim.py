"""Simulated bench benchmark: prints figures, asserts nothing.

- bench start-up (goal < 0.5 s)
- soft-reboot round trip through mpremote's transport (goal < 150 ms)
- power cycle through the bench's switch, to the raw REPL again
- 10 000 edges through the wire: all delivered to the board in order, and to pigpio
- IRQ -> handler latency of hard and soft IRQs (edge tick vs handler ticks_us, one clock)
- IRQ -> task wake through a ThreadSafeFlag with both idle-loop wake models

    .venv/bin/python benchmarks/bench_sim.py
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pigpio

from harness.board.session import BoardSession
from harness.config import load_config
from harness.sim.bench import SimBench
from harness.suite.stats import QUANTILE_NAMES, summary

REPO = Path(__file__).resolve().parent.parent


def fmt(values: list[float]) -> str:
    s = summary(values)
    return ", ".join(f"{q} {s[q]:.0f}" for q in QUANTILE_NAMES)


def startup(target) -> None:
    times = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as flash:
            t0 = time.perf_counter()
            b = SimBench(target, flash_dir=Path(flash)).start()
            times.append((time.perf_counter() - t0) * 1000)
            b.stop()
    print(f"bench start-up (5 starts, ms): median {statistics.median(times):.0f}, "
          f"max {max(times):.0f}")


def soft_reboot(bench: SimBench) -> None:
    t = BoardSession(bench.serial_port)
    t.soft_reset()
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        t.soft_reset()
        times.append((time.perf_counter() - t0) * 1000)
    t.close()
    print(f"soft reboot round trip via mpremote transport (20, ms): {fmt(times)}")


def power_cycle(bench: SimBench) -> None:
    """Recovery's power step as the harness takes it on this bench: off, the sim's off time,
    on, then the port reopened and the raw REPL entered."""
    from harness.power import PowerSwitch

    switch = PowerSwitch(bench.target.power, bench.target.serial, bench.power.path)
    t = BoardSession(bench.serial_port, timeout_s=5)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        t.close()
        t.port = switch.cycle(t.port)
        t.reopen(5)
        t.soft_reset()
        times.append((time.perf_counter() - t0) * 1000)
    t.close()
    print(f"power cycle to raw REPL, off {bench.target.power.off_s:g} s included (5, ms): "
          f"median {statistics.median(times):.0f}, max {max(times):.0f}")


def ten_thousand_edges(bench: SimBench) -> None:
    host, port = bench.pigpio_address
    pi = pigpio.pi(host, port)
    t = BoardSession(bench.serial_port)
    t.soft_reset()
    t.exec("from machine import Pin\nfrom array import array\nimport time\n"
           "lv = bytearray(10000)\nn = 0\n"
           "def h(p):\n global n\n if n < 10000:\n  lv[n] = p.value()\n n += 1\n"
           "a = Pin(2, Pin.IN)\na.irq(h, Pin.IRQ_RISING | Pin.IRQ_FALLING, hard=True)\n")
    seen, done = [], threading.Event()

    def cb(g, level, tick):
        seen.append((level, tick))
        if len(seen) == 10000:
            done.set()

    pi.set_mode(17, pigpio.OUTPUT)
    c = pi.callback(17, pigpio.EITHER_EDGE, cb)
    m = 1 << 17
    pi.wave_clear()
    pi.wave_add_generic([pigpio.pulse(m, 0, 20), pigpio.pulse(0, m, 30)] * 5000)
    t0 = time.perf_counter()
    pi.wave_send_once(pi.wave_create())
    done.wait(30)
    elapsed = time.perf_counter() - t0
    deadline = time.monotonic() + 10
    while int(t.exec("print(n)")) < 10000 and time.monotonic() < deadline:
        time.sleep(0.05)
    n = int(t.exec("print(n)"))
    order_ok = t.exec("print(all(lv[i] == (1 - i % 2) for i in range(n)))").strip()
    gaps = {(b[1] - a[1]) & 0xFFFFFFFF for a, b in zip(seen, seen[1:], strict=False)}
    print(f"10 000 edges: pigpio callback got {len(seen)} in {elapsed:.2f} s "
          f"(tick gaps {sorted(gaps)} µs), board IRQ handler got {n}, "
          f"levels alternate in order: {order_ok}")
    c.cancel()
    pi.stop()
    t.close()


def run_measured(t: BoardSession, pi: pigpio.pi, setup: str, pulses: int = 200) -> list[float]:
    """Start a board script that prints 'ready', pulse, let it print one line of numbers."""
    t.soft_reset()
    t.start(setup + "print('ready')\n"
            "import asyncio\n"
            "async def run():\n"
            "    t0 = time.ticks_ms()\n"
            f"    while n < {pulses} and time.ticks_diff(time.ticks_ms(), t0) < 5000:\n"
            "        await asyncio.sleep_ms(5)\n"
            "    await asyncio.sleep_ms(50)\n"
            "asyncio.run(run())\n"
            "print(' '.join(str(x) for x in result()))\n")
    buf, deadline = b"", time.monotonic() + 10
    while b"ready" not in buf and time.monotonic() < deadline:
        buf += t.serial.read(64)
    pi.set_mode(17, pigpio.OUTPUT)
    for _ in range(pulses):
        pi.gpio_trigger(17, 10, 1)
        time.sleep(0.003)
    from harness.board.log_protocol import LogParser

    parser = LogParser()
    t.read_to_end(parser, 10)
    return [float(x) for x in parser.log.lines[-1].split()]


def irq_latency(bench: SimBench) -> None:
    """Handler timestamp minus the edge's Pi tick: the same clock on the simulated bench."""
    pi = pigpio.pi(*bench.pigpio_address)
    t = BoardSession(bench.serial_port)
    for hard in (True, False):
        edges: list[int] = []
        c = pi.callback(17, pigpio.RISING_EDGE, lambda g, lv, tick, e=edges: e.append(tick))
        got = run_measured(t, pi, (
            "import time\nfrom machine import Pin\nfrom array import array\n"
            "ts = array('q', [0] * 300)\nn = 0\n"
            "def h(p):\n global n\n ts[n] = time.ticks_us() & 0xFFFFFFFF\n n += 1\n"
            f"Pin(2, Pin.IN).irq(h, Pin.IRQ_RISING, hard={hard})\n"
            "def result():\n return ts[:n]\n"))
        c.cancel()
        lat = [(int(h) - e) & 0xFFFFFFFF for h, e in zip(got, edges, strict=False)]
        print(f"{'hard' if hard else 'soft'} IRQ -> handler ({len(lat)} pulses, µs): {fmt(lat)}")
    pi.stop()
    t.close()


def flag_wake(target, model: str) -> None:
    """Hard IRQ handler sets a ThreadSafeFlag; how long until the waiting task runs."""
    with tempfile.TemporaryDirectory() as flash:
        b = SimBench(dataclasses.replace(target, irq_wake=model), flash_dir=Path(flash)).start()
        try:
            pi = pigpio.pi(*b.pigpio_address)
            t = BoardSession(b.serial_port)
            lat = run_measured(t, pi, (
                "import asyncio, time\nfrom machine import Pin\nfrom array import array\n"
                "flag = asyncio.ThreadSafeFlag()\nirq = array('q', [0] * 300)\n"
                "wake = array('q', [0] * 300)\nn = 0\nw = 0\n"
                "def h(p):\n global n\n irq[n] = time.ticks_us()\n n += 1\n flag.set()\n"
                "Pin(2, Pin.IN).irq(h, Pin.IRQ_RISING, hard=True)\n"
                "async def waiter():\n global w\n while True:\n  await flag.wait()\n"
                "  wake[w] = time.ticks_us()\n  w += 1\n"
                "asyncio.create_task(waiter())\n"
                "def result():\n return [wake[i] - irq[i] for i in range(min(n, w))]\n"))
            print(f"hard IRQ -> flag.wait() returns, irq_wake={model} ({len(lat)}, µs): "
                  f"{fmt(lat)}")
            pi.stop()
            t.close()
        finally:
            b.stop()


def main() -> None:
    target = load_config(REPO / "rig_config.yaml").targets[0]
    startup(target)
    with tempfile.TemporaryDirectory() as flash:
        bench = SimBench(target, flash_dir=Path(flash)).start()
        try:
            soft_reboot(bench)
            power_cycle(bench)
            ten_thousand_edges(bench)
            irq_latency(bench)
        finally:
            bench.stop()
    for model in ("schedule", "poll"):
        flag_wake(target, model)


if __name__ == "__main__":
    main()
