"""`tsfrig vpico-setup`: install the virtual Pico's emulator (rp2040js, pinned by the shipped
package-lock.json) for an installed tsfrig, into a per-user cache (harness/vpico/node.py)."""

from __future__ import annotations

import argparse
import sys

from harness.vpico import node


def cmd_vpico_setup(args: argparse.Namespace) -> int:
    try:
        node.node_executable()
        try:
            print(f"vpico: rp2040js is already installed in {node.board_dir()}")
            return 0
        except node.VPicoError:
            pass  # not yet: install it
        print("vpico: npm ci (rp2040js) ...", flush=True)
        where, _ = node.setup()
    except node.VPicoError as e:
        print(f"tsfrig: {e}", file=sys.stderr)
        return 2
    print(f"vpico: rp2040js installed in {where}\n"
          f"next: tsfrig run --config {node.HERE / 'rig_vpico.yaml'} --target vpico "
          "--firmware RPI_PICO.uf2 (the RP2040 bootrom named by TSFRIG_VPICO_BOOTROM)")
    return 0


def add_vpico_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vpico-setup", help="install the virtual Pico's emulator (npm ci into "
                                           "a per-user cache; needs Node >= 18 with npm)")
    p.set_defaults(func=cmd_vpico_setup)
