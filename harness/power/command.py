"""power.method command (harness/config/registry.py): the bench's own commands, templates
for off and on, or one for a whole cycle ({port} and {serial_number} filled in)."""

from __future__ import annotations

import shlex
from typing import Any

from harness.config.specs import PowerSpec, Section
from harness.power import PowerJob, off_then_on, run, tools_found

TEMPLATE_PLACEHOLDERS = ("port", "serial_number")


def _check(s: Section) -> dict[str, Any]:
    got = {k: s.template(k, TEMPLATE_PLACEHOLDERS) for k in ("off", "on", "cycle") if k in s}
    if not ("cycle" in got or "off" in got and "on" in got):
        raise s.fail(None, "method command needs off: and on: templates, or one cycle: "
                           "template (e.g. 'ykushcmd -d 1' and 'ykushcmd -u 1')")
    if "cycle" in got and ("off" in got or "on" in got):
        raise s.fail("cycle", "give either cycle: or off: and on:, not both")
    return got


def switch(job: PowerJob, on: bool | None) -> str | None:
    """on None: the one cycle template."""
    c = job.config
    key = "cycle" if on is None else "on" if on else "off"
    template = c.options[key]
    argv = shlex.split(template.format(port=job.port, serial_number=job.serial_number or ""))
    run(argv, f"command {key} ({argv[0] if argv else 'empty'})", c.timeout_s,
        f"check power.{key} runs by hand")
    return None


def cycle(job: PowerJob) -> str | None:
    """The cycle template when there is one, else off and on."""
    return switch(job, None) if "cycle" in job.config.options else off_then_on(job, switch)


def ready(job: PowerJob) -> str:
    c = job.config
    templates = [c.options[k] for k in ("off", "on", "cycle") if c.options.get(k)]
    return tools_found(c, [shlex.split(t)[0] for t in templates if shlex.split(t)])


SPEC = PowerSpec(keys=frozenset({"off", "on", "cycle"}), check=_check, switch=switch,
                 cycle=cycle, ready=ready)
