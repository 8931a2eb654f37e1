"""`tsfrig sim`: one simulated bench in the foreground, printing where its ends are (the board's
serial port, each emulated GPIO daemon, its power switch) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

from harness.config import ConfigError, load_with


def _die(msg: str) -> int:
    print(f"tsfrig: {msg}", file=sys.stderr)
    return 2


def cmd_sim(args: argparse.Namespace) -> int:
    from harness.config.registry import KIND, spec
    from harness.sim.bench import PortInUse, serve
    from harness.sim.board import BoardError
    from harness.sim.firmware import FirmwareNotFound

    try:
        if args.given_target:  # started by the harness (benches/sim.py): the target it loaded
            target = pickle.load(sys.stdin.buffer)
        else:  # by hand: loaded here, then served the same way
            target = load_with(args.config, args.overlay, args.firmware, args.target).targets[0]
        kind = spec(KIND, target.kind)
        if kind.serve is not None:  # a kind with a bench of its own (a virtual Pico)
            return kind.serve(target, args.pigpio_port, args.rgpio_port)
        if not kind.simulated:
            return _die(f"target {target.name!r} is kind {target.kind!r}, not a simulated "
                        "bench: pick a sim target with --target")
        return serve(target, pigpio_port=args.pigpio_port,
                     flash_dir=Path(args.flash) if args.flash else None,
                     rgpio_port=args.rgpio_port)
    except (ConfigError, FirmwareNotFound) as e:
        return _die(str(e))
    except BoardError as e:
        return _die(f"the virtual board did not boot: {e}: check firmware.executable is a "
                    "MicroPython unix-port build")
    except PortInUse as e:
        return _die(f"--{e.daemon}-port {e.port} is already in use by another process: stop "
                    f"it, or pass --{e.daemon}-port 0 for a free port")
    except OSError as e:
        return _die(f"cannot start the simulated bench: {e} "
                    "(is the port busy? try --pigpio-port 0 --rgpio-port 0)")


def _port(text: str) -> int:
    """A TCP port for argparse: a bad one is a one-line usage error, not a traceback."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port: use 1-65535, or 0 for "
                                         "a free one")
    return port


def add_sim_parser(sub: argparse._SubParsersAction, default_config: str) -> None:
    sim = sub.add_parser("sim", help="start one simulated bench in the foreground")
    sim.add_argument("--config", default=default_config)
    sim.add_argument("--overlay")
    sim.add_argument("--firmware", help="MicroPython unix-port executable to run")
    sim.add_argument("--target", help="sim target to start (default: the first)")
    sim.add_argument("--pigpio-port", type=_port, default=0,
                     help="pigpiod port (0: a free one)")
    sim.add_argument("--rgpio-port", type=_port, default=0,
                     help="rgpiod port (0: a free one)")
    sim.add_argument("--flash", help="directory to use as the board's flash (default: temporary)")
    sim.add_argument("--given-target", action="store_true", help=argparse.SUPPRESS)
    sim.set_defaults(func=cmd_sim)
