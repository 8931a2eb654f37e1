"""flash.method command (harness/config/registry.py): the bench's own flashing command, a
template with {image}, {port} and {serial_number} filled in (shell-quoted)."""

from __future__ import annotations

import shlex
import time
from typing import Any

from harness.config.specs import FlashSpec, Section
from harness.flash import FlashError, FlashJob, run_command, wait_for_port

TEMPLATE_PLACEHOLDERS = ("image", "port", "serial_number")


def _check(s: Section) -> dict[str, Any]:
    if "command" not in s:
        raise s.fail("command", "missing; method: command needs a template like "
                                "'picotool load -x {image}'")
    return {"command": s.template("command", TEMPLATE_PLACEHOLDERS)}


def command_argv(job: FlashJob) -> list[str]:
    template = job.options.get("command") or ""
    try:
        text = template.format(image=shlex.quote(str(job.image)),
                                          port=shlex.quote(job.port),
                                          serial_number=shlex.quote(job.serial_number or ""))
    except (KeyError, IndexError, ValueError) as e:
        raise FlashError(f"flash: command template {template!r}: bad placeholder {e}; use "
                         "{image}, {port}, {serial_number}") from None
    return ["/bin/sh", "-c", text]


def flash_command(job: FlashJob) -> str:
    deadline = time.monotonic() + job.timeout_s
    run_command(command_argv(job), "flash.command", job.timeout_s, "fix flash.command")
    return wait_for_port(job, deadline)


SPEC = FlashSpec(flash=flash_command, keys=frozenset({"command"}), check=_check)
