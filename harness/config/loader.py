"""Load rig_config.yaml: read it keeping each value's line, check the top level, read each
target (harness/config/targets.py) and the compare: section."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.config.schema import CompareConfig, ConfigError, RigConfig
from harness.config.targets import SUBKEYS, check_shared_wires, read_target, target_keys
from harness.config.yaml_lines import TOP_LEVEL, Loader, decode, show, yaml_error

TOP_KEYS = {"version", "targets", "defaults", "compare"}


def load_config(path: str | Path) -> RigConfig:
    """Parse and validate a rig config; raise ConfigError with file:line on any problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the rig config ({e.strerror}); "
                          "pass --config with an existing file") from None
    text = decode(path, data)
    try:
        yaml_loader = yaml.SafeLoader(text)
        L = Loader(path.resolve(), yaml_loader)
        root_node = yaml_loader.get_single_node()
        root = L.convert(root_node) if root_node is not None else None
    except yaml.YAMLError as e:
        raise yaml_error(path, text, e) from None
    except RecursionError:
        raise ConfigError(f"{path.name}: nested too deeply to be a rig config; see the "
                          "shipped rig_config.yaml for its shape") from None
    if root is None:
        raise ConfigError(f"{path.name}:1: empty config; start from the shipped rig_config.yaml")
    if not isinstance(root.value, dict):
        raise L.fail(root.line, TOP_LEVEL, "the top level must be a mapping with version: and "
                                           f"targets:, got {show(root.value)}; start from the "
                                           "shipped rig_config.yaml")
    top = L.mapping(root, TOP_LEVEL, TOP_KEYS)
    if "version" in top:
        v = top["version"].value
        if isinstance(v, bool) or not isinstance(v, int) or v != 1:
            raise L.fail(top["version"].line, "version",
                         f"unsupported version {show(v)}; write version: 1")
    tn = L.require(top, root, "", "targets")
    if not isinstance(tn.value, list) or not tn.value:
        raise L.fail(tn.line, "targets", "expected a non-empty list of targets")
    defaults = top.get("defaults")
    if defaults is not None:
        if not isinstance(defaults.value, dict):
            raise L.fail(defaults.line, "defaults", "expected a mapping of target keys merged "
                                                    "under every target (e.g. irq_kinds: "
                                                    f"[hard]), got {show(defaults.value)}")
        L.mapping(defaults, "defaults", target_keys())
    targets = [read_target(L, t, i, defaults) for i, t in enumerate(tn.value)]
    seen: dict[str, int] = {}
    for i, t in enumerate(targets):
        if t.name in seen:
            raise L.fail(tn.value[i].line, f"targets[{i}].name",
                         f"{t.name!r} is also targets[{seen[t.name]}]; names must be unique")
        seen[t.name] = i
    check_shared_wires(L, tn, targets)
    compare = CompareConfig()
    if "compare" in top:
        cm = L.mapping(top["compare"], "compare", SUBKEYS["compare"])
        compare = CompareConfig(
            L.number(cm["alpha"], "compare.alpha", 0.0, True, 1.0) if "alpha" in cm else 0.01,
            L.sane(cm["effect_floor_us"], "compare.effect_floor_us", "compare.effect_floor_us")
            if "effect_floor_us" in cm else 100.0,
            L.number(cm["min_effect_size"], "compare.min_effect_size", 0.0, False, 1.0, False)
            if "min_effect_size" in cm else 0.3,
        )
    return RigConfig(L.file, targets, compare)
