"""rig_config.yaml: load and validate, with every problem a one-line error naming the file,
the line, the key and the fix.

schema.py holds the dataclasses the harness uses, yaml_lines.py the YAML reader that keeps
lines, targets.py a target's shared rules, loader.py load_config, overrides.py the command
line's --overlay and --firmware. What a bench kind, GPIO backend, power or flash method adds
is its own spec, found through registry.py: this package imports no backend.
"""

from harness.config.loader import load_config
from harness.config.overrides import load_with, with_firmware, with_overlay
from harness.config.schema import (
    Budgets,
    CompareConfig,
    ConfigError,
    FirmwareConfig,
    FlashConfig,
    GpioConfig,
    PowerConfig,
    RigConfig,
    SerialConfig,
    TargetConfig,
    Wire,
    Wiring,
)

__all__ = ["Budgets", "CompareConfig", "ConfigError", "FirmwareConfig", "FlashConfig",
           "GpioConfig", "PowerConfig", "RigConfig", "SerialConfig", "TargetConfig", "Wire",
           "Wiring", "load_config", "load_with", "with_firmware", "with_overlay"]
