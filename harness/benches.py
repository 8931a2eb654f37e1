"""Where a target's bench comes from, chosen by the target's `kind` in the rig config.

The registry is the one place that knows the kinds: which config keys each takes, whether
its bench is simulated here (so it runs a firmware build and takes --overlay), and which
provider brings it up. A new kind of bench is one provider module plus one line here.
Providers are imported only when a bench starts, so the config loader stays light.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.config import RigConfig, TargetConfig


@dataclass(frozen=True)
class BenchAddress:
    """Where the harness reaches a bench: the board's serial port and the GPIO daemon."""

    serial_port: str
    gpio_host: str
    gpio_port: int
    power_control: str = ""  # a simulated bench's power switch (harness/sim/power.py)


class BenchProvider(Protocol):
    """Brings one target's bench up and down."""

    def start(self) -> BenchAddress: ...

    def stop(self) -> None: ...

    def identity(self) -> dict:
        """What this provider knows of the firmware and bench (results.json's target)."""
        ...


@dataclass(frozen=True)
class BenchKind:
    name: str
    provider: str  # "module:Class", a BenchProvider taking (target, rig)
    only_keys: frozenset[str]  # target keys no other kind takes ("firmware.x": a subkey)
    required_keys: frozenset[str]
    simulated: bool  # runs a firmware build here; --overlay applies


BENCH_KINDS: dict[str, BenchKind] = {
    "sim": BenchKind("sim", "harness.sim.launch:SimProvider",
                     frozenset({"firmware.executable", "firmware.overlay", "irq_wake",
                                "irq_latency_us", "irq_jitter_us", "emulate"}),
                     frozenset(), simulated=True),
    "serial": BenchKind("serial", "harness.benches:SerialProvider",
                        frozenset({"serial", "flash", "firmware.image"}),
                        frozenset({"serial"}), simulated=False),
    "vpico": BenchKind("vpico", "harness.vpico.launch:VPicoProvider",
                       frozenset({"firmware.image", "firmware.overlay"}), frozenset(),
                       simulated=False),
    "labgrid": BenchKind("labgrid", "harness.lab:LabgridProvider", frozenset({"place"}),
                         frozenset({"place"}), simulated=False),
}
KIND_ONLY_KEYS = frozenset().union(*(k.only_keys for k in BENCH_KINDS.values()))


def bench_for(target: TargetConfig, rig: RigConfig) -> BenchProvider:
    """The provider for this target's kind."""
    module, _, cls = BENCH_KINDS[target.kind].provider.partition(":")
    return getattr(importlib.import_module(module), cls)(target, rig)


class SerialProvider:
    """A real bench: the board on a serial port (by path, or found by USB ids) and a GPIO
    daemon on the Pi; nothing to start or stop."""

    def __init__(self, target: TargetConfig, rig: RigConfig) -> None:
        self.target = target
        self.image_sha256: str | None = None

    def start(self) -> BenchAddress:
        from harness.target import find_port

        s, g = self.target.serial, self.target.pigpio
        port = s.port if s.port != "auto" else find_port(s.vid, s.pid, s.serial_number)
        image, fl = self.target.firmware.image, self.target.flash
        if image is not None and fl is not None:  # flash it and check the board runs it
            from harness.flash import FlashJob, flash_and_verify, sha256

            job = FlashJob(image, port, s.port, s.vid, s.pid, s.serial_number, fl.volume,
                           fl.chip, fl.command, fl.timeout_s, s.baudrate)
            port, _ = flash_and_verify(fl.method, job)
            self.image_sha256 = sha256(image)
        return BenchAddress(port, g.host, g.port)

    def stop(self) -> None:
        pass

    def identity(self) -> dict:
        image = self.target.firmware.image if self.image_sha256 else None
        return {"executable": None, "overlay": None, "build_hash": None,
                "irq_wake_model": None, "image": str(image) if image else None,
                "image_sha256": self.image_sha256}
