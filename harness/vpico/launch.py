"""The provider the pytest plugin starts a vpico bench with: `tsfrig sim` given the target
(which runs harness.vpico.bench.serve for a vpico target) as a child process that dies with
us, reached like a real bench through the lines it prints (harness/benches/sim.py)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from harness.benches import BenchAddress
from harness.benches.sim import read_announcement, start_given
from harness.children import stop_bench
from harness.config import RigConfig, TargetConfig
from harness.config.specs import KindSpec
from harness.vpico import NO_CORE1
from harness.vpico.board import BOOT_TIMEOUT_S


class VPicoProvider:
    """One virtual Pico with its simulated Pi, in a child process."""

    def __init__(self, target: TargetConfig, rig: RigConfig) -> None:
        self.target, self.rig = target, rig
        self.proc: subprocess.Popen | None = None
        self.image_sha256: str | None = None
        self.image: Path | None = None

    def start(self) -> BenchAddress:
        from harness.flash import sha256
        from harness.vpico.bench import image_for

        image = image_for(self.target)
        # the child gets the target as loaded here, its image found, not a file to reload
        self.proc = start_given(dataclasses.replace(
            self.target, firmware=dataclasses.replace(self.target.firmware, image=image)))
        try:
            address = read_announcement(self.proc, BOOT_TIMEOUT_S + 10,
                                        self.target.gpio.backend)
        except BaseException:  # also Ctrl-C while it starts: never leave the bench behind
            self.stop()
            raise
        self.image_sha256 = sha256(image)
        self.image = image
        return address

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_bench(proc)

    def identity(self) -> dict:
        from harness.sim.firmware import build_hash

        ov = self.target.firmware.overlay
        image = self.image
        return {"executable": None, "overlay": str(ov) if ov else None,
                "build_hash": build_hash(image, ov) if image else None,  # image + overlay
                "irq_wake_model": "wfe (rp2 port, emulated by rp2040js)",
                "image": str(image) if image else None,
                "image_sha256": self.image_sha256}


def _serve(target: TargetConfig, pigpio_port: int, rgpio_port: int) -> int:
    from harness.vpico.bench import serve_or_die

    return serve_or_die(target, pigpio_port, rgpio_port)


# kind: vpico (harness/config/registry.py): a virtual Pico runs its firmware.image itself,
# takes --overlay into its filesystem, has its own simulated Pi, and has no core 1
SPEC = KindSpec(provider=VPicoProvider, only_keys=frozenset({"firmware.image", "firmware.overlay"}),
                runs_image=True, takes_overlay=True, own_pi=True, skips={"thread": NO_CORE1},
                serve=_serve)
