"""power.method sysfs (harness/config/registry.py): the Linux USB port's `disable` file
(1 cuts the port, 0 restores it)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.specs import PowerSpec, Section
from harness.power import PowerError, PowerJob

if TYPE_CHECKING:
    from harness.config import PowerConfig


def _check(s: Section) -> dict[str, Any]:
    path = s.path("path")
    if path is None or path.name != "disable":
        raise s.fail("path", "expected the USB port's `disable` file, e.g. "
                             "/sys/bus/usb/devices/1-1:1.0/1-1-port2/disable")
    return {"path": path}


def describe(c: PowerConfig) -> str:
    return f"sysfs {c.options['path']}"


def switch(job: PowerJob, on: bool) -> str | None:
    path = Path(job.config.options["path"])
    box: list[BaseException | None] = []

    def write() -> None:
        try:
            path.write_text("0" if on else "1")
            box.append(None)
        except OSError as e:
            box.append(e)

    t = threading.Thread(target=write, name="power-sysfs", daemon=True)
    t.start()
    t.join(job.config.timeout_s)  # a kernel write can block while the hub works
    if not box:
        raise PowerError(f"power: sysfs: writing {path} did not finish within "
                         f"{job.config.timeout_s:g} s; check the hub, or raise power.timeout_s")
    e = box[0]
    if isinstance(e, PermissionError):
        raise PowerError(f"power: sysfs: cannot write {path} (permission denied); run as root "
                         "or give the bench user write access to it (a udev rule)")
    if e is not None:
        raise PowerError(f"power: sysfs: cannot write {path} ({e.strerror or e}); give the "
                         "port's `disable` file, e.g. /sys/bus/usb/devices/1-1:1.0/1-1-port2/"
                         "disable, in power.path")
    return None


def ready(job: PowerJob) -> str:
    path = job.config.options["path"]
    if not os.access(path, os.W_OK):
        raise PowerError(f"power: sysfs: {path} is missing or not writable; give the "
                         "port's `disable` file in power.path and run as root (or a udev "
                         "rule)")
    return f"sysfs: {path} is writable (not switched by doctor)"


SPEC = PowerSpec(needs=("path",), check=_check, switch=switch, ready=ready, describe=describe)
