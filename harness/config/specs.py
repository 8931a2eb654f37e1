"""The shape of a plug-in's config spec, and the one view of a config section a spec reads.

A bench kind, GPIO backend, power method or flash method says here which keys it takes, its
defaults and its own checks; the loader (harness/config/targets.py) applies the rules every
target shares and hands each spec its section. A spec's check reads its keys through Section,
so every error it raises is one line naming the file, line and key, like the loader's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.schema import ConfigError

if TYPE_CHECKING:
    from harness.config.yaml_lines import Loader, Node


class Section:
    """One mapping of a target's config (the target itself, or its gpio:, power: or flash:)
    as a spec sees it: typed getters that fail as `file:line: key: problem; fix`."""

    def __init__(self, loader: Loader, values: dict[str, Node], node: Node, key: str) -> None:
        self.loader = loader
        self.values = values
        self.node = node
        self.key = key  # e.g. "targets[0].power"

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def keys(self) -> set[str]:
        return set(self.values)

    def line(self, name: str | None = None) -> int:
        return self.values[name].line if name in self.values else self.node.line

    def raw(self, name: str) -> Any:
        return self.values[name].value

    def fail(self, name: str | None, msg: str) -> ConfigError:
        """The error for a key of this section (None: the section itself)."""
        return self.loader.fail(self.line(name), f"{self.key}.{name}" if name else self.key, msg)

    def require(self, name: str) -> None:
        self.loader.require(self.values, self.node, self.key, name)

    def string(self, name: str) -> str:
        return self.loader.string(self.values[name], f"{self.key}.{name}")

    def number(self, name: str) -> float:
        return self.loader.number(self.values[name], f"{self.key}.{name}")

    def sane(self, name: str, kind: str, integer: bool = False) -> float:
        """A number in its key's sane range (yaml_lines.SANE[kind])."""
        return self.loader.sane(self.values[name], f"{self.key}.{name}", kind, integer)

    def integer(self, name: str, lo: int | None = None, hi: int | None = None) -> int:
        return self.loader.integer(self.values[name], f"{self.key}.{name}", lo, hi)

    def path(self, name: str) -> Path | None:
        return self.loader.path(self.values[name], f"{self.key}.{name}")

    def template(self, name: str, placeholders: tuple[str, ...]) -> str:
        """A command template: a string whose only {placeholders} are these."""
        text = self.string(name)
        try:
            text.format(**dict.fromkeys(placeholders, ""))
        except (KeyError, IndexError, ValueError) as e:
            names = ", ".join(f"{{{p}}}" for p in placeholders)
            raise self.fail(name, f"bad placeholder {e}; use {names} (double other "
                                  "braces)") from None
        return text


Check = Callable[[Section], dict[str, Any]]  # a section's keys -> the config's fields


@dataclass(frozen=True)
class RunOption:
    """An option of `tsfrig run` (and of the pytest plugin) that a bench kind owns."""

    flag: str  # e.g. "--lg-place"
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] | None = None  # parses and checks the text (argparse's type)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class KindSpec:
    """A bench kind: where its bench comes from and which target keys only it takes."""

    provider: Callable[..., Any]  # (target, rig) -> BenchProvider
    only_keys: frozenset[str]  # target keys no other kind takes ("firmware.x": a subkey)
    required_keys: frozenset[str] = frozenset()
    simulated: bool = False  # runs a firmware build here; --overlay and --firmware apply
    runs_image: bool = False  # runs firmware.image itself (no flash method needed)
    takes_overlay: bool = False  # --overlay puts modules ahead of the frozen ones
    own_pi: bool = False  # each target has its own (simulated) Pi: no GPIO is shared
    skips: dict[str, str] = field(default_factory=dict)  # set source -> why it can't run here
    serve: Callable[..., int] | None = None  # `tsfrig sim` for this kind: (target, ports)
    default_power: str | None = None  # the power method when the target names none
    gpio_address: str = ""  # where its GPIO daemon is when not in the config (then refused)
    check: Check | None = None  # rules of its own over the whole target section
    run_options: tuple[RunOption, ...] = ()
    # (rig, {flag: value given or None}, --target) -> the rig with them applied
    apply_options: Callable[..., Any] | None = None


@dataclass(frozen=True)
class GpioSpec:
    """A GPIO daemon's client: its rig, its daemon's default port, the GPIOs it can drive
    and the gpio: keys only it takes (passed to the rig as keyword options)."""

    rig: Callable[..., Any]  # (host, port, wiring, **options) -> GpioRig
    daemon: str  # what it talks to, for messages: "toyd on a Pi 9"
    client: str  # the Python distribution of its client library (results.json's host)
    start: str  # how its daemon is started on the Pi, for a fix line
    default_port: int
    gpios: tuple[int, int]  # the Pi GPIO numbers it can watch and drive
    gpios_why: str  # why the range: the fix's reason in the error
    pis: tuple[int, ...] = ()  # Raspberry Pi models whose header it drives (tsfrig init --pi)
    stimulus_sense: bool = False  # times the stimulus with wiring.stimulus_sense
    option_keys: frozenset[str] = frozenset()
    options: Check | None = None  # reads option_keys
    address_key: str = ""  # an older target section holding only its daemon's host and port
    # (the rig's identity as results.json keeps it) -> its daemon for the report's bench line
    describe_daemon: Callable[[dict], str] | None = None


@dataclass(frozen=True)
class PowerSpec:
    """A power switch: the keys of power: it needs and takes, its own checks, and what
    switches (harness/power/__init__.py's protocol)."""

    needs: tuple[str, ...] = ()
    keys: frozenset[str] = frozenset()
    simulated: bool = False  # switches a simulated bench only
    defaults: dict[str, Any] = field(default_factory=dict)  # off_s, timeout_s
    check: Check | None = None  # reads needs and keys -> PowerConfig.options
    switch: Callable[..., str | None] | None = None  # (PowerJob, on) -> port after power-on
    cycle: Callable[..., str | None] | None = None  # (PowerJob) -> port: its own whole cycle
    ready: Callable[..., str] | None = None  # (PowerJob) -> one line: can it switch? (doctor)
    describe: Callable[..., str] | None = None  # (PowerConfig) -> how a verdict names it


@dataclass(frozen=True)
class FlashSpec:
    """A flasher: its own checks of flash:, and what flashes (FlashJob -> the board's port
    once it is back with the new image)."""

    flash: Callable[..., str]
    keys: frozenset[str] = frozenset()  # its own flash: keys (strings) -> FlashConfig.options
    check: Check | None = None
