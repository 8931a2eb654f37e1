"""power.method uhubctl (harness/config/registry.py): a hub port with per-port power
switching, `uhubctl -l LOC -p PORT -a off|on`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from harness.config.specs import PowerSpec, Section
from harness.config.yaml_lines import show
from harness.power import PowerJob, run, tools_found

if TYPE_CHECKING:
    from harness.config import PowerConfig


def _check(s: Section) -> dict[str, Any]:
    v = s.raw("port")
    if isinstance(v, bool) or not re.fullmatch(r"\d+(,\d+)*", str(v)):
        raise s.fail("port", f"expected a hub port number like 3 (or '1,3'), got {show(v)}; "
                             "`uhubctl` lists the hub's ports")
    return {"location": s.string("location"), "port": str(v)}


def describe(c: PowerConfig) -> str:
    return f"uhubctl {c.options['location']} port {c.options['port']}"


def switch(job: PowerJob, on: bool) -> str | None:
    c = job.config
    run(["uhubctl", "-l", c.options["location"], "-p", c.options["port"],
         "-a", "on" if on else "off"],
        f"uhubctl {'on' if on else 'off'} ({describe(c)})", c.timeout_s,
        "install uhubctl, run it as root or add its udev rule, and check power.location and "
        "power.port against what `uhubctl` lists (the hub must switch per port)")
    return None


def ready(job: PowerJob) -> str:
    return tools_found(job.config, ["uhubctl"])


SPEC = PowerSpec(needs=("location", "port"), check=_check, switch=switch, ready=ready,
                 describe=describe)
