"""The power methods' config specs (harness/config/registry.py): the keys of `power:` each
needs and takes, and its checks. The simulated bench's method is harness/sim/power.py's."""

from __future__ import annotations

import re
from typing import Any

from harness.config.specs import PowerSpec, Section
from harness.config.yaml_lines import show
from harness.power import switch_command, switch_sysfs, switch_uhubctl

TEMPLATE_PLACEHOLDERS = ("port", "serial_number")


def _uhubctl(s: Section) -> dict[str, Any]:
    v = s.raw("port")
    if isinstance(v, bool) or not re.fullmatch(r"\d+(,\d+)*", str(v)):
        raise s.fail("port", f"expected a hub port number like 3 (or '1,3'), got {show(v)}; "
                             "`uhubctl` lists the hub's ports")
    return {"location": s.string("location"), "port": str(v)}


def _sysfs(s: Section) -> dict[str, Any]:
    path = s.path("path")
    if path is None or path.name != "disable":
        raise s.fail("path", "expected the USB port's `disable` file, e.g. "
                             "/sys/bus/usb/devices/1-1:1.0/1-1-port2/disable")
    return {"path": path}


def _command(s: Section) -> dict[str, Any]:
    got = {k: s.template(k, TEMPLATE_PLACEHOLDERS) for k in ("off", "on", "cycle") if k in s}
    if not ("cycle" in got or "off" in got and "on" in got):
        raise s.fail(None, "method command needs off: and on: templates, or one cycle: "
                           "template (e.g. 'ykushcmd -d 1' and 'ykushcmd -u 1')")
    if "cycle" in got and ("off" in got or "on" in got):
        raise s.fail("cycle", "give either cycle: or off: and on:, not both")
    return got


UHUBCTL = PowerSpec(needs=("location", "port"), check=_uhubctl, switch=switch_uhubctl)
SYSFS = PowerSpec(needs=("path",), check=_sysfs, switch=switch_sysfs)
COMMAND = PowerSpec(keys=frozenset({"off", "on", "cycle"}), check=_command,
                    switch=switch_command)
