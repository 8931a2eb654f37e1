"""flash.method dfu-util (harness/config/registry.py): a board put in its DFU bootloader
(a pyboard, an STM32), the image downloaded by dfu-util."""

from __future__ import annotations

import time

from harness.config.specs import FlashSpec
from harness.flash import FlashJob, enter_bootloader, run_command, wait_for_port


def dfu_command(job: FlashJob) -> list[str]:
    return ["dfu-util", "-a", "0", "-D", str(job.image)]


def flash_dfu_util(job: FlashJob) -> str:
    deadline = time.monotonic() + job.timeout_s
    enter_bootloader(job)
    run_command(dfu_command(job), "dfu-util download", job.timeout_s,
                "install dfu-util and check the board is in DFU mode (dfu-util -l)")
    return wait_for_port(job, deadline)


SPEC = FlashSpec(flash=flash_dfu_util)
