"""The flash methods' config specs (harness/config/registry.py): each one's checks of `flash:`
and the flasher that runs it."""

from __future__ import annotations

from typing import Any

from harness.config.specs import FlashSpec, Section
from harness.flash import (
    ESP_OFFSETS,
    flash_command,
    flash_dfu_util,
    flash_esptool,
    flash_rp2_uf2,
)

ESP_CHIPS = tuple(ESP_OFFSETS)
TEMPLATE_PLACEHOLDERS = ("image", "port", "serial_number")


def _esptool(s: Section) -> dict[str, Any]:
    if "chip" in s and s.string("chip").lower().replace("-", "") not in ESP_CHIPS:
        raise s.fail("chip", f"unknown chip {s.raw('chip')!r}; use one of "
                             f"{' | '.join(ESP_CHIPS)}")
    return {}


def _command(s: Section) -> dict[str, Any]:
    if "command" not in s:
        raise s.fail("command", "missing; method: command needs a template like "
                                "'picotool load -x {image}'")
    return {"command": s.template("command", TEMPLATE_PLACEHOLDERS)}


RP2_UF2 = FlashSpec(flash=flash_rp2_uf2)
ESPTOOL = FlashSpec(flash=flash_esptool, check=_esptool)
DFU_UTIL = FlashSpec(flash=flash_dfu_util)
COMMAND = FlashSpec(flash=flash_command, check=_command)
