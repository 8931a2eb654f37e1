"""Command-line overrides of a loaded config: --overlay and --firmware, each checked as the
loader checks the file (one line naming the option and the fix)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from harness.config.loader import load_config
from harness.config.registry import KIND, spec
from harness.config.schema import ConfigError, RigConfig


def with_overlay(cfg: RigConfig, overlay: str | Path) -> RigConfig:
    """The --overlay option: every sim target runs the build with this module overlay."""
    p = Path(overlay).expanduser().resolve()
    if not p.is_dir():
        raise ConfigError(f"--overlay {overlay}: directory does not exist; give the directory "
                          "that holds the replacement modules (e.g. an asyncio/ package)")
    targets = [dataclasses.replace(t, firmware=dataclasses.replace(t.firmware, overlay=p))
               if spec(KIND, t.kind).takes_overlay else t for t in cfg.targets]
    return RigConfig(cfg.path, targets, cfg.compare)


def with_firmware(cfg: RigConfig, executable: str | Path) -> RigConfig:
    """The --firmware option on a simulated bench: every sim target runs this MicroPython
    unix-port executable (the build under test) instead of its configured one."""
    p = Path(executable).expanduser().resolve()
    uf2 = p.suffix.lower() == ".uf2"  # an RP2 image: for targets that run or flash it, not sim
    sim = not uf2 and any(spec(KIND, t.kind).simulated for t in cfg.targets)
    if not p.is_file() or sim and not os.access(p, os.X_OK):
        raise ConfigError(f"--firmware {executable}: not an executable file; give a MicroPython "
                          "unix-port build (e.g. ports/unix/build-standard/micropython)"
                          if sim else f"--firmware {executable}: no such file; give the "
                          "firmware image to flash")
    # a serial target with a flash method flashes it; other serial targets keep their board
    targets = [t if uf2 and spec(KIND, t.kind).simulated else
               dataclasses.replace(t, firmware=dataclasses.replace(t.firmware, executable=p))
               if spec(KIND, t.kind).simulated else
               dataclasses.replace(t, firmware=dataclasses.replace(t.firmware, image=p))
               if t.flash is not None or spec(KIND, t.kind).runs_image else t
               for t in cfg.targets]
    return RigConfig(cfg.path, targets, cfg.compare)


def load_with(path: str | Path, overlay: str | Path | None = None,
              firmware: str | Path | None = None, target: str | None = None) -> RigConfig:
    """The rig config with the command line applied: --overlay, --firmware, and --target (the
    run's only target); every problem a ConfigError as load_config's."""
    cfg = load_config(path)
    if overlay:
        cfg = with_overlay(cfg, overlay)
    if firmware:
        cfg = with_firmware(cfg, firmware)
    if target:
        cfg = RigConfig(cfg.path, [cfg.target(target)], cfg.compare)
    return cfg
