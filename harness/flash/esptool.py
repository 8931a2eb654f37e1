"""flash.method esptool (harness/config/registry.py): an ESP32 written by esptool at its
chip's bootloader offset (flash.chip)."""

from __future__ import annotations

import sys
import time
from typing import Any

from harness.config.specs import FlashSpec, Section
from harness.flash import FlashError, FlashJob, run_command, wait_for_port

ESP_OFFSETS = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0,
               "esp32c6": 0x0, "esp32h2": 0x0, "esp32c5": 0x2000, "esp32p4": 0x2000}
ESP_CHIPS = tuple(ESP_OFFSETS)


def _check(s: Section) -> dict[str, Any]:
    if "chip" in s and s.string("chip").lower().replace("-", "") not in ESP_CHIPS:
        raise s.fail("chip", f"unknown chip {s.raw('chip')!r}; use one of "
                             f"{' | '.join(ESP_CHIPS)}")
    return {}


def esptool_command(job: FlashJob) -> list[str]:
    given = job.options.get("chip")
    chip = (given or "esp32").lower().replace("-", "")
    if chip not in ESP_OFFSETS:
        raise FlashError(f"flash: esptool: unknown flash.chip {given!r}; use one of "
                         f"{', '.join(ESP_OFFSETS)}")
    return [sys.executable, "-m", "esptool", "--port", job.port, "write-flash",
            f"{ESP_OFFSETS[chip]:#x}", str(job.image)]


def flash_esptool(job: FlashJob) -> str:
    deadline = time.monotonic() + job.timeout_s
    run_command(esptool_command(job), "esptool write-flash", job.timeout_s,
                "install esptool (pip install esptool) and check flash.chip and the port")
    return wait_for_port(job, deadline)


SPEC = FlashSpec(flash=flash_esptool, keys=frozenset({"chip"}), check=_check)
