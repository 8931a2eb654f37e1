"""flash.method rp2-uf2 (harness/config/registry.py): a Pico (RP2040/RP2350) put in its
UF2 bootloader, the image copied onto the drive it mounts."""

from __future__ import annotations

import glob
import os
import shutil
import time
from pathlib import Path

from harness.config.specs import FlashSpec
from harness.flash import FlashError, FlashJob, enter_bootloader, wait_for_port

DEFAULT_VOLUMES = ("/media/*/RPI-RP2", "/media/*/RP2350", "/run/media/*/RPI-RP2",
                   "/run/media/*/RP2350")


def find_volume(globs: list[str]) -> Path | None:
    for g in globs:
        for d in sorted(glob.glob(os.path.expanduser(g))):
            if (Path(d) / "INFO_UF2.TXT").is_file():
                return Path(d)
    return None


def flash_rp2_uf2(job: FlashJob) -> str:
    volume = job.options.get("volume")  # glob(s) of the bootloader's volume, ":"-separated
    globs = volume.split(os.pathsep) if volume else list(DEFAULT_VOLUMES)
    deadline = time.monotonic() + job.timeout_s
    enter_bootloader(job)
    while (vol := find_volume(globs)) is None:
        if time.monotonic() >= deadline:
            raise FlashError(f"flash: wait for the UF2 volume ({' or '.join(globs)} with "
                             f"INFO_UF2.TXT): not there within {job.timeout_s:g} s; mount it "
                             "(udisks/automount) or set flash.volume to where it appears")
        time.sleep(0.05)  # polling for a mount that is not there yet
    try:
        shutil.copyfile(job.image, vol / job.image.name)  # UF2: just copy, no rename
    except OSError as e:
        raise FlashError(f"flash: copy {job.image} to {vol}: {e.strerror}; check the volume "
                         "is mounted writable") from None
    return wait_for_port(job, deadline)


SPEC = FlashSpec(flash=flash_rp2_uf2, keys=frozenset({"volume"}))
