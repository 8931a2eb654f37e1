"""The rig config as the harness uses it: frozen dataclasses, one per section, each holding
what the loader checked (harness/config/loader.py reads rig_config.yaml into them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.board.sources import IRQ_SOURCES


class ConfigError(Exception):
    """A config problem: one line, with file:line, the key path and what to do."""


@dataclass(frozen=True)
class Wire:
    """One jumper between a Pi GPIO and a board pin (a number, or a name like "GP2"/"RUN")."""

    pi_gpio: int
    board_pin: int | str


@dataclass(frozen=True)
class Wiring:
    stimulus: Wire  # Pi output -> board IRQ pin
    ack: Wire  # board output -> Pi input
    reset: Wire | None = None  # optional: Pi GPIO on the board's RUN/EN pin
    stimulus_sense: int | None = None  # optional: a Pi input jumpered to the stimulus wire


@dataclass(frozen=True)
class Budgets:
    latency_us: dict[str, float] = field(default_factory=lambda: {
        "p50": 2000.0, "p90": 3000.0, "p99": 5000.0, "max": 20000.0})
    wake_timeout_ms: float = 200.0
    device_timeout_s: float = 10.0


@dataclass(frozen=True)
class FirmwareConfig:
    executable: Path | None = None  # None: auto
    overlay: Path | None = None
    image: Path | None = None  # serial: the image to flash before the run



@dataclass(frozen=True)
class FlashConfig:
    """serial: how firmware.image gets onto the board (harness/flash/): its method, each step's
    deadline, and the keys only its method takes (a volume glob, a chip, a command
    template), as the method's spec read them."""

    method: str
    timeout_s: float = 60.0
    options: dict[str, Any] = field(default_factory=dict)



@dataclass(frozen=True)
class PowerConfig:
    """How the rig switches the board's power, the last recovery step (harness/power/): its
    method, the keys every method takes, and the keys only its method takes (a hub's
    location, a command template), as the method's spec read them."""

    method: str
    off_s: float = 2.0  # how long the board stays unpowered
    timeout_s: float = 30.0  # each switching step, and the board's port coming back
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SerialConfig:
    port: str = "auto"
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    baudrate: int = 115200


@dataclass(frozen=True)
class GpioConfig:
    """The GPIO daemon the target's wires go through: its backend (harness/config/registry.py),
    its address, and the keys only that backend takes (e.g. a gpiochip), as the backend's spec
    read them."""

    backend: str
    host: str = "127.0.0.1"
    port: int = 0  # the backend's default port, filled in by the loader
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareConfig:
    alpha: float = 0.01
    effect_floor_us: float = 100.0
    min_effect_size: float = 0.3


@dataclass(frozen=True)
class TargetConfig:
    name: str
    kind: str
    wiring: Wiring
    budgets: Budgets
    gpio: GpioConfig
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    serial: SerialConfig = field(default_factory=SerialConfig)
    flash: FlashConfig | None = None
    power: PowerConfig | None = None  # sim targets: method sim unless `power: null`
    irq_wake: str = "schedule"
    irq_latency_us: int = 0
    irq_jitter_us: int = 0
    irq_kinds: tuple[str, ...] = IRQ_SOURCES
    second_waiter: str = "second-wins"
    known_issues: dict[str, str] = field(default_factory=dict)  # "test[kind]" -> why
    profile: str = "auto"  # harness.board.profiles: auto (the probe's port) or a profile's name
    emulate: str | None = None  # sim only: the virtual board behaves as this port's
    # the keys the config gave (defaults: included), e.g. "irq_kinds", "budgets.latency_us.p50":
    # they win over the profile's defaults
    explicit: frozenset[str] = frozenset()
    place: str | None = None  # a bench kind's place to acquire (harness/benches/labgrid.py)
    lg_wait_s: float = 0.0  # how long to wait for a held place (--lg-wait)

    def to_dict(self) -> dict:
        """JSON-friendly copy for reports."""
        def conv(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list | tuple | frozenset):
                return [conv(x) for x in (sorted(v) if isinstance(v, frozenset) else v)]
            return v
        d = conv(dataclasses.asdict(self))
        for optional in ("reset", "stimulus_sense"):
            if d["wiring"][optional] is None:
                del d["wiring"][optional]
        return d


@dataclass(frozen=True)
class RigConfig:
    path: Path
    targets: list[TargetConfig]
    compare: CompareConfig = field(default_factory=CompareConfig)

    def target(self, name: str) -> TargetConfig:
        for t in self.targets:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.targets)
        raise ConfigError(f"{self.path.name}: no target named {name!r} (known: {known})")
