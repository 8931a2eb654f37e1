"""`tsfrig init`: write a commented rig_config.yaml to start from.

With no options it is the shipped config, the simulated bench, so `tsfrig init && tsfrig run`
works anywhere. `--board` writes a real bench's target instead: the board's pins as the README
wires them, and the GPIO daemon that drives the header of the Pi named by `--pi`. An existing
file is kept unless --force says to replace it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.config import registry
from harness.shipped import STARTING_CONFIG


@dataclass(frozen=True)
class Board:
    """One board's end of the wiring (README, "Wiring a real bench") and how to find it."""

    title: str
    stimulus_pin: str
    ack_pin: str
    reset_pin: str
    serial: str
    budgets: str


BOARDS: dict[str, Board] = {
    "pico": Board("Raspberry Pi Pico / Pico 2", "GP2", "GP3", "RUN",
                  "{port: auto, vid: 0x2e8a, pid: 0x0005}",
                  "{p50: 50, p90: 80, p99: 150, max: 500}"),
    "esp32": Board("ESP32 DevKitC", "18", "19", "EN", "{port: /dev/ttyUSB0}",
                   "{p50: 150, p90: 300, p99: 600, max: 2000}"),
    "pyboard": Board("Pyboard v1.1", "X1", "X2", "RST", "{port: auto, vid: 0xf055, pid: 0x9800}",
                     "{p50: 50, p90: 80, p99: 150, max: 500}"),
    "nucleo": Board("Nucleo-64 (F401RE, F446RE, ...)", "D2", "D3", "NRST",
                    "{port: /dev/ttyACM0}", "{p50: 50, p90: 80, p99: 150, max: 500}"),
}

REAL_BENCH = """\
# tsfrig bench configuration: a {title} on a Raspberry Pi {pi}'s header.
# See README.md ("Wiring a real bench", "Config reference") for every key; `tsfrig doctor`
# checks each wire before a run.
version: 1

targets:
  - name: {name}
    kind: serial
    serial: {serial}   # where the board's REPL is
    gpio: {{backend: {backend}, host: raspberrypi.local}}   # {daemon}; port {port}
    irq_kinds: [hard, soft, thread]
    second_waiter: second-wins # expected: second-wins | first-wins | both-wake | raises
    known_issues: {{}}           # "test_name[kind]": why; runs as non-strict xfail, still reported
    wiring:
      stimulus: {{pi_gpio: 17, board_pin: {stimulus}}}   # Pi output -> board IRQ pin
      ack: {{board_pin: {ack}, pi_gpio: 27}}        # board output -> Pi input
      reset: {{pi_gpio: 22, board_pin: {reset}}}    # optional: Pi pulls {reset} low to hard-reset
{sense}    budgets:
      latency_us: {budgets}
      wake_timeout_ms: 50      # a pulse with no wake within this is a lost wake-up
      device_timeout_s: 10     # any wait on the board

compare:
  alpha: 0.01                  # Mann-Whitney U significance level
  effect_floor_us: 100         # a median shift smaller than this is never a regression
  min_effect_size: 0.3         # rank-biserial correlation needed to call a shift real
"""

SENSE = "      stimulus_sense: 23       # a Pi input jumpered to the stimulus wire\n"


def config_text(board: str | None, pi: int) -> str:
    """The rig config for this board on this Pi, or the shipped simulated bench."""
    if board is None:
        return STARTING_CONFIG.read_text()
    b = BOARDS[board]
    name, gpio = registry.gpio_backend_for_pi(pi)
    return REAL_BENCH.format(title=b.title, pi=pi, name=board, serial=b.serial, backend=name,
                             daemon=gpio.daemon, port=gpio.default_port,
                             stimulus=b.stimulus_pin, ack=b.ack_pin, reset=b.reset_pin,
                             sense=SENSE if gpio.stimulus_sense else "", budgets=b.budgets)


def cmd_init(args: argparse.Namespace) -> int:
    out = Path(args.config)
    if out.exists() and not args.force:
        print(f"tsfrig init: {out} already exists; keep it, or pass --force to replace it",
              file=sys.stderr)
        return 2
    try:
        out.write_text(config_text(args.board, args.pi))
    except OSError as e:
        print(f"tsfrig init: cannot write {out} ({e.strerror or e}): run it in a writable "
              "directory or pass --config", file=sys.stderr)
        return 2
    what = f"a {BOARDS[args.board].title} on a Pi {args.pi}" if args.board else \
        "the simulated bench"
    print(f"wrote {out}: {what}; next: tsfrig run" + (" (after tsfrig doctor)"
                                                        if args.board else ""))
    return 0


def add_init_parser(sub: argparse._SubParsersAction, default_config: str) -> None:
    p = sub.add_parser("init", help="write a commented rig_config.yaml to start from")
    p.add_argument("--board", choices=sorted(BOARDS),
                   help="a real bench with this board (default: the simulated bench)")
    p.add_argument("--pi", type=int, choices=registry.pi_models(), default=4,
                   help="the Raspberry Pi whose header drives the wires (default 4)")
    p.add_argument("--config", default=default_config, help="the file to write")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_init)
