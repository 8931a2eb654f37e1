"""The one registry of what a rig config can name: bench kinds (`kind:`), GPIO backends
(`gpio.backend:`), power methods (`power.method:`) and flash methods (`flash.method:`).

Each entry is where the plug-in's spec lives ("module:NAME"; the spec's shape is in
harness/config/specs.py): its keys, defaults, checks and one-line errors, and what runs it.
A spec's module is imported only when a config names it, so this module imports no backend
and neither does the config loader. A new one is its module plus one line here, or
`register()` from outside (as a test does).
"""

from __future__ import annotations

import importlib
from typing import Any

KIND, GPIO, POWER, FLASH = "kind", "gpio.backend", "power.method", "flash.method"

_ENTRIES: dict[str, dict[str, str]] = {
    KIND: {
        "sim": "harness.benches.sim:SPEC",
        "serial": "harness.benches.serial:SPEC",
        "vpico": "harness.vpico.launch:SPEC",
        "labgrid": "harness.benches.labgrid:SPEC",
    },
    GPIO: {
        "pigpio": "harness.gpio.pigpio_rig:SPEC",
        "rgpio": "harness.gpio.rgpio_rig:SPEC",
    },
    POWER: {
        "uhubctl": "harness.power.uhubctl:SPEC",
        "sysfs": "harness.power.sysfs:SPEC",
        "command": "harness.power.command:SPEC",
        "sim": "harness.sim.power:SPEC",
    },
    FLASH: {
        "rp2-uf2": "harness.flash.rp2_uf2:SPEC",
        "esptool": "harness.flash.esptool:SPEC",
        "dfu-util": "harness.flash.dfu_util:SPEC",
        "command": "harness.flash.command:SPEC",
    },
}
_loaded: dict[tuple[str, str], Any] = {}


def names(family: str) -> tuple[str, ...]:
    """What the config may write for this family, in registry order."""
    return tuple(_ENTRIES[family])


def spec(family: str, name: str) -> Any:
    """The named plug-in's spec (KindSpec, GpioSpec, PowerSpec or FlashSpec); KeyError for a
    name the registry does not hold (the loader checks names against names() first)."""
    key = (family, name)
    if key not in _loaded:
        module, _, attr = _ENTRIES[family][name].partition(":")
        _loaded[key] = getattr(importlib.import_module(module), attr)
    return _loaded[key]


def register(family: str, name: str, where: str) -> None:
    """Add (or replace) one plug-in: `where` is "module:NAME" of its spec."""
    _ENTRIES[family][name] = where
    _loaded.pop((family, name), None)


def unregister(family: str, name: str) -> None:
    _ENTRIES[family].pop(name, None)
    _loaded.pop((family, name), None)


def specs(family: str) -> dict[str, Any]:
    """Every plug-in of a family by name (imports them all: for listings, not for loading)."""
    return {n: spec(family, n) for n in names(family)}


def pi_models() -> list[int]:
    """The Raspberry Pi models some GPIO backend drives (`tsfrig init --pi`)."""
    return sorted({pi for s in specs(GPIO).values() for pi in s.pis})


def gpio_backend_for_pi(pi: int) -> tuple[str, Any]:
    """The first GPIO backend that drives this Pi's header, and its spec."""
    return next((n, s) for n, s in specs(GPIO).items() if pi in s.pis)
