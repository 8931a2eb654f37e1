"""Where a target's bench comes from, chosen by the target's `kind` in the rig config.

Each kind is a module here holding its provider and its spec (which config keys it takes,
whether its bench is simulated here, so it runs a firmware build and takes --overlay):
sim.py, serial.py, labgrid.py. A new kind of bench is one such module plus one line in
harness/config/registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from harness.config.registry import KIND, spec, specs
from harness.config.specs import RunOption

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


def bench_for(target: TargetConfig, rig: RigConfig) -> BenchProvider:
    """The provider for this target's kind (harness/config/registry.py)."""
    return spec(KIND, target.kind).provider(target, rig)


def run_options() -> list[RunOption]:
    """The options of `tsfrig run` that bench kinds own (e.g. a place to acquire)."""
    return [o for kind in specs(KIND).values() for o in kind.run_options]


def with_run_options(rig: RigConfig, given: dict[str, Any], target: str | None) -> RigConfig:
    """The rig with each kind's options applied, for those given (`given`: flag -> value or
    None); a kind whose options are all absent leaves the rig as it is."""
    for kind in specs(KIND).values():
        mine = {o.flag: given.get(o.flag) for o in kind.run_options}
        if kind.apply_options is not None and any(v is not None for v in mine.values()):
            rig = kind.apply_options(rig, mine, target)
    return rig
