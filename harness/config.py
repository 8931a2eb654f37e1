"""rig_config.yaml: load and validate, with every problem a one-line error naming the
file, the line, the key and the fix."""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """A config problem: one line, with file:line, the key path and what to do."""


@dataclass(frozen=True)
class Wiring:
    stimulus_pi_gpio: int
    stimulus_board_pin: int | str
    ack_board_pin: int | str
    ack_pi_gpio: int
    reset_pi_gpio: int | None = None  # optional: Pi GPIO on the board's RUN/EN (reset) pin
    reset_board_pin: int | str | None = None


@dataclass(frozen=True)
class Budgets:
    latency_us: dict[str, float]
    wake_timeout_ms: float = 200.0
    device_timeout_s: float = 10.0


@dataclass(frozen=True)
class FirmwareConfig:
    executable: Path | None = None  # None: auto
    overlay: Path | None = None


@dataclass(frozen=True)
class SerialConfig:
    port: str = "auto"
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    baudrate: int = 115200


@dataclass(frozen=True)
class PigpioConfig:
    host: str = "127.0.0.1"
    port: int = 8888


@dataclass(frozen=True)
class CompareConfig:
    alpha: float = 0.01
    effect_floor_us: float = 100.0
    min_effect_size: float = 0.3


@dataclass(frozen=True)
class TargetConfig:
    name: str
    kind: str
    wiring: Wiring
    budgets: Budgets
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    serial: SerialConfig = field(default_factory=SerialConfig)
    pigpio: PigpioConfig = field(default_factory=PigpioConfig)
    irq_wake: str = "schedule"
    irq_latency_us: int = 0
    irq_jitter_us: int = 0
    irq_kinds: tuple[str, ...] = ("hard", "soft", "thread")
    second_waiter: str = "second-wins"
    known_issues: dict[str, str] = field(default_factory=dict)  # "test[kind]" -> why

    def to_dict(self) -> dict:
        """JSON-friendly copy for reports."""
        def conv(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [conv(x) for x in v]
            return v
        d = conv(dataclasses.asdict(self))
        w = self.wiring
        d["wiring"] = {
            "stimulus": {"pi_gpio": w.stimulus_pi_gpio, "board_pin": w.stimulus_board_pin},
            "ack": {"board_pin": w.ack_board_pin, "pi_gpio": w.ack_pi_gpio},
        }
        if w.reset_pi_gpio is not None:
            d["wiring"]["reset"] = {"pi_gpio": w.reset_pi_gpio, "board_pin": w.reset_board_pin}
        return d


@dataclass(frozen=True)
class RigConfig:
    path: Path
    targets: list[TargetConfig]
    compare: CompareConfig = field(default_factory=CompareConfig)

    def target(self, name: str) -> TargetConfig:
        for t in self.targets:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.targets)
        raise ConfigError(f"{self.path.name}: no target named {name!r} (known: {known})")


# ---- schema: key -> (type checker, default, allowed kinds) -----------------------------------

LATENCY_DEFAULT = {"p50": 2000.0, "p90": 3000.0, "p99": 5000.0, "max": 20000.0}
ENUMS = {
    "kind": ("sim", "serial"),
    "irq_wake": ("schedule", "poll"),
    "second_waiter": ("second-wins", "first-wins", "both-wake", "raises"),
}
IRQ_KINDS = ("hard", "soft", "thread")
TARGET_KEYS = {"name", "kind", "firmware", "irq_wake", "irq_latency_us", "irq_jitter_us",
               "irq_kinds", "second_waiter", "pigpio", "serial", "wiring", "budgets",
               "known_issues"}
SIM_ONLY = {"firmware", "irq_wake", "irq_latency_us", "irq_jitter_us"}
SUBKEYS = {
    "firmware": {"executable", "overlay"},
    "pigpio": {"host", "port"},
    "serial": {"port", "vid", "pid", "serial_number", "baudrate"},
    "wiring": {"stimulus", "ack", "reset"},
    "stimulus": {"pi_gpio", "board_pin"},
    "ack": {"board_pin", "pi_gpio"},
    "reset": {"pi_gpio", "board_pin"},
    "budgets": {"latency_us", "wake_timeout_ms", "device_timeout_s"},
    "latency_us": {"p50", "p90", "p99", "max"},
    "compare": {"alpha", "effect_floor_us", "min_effect_size"},
}
TOP_KEYS = {"version", "targets", "defaults", "compare"}
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class _Node:
    """A YAML value with the line it came from, so errors can point at it."""

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line


class _Loader:
    def __init__(self, path: Path, yaml_loader: yaml.SafeLoader) -> None:
        self.file = path
        self.fname = path.name
        self.yaml = yaml_loader

    def fail(self, line: int, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.fname}:{line}: {key}: {msg}")

    def convert(self, node: yaml.Node) -> _Node:
        """YAML node tree -> _Node tree (mappings as dicts of _Node), duplicate keys rejected."""
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, _Node] = {}
            for k, v in node.value:
                key = str(k.value)
                if key in out:
                    raise self.fail(k.start_mark.line + 1, key,
                                    f"duplicate key (first at line {out[key].line}); keep one")
                out[key] = self.convert(v)
                out[key].key_line = k.start_mark.line + 1  # type: ignore[attr-defined]
            return _Node(out, line)
        if isinstance(node, yaml.SequenceNode):
            return _Node([self.convert(v) for v in node.value], line)
        return _Node(self.yaml.construct_object(node, deep=True), line)

    # ---- typed getters -------------------------------------------------------------------
    def mapping(self, n: _Node, key: str, allowed: set[str]) -> dict[str, _Node]:
        if not isinstance(n.value, dict):
            raise self.fail(n.line, key, f"expected a mapping, got {_show(n.value)}")
        for k, v in n.value.items():
            if k not in allowed:
                close = difflib.get_close_matches(k, sorted(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"known keys: {', '.join(sorted(allowed))}"
                raise self.fail(getattr(v, "key_line", v.line), f"{key}.{k}",
                                f"unknown key; {hint}")
        return n.value

    def require(self, m: dict[str, _Node], parent: _Node, key: str, name: str) -> _Node:
        if name not in m:
            raise self.fail(parent.line, f"{key}.{name}" if key else name,
                            "missing; add it (see README, Config reference)")
        return m[name]

    def integer(self, n: _Node, key: str, lo: int | None = None, hi: int | None = None) -> int:
        v = n.value
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo) or \
                (hi is not None and v > hi):
            rng = f" {lo}-{hi}" if hi is not None else (f" >= {lo}" if lo is not None else "")
            raise self.fail(n.line, key, f"expected an integer{rng}, got {_show(v)}")
        return v

    def number(self, n: _Node, key: str, lo: float = 0.0, lo_open: bool = True,
               hi: float | None = None) -> float:
        v = n.value
        bad = isinstance(v, bool) or not isinstance(v, int | float)
        if not bad:
            bad = (v <= lo if lo_open else v < lo) or (hi is not None and v >= hi)
        if bad:
            rel = ">" if lo_open else ">="
            rng = f"{rel} {lo:g}" + (f" and < {hi:g}" if hi is not None else "")
            raise self.fail(n.line, key, f"expected a number {rng}, got {_show(v)}")
        return float(v)

    def string(self, n: _Node, key: str) -> str:
        if not isinstance(n.value, str) or not n.value:
            raise self.fail(n.line, key, f"expected a non-empty string, got {_show(n.value)}")
        return n.value

    def enum(self, n: _Node, key: str, choices: tuple[str, ...]) -> str:
        if n.value not in choices:
            raise self.fail(n.line, key, f"expected one of {' | '.join(choices)}, "
                                         f"got {_show(n.value)}")
        return n.value

    def pin(self, n: _Node, key: str) -> int | str:
        v = n.value
        if isinstance(v, bool) or not (isinstance(v, int) and v >= 0 or isinstance(v, str) and v):
            raise self.fail(n.line, key, f"expected a board pin number >= 0 or a name like "
                                         f"'GP2', got {_show(v)}")
        return v

    def path(self, n: _Node, key: str, must_be_dir: bool = False) -> Path | None:
        if n.value is None:
            return None
        p = Path(self.string(n, key)).expanduser()
        if not p.is_absolute():
            p = (self.file.parent / p).resolve()
        if must_be_dir and not p.is_dir():
            raise self.fail(n.line, key, f"directory {p} does not exist; create it or fix the path")
        return p


def _show(v: Any) -> str:
    return "nothing" if v is None else repr(v)


def _merge(defaults: _Node | None, target: _Node) -> _Node:
    """defaults under target, one level deep for nested sections."""
    if defaults is None or not isinstance(defaults.value, dict) or \
            not isinstance(target.value, dict):
        return target
    merged = dict(defaults.value)
    for k, v in target.value.items():
        if k in merged and isinstance(merged[k].value, dict) and isinstance(v.value, dict):
            merged[k] = _Node({**merged[k].value, **v.value}, v.line)
        else:
            merged[k] = v
    return _Node(merged, target.line)


def _target(L: _Loader, n: _Node, idx: int, defaults: _Node | None) -> TargetConfig:
    key = f"targets[{idx}]"
    m = L.mapping(_merge(defaults, n), key, TARGET_KEYS)
    name = L.string(L.require(m, n, key, "name"), f"{key}.name")
    if not NAME_RE.match(name):
        raise L.fail(m["name"].line, f"{key}.name", f"{name!r}: use letters, digits, _ . - only")
    kind = L.enum(L.require(m, n, key, "kind"), f"{key}.kind", ENUMS["kind"])
    if kind == "serial":
        for k in SIM_ONLY & m.keys():
            raise L.fail(m[k].line, f"{key}.{k}", "only for kind: sim; remove it")
        if "serial" not in m:
            raise L.fail(n.line, f"{key}.serial", "missing; a serial target needs serial.port")
    elif "serial" in m:
        raise L.fail(m["serial"].line, f"{key}.serial", "only for kind: serial; remove it")

    kw: dict[str, Any] = {"name": name, "kind": kind}
    if "firmware" in m:
        fm = L.mapping(m["firmware"], f"{key}.firmware", SUBKEYS["firmware"])
        exe = None
        if "executable" in fm and fm["executable"].value not in (None, "auto"):
            exe = L.path(fm["executable"], f"{key}.firmware.executable")
            if exe is not None and not exe.is_file():
                raise L.fail(fm["executable"].line, f"{key}.firmware.executable",
                             f"{exe} does not exist; give a micropython executable or 'auto'")
        ov = L.path(fm["overlay"], f"{key}.firmware.overlay", must_be_dir=True) \
            if "overlay" in fm else None
        kw["firmware"] = FirmwareConfig(exe, ov)
    if "known_issues" in m:
        km = m["known_issues"]
        if not isinstance(km.value, dict):
            raise L.fail(km.line, f"{key}.known_issues", "expected a mapping of "
                                                         "'test_name[kind]': reason")
        kw["known_issues"] = {
            k: L.string(v, f"{key}.known_issues.{k}") for k, v in km.value.items()}
    for k in ("irq_wake", "second_waiter"):
        if k in m:
            kw[k] = L.enum(m[k], f"{key}.{k}", ENUMS[k])
    for k in ("irq_latency_us", "irq_jitter_us"):
        if k in m:
            kw[k] = L.integer(m[k], f"{key}.{k}", lo=0)
    if "irq_kinds" in m:
        ik = m["irq_kinds"]
        if not isinstance(ik.value, list) or not ik.value:
            raise L.fail(ik.line, f"{key}.irq_kinds", "expected a non-empty list of "
                                                      f"{' | '.join(IRQ_KINDS)}")
        kw["irq_kinds"] = tuple(L.enum(x, f"{key}.irq_kinds", IRQ_KINDS) for x in ik.value)
    if "pigpio" in m:
        pm = L.mapping(m["pigpio"], f"{key}.pigpio", SUBKEYS["pigpio"])
        kw["pigpio"] = PigpioConfig(
            L.string(pm["host"], f"{key}.pigpio.host") if "host" in pm else "127.0.0.1",
            L.integer(pm["port"], f"{key}.pigpio.port", 1, 65535) if "port" in pm else 8888)
    if "serial" in m:
        sm = L.mapping(m["serial"], f"{key}.serial", SUBKEYS["serial"])
        port = L.string(L.require(sm, m["serial"], f"{key}.serial", "port"), f"{key}.serial.port")
        vid = L.integer(sm["vid"], f"{key}.serial.vid", 0, 0xFFFF) if "vid" in sm else None
        pid = L.integer(sm["pid"], f"{key}.serial.pid", 0, 0xFFFF) if "pid" in sm else None
        sn = str(sm["serial_number"].value) if "serial_number" in sm else None
        if port == "auto" and vid is None and pid is None and sn is None:
            raise L.fail(sm["port"].line, f"{key}.serial.port",
                         "'auto' needs vid, pid or serial_number to find the board")
        baud = L.integer(sm["baudrate"], f"{key}.serial.baudrate", 1) if "baudrate" in sm \
            else 115200
        kw["serial"] = SerialConfig(port, vid, pid, sn, baud)

    wn = L.require(m, n, key, "wiring")
    wm = L.mapping(wn, f"{key}.wiring", SUBKEYS["wiring"])
    st = L.mapping(L.require(wm, wn, f"{key}.wiring", "stimulus"), f"{key}.wiring.stimulus",
                   SUBKEYS["stimulus"])
    ac = L.mapping(L.require(wm, wn, f"{key}.wiring", "ack"), f"{key}.wiring.ack",
                   SUBKEYS["ack"])
    sk, ak = f"{key}.wiring.stimulus", f"{key}.wiring.ack"
    s_gpio = L.integer(L.require(st, wm["stimulus"], sk, "pi_gpio"), f"{sk}.pi_gpio", 0, 53)
    s_pin = L.pin(L.require(st, wm["stimulus"], sk, "board_pin"), f"{sk}.board_pin")
    a_pin = L.pin(L.require(ac, wm["ack"], ak, "board_pin"), f"{ak}.board_pin")
    a_gpio = L.integer(L.require(ac, wm["ack"], ak, "pi_gpio"), f"{ak}.pi_gpio", 0, 53)
    if s_gpio == a_gpio:
        raise L.fail(ac["pi_gpio"].line, f"{ak}.pi_gpio",
                     f"Pi GPIO {a_gpio} is already wired to the stimulus; use another GPIO")
    if s_pin == a_pin:
        raise L.fail(ac["board_pin"].line, f"{ak}.board_pin",
                     f"board pin {a_pin!r} is already wired to the stimulus; use another pin")
    r_gpio: int | None = None
    r_pin: int | str | None = None
    if "reset" in wm:
        rk = f"{key}.wiring.reset"
        rm = L.mapping(wm["reset"], rk, SUBKEYS["reset"])
        r_gpio = L.integer(L.require(rm, wm["reset"], rk, "pi_gpio"), f"{rk}.pi_gpio", 0, 53)
        r_pin = L.pin(L.require(rm, wm["reset"], rk, "board_pin"), f"{rk}.board_pin")
        if r_gpio in (s_gpio, a_gpio):
            raise L.fail(rm["pi_gpio"].line, f"{rk}.pi_gpio",
                         f"Pi GPIO {r_gpio} is already wired to the "
                         f"{'stimulus' if r_gpio == s_gpio else 'ack'}; use another GPIO")
    kw["wiring"] = Wiring(s_gpio, s_pin, a_pin, a_gpio, r_gpio, r_pin)

    lat = dict(LATENCY_DEFAULT)
    wake_ms, dev_s = 200.0, 10.0
    if "budgets" in m:
        bk = f"{key}.budgets"
        bm = L.mapping(m["budgets"], bk, SUBKEYS["budgets"])
        if "latency_us" in bm:
            lm = L.mapping(bm["latency_us"], f"{bk}.latency_us", SUBKEYS["latency_us"])
            for q, v in lm.items():
                lat[q] = L.number(v, f"{bk}.latency_us.{q}")
            order = ["p50", "p90", "p99", "max"]
            for a, b in zip(order, order[1:], strict=False):
                if lat[a] > lat[b]:
                    line = (lm.get(b) or lm.get(a) or bm["latency_us"]).line
                    raise L.fail(line, f"{bk}.latency_us", f"{a} ({lat[a]:g}) > {b} ({lat[b]:g}); "
                                 "percentile budgets must not decrease")
        if "wake_timeout_ms" in bm:
            wake_ms = L.number(bm["wake_timeout_ms"], f"{bk}.wake_timeout_ms")
        if "device_timeout_s" in bm:
            dev_s = L.number(bm["device_timeout_s"], f"{bk}.device_timeout_s")
    kw["budgets"] = Budgets(lat, wake_ms, dev_s)
    return TargetConfig(**kw)


def _line_of(node: _Node, *keys: str) -> int:
    """Line of a nested key under a target node, or the deepest one that exists."""
    line = node.line
    for k in keys:
        if not isinstance(node.value, dict) or k not in node.value:
            break
        node = node.value[k]
        line = node.line
    return line


def _check_shared_wires(L: _Loader, tn: _Node, targets: list[TargetConfig]) -> None:
    """Real benches can share a pigpiod: a Pi GPIO or a serial port used by two targets is a
    wire declared twice. (Each sim target has its own simulated Pi and board.)"""
    gpios: dict[tuple[str, int, int], int] = {}
    ports: dict[str, int] = {}
    for i, t in enumerate(targets):
        if t.kind != "serial":
            continue
        node = tn.value[i]
        for role, gpio in (("stimulus", t.wiring.stimulus_pi_gpio),
                           ("ack", t.wiring.ack_pi_gpio), ("reset", t.wiring.reset_pi_gpio)):
            if gpio is None:
                continue
            key = (t.pigpio.host, t.pigpio.port, gpio)
            if key in gpios:
                raise L.fail(_line_of(node, "wiring", role, "pi_gpio"),
                             f"targets[{i}].wiring.{role}.pi_gpio",
                             f"Pi GPIO {gpio} on {t.pigpio.host}:{t.pigpio.port} is already "
                             f"wired for targets[{gpios[key]}]; use another GPIO")
            gpios[key] = i
        if t.serial.port != "auto":
            if t.serial.port in ports:
                raise L.fail(_line_of(node, "serial", "port"), f"targets[{i}].serial.port",
                             f"{t.serial.port} is already targets[{ports[t.serial.port]}]'s "
                             "board; each target needs its own port")
            ports[t.serial.port] = i


def load_config(path: str | Path) -> RigConfig:
    """Parse and validate a rig config; raise ConfigError with file:line on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the rig config ({e.strerror}); "
                          "pass --config with an existing file") from None
    yaml_loader = yaml.SafeLoader(text)
    L = _Loader(path.resolve(), yaml_loader)
    try:
        root_node = yaml_loader.get_single_node()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise ConfigError(f"{path.name}:{line}: invalid YAML: "
                          f"{getattr(e, 'problem', None) or e}") from None
    if root_node is None:
        raise ConfigError(f"{path.name}:1: empty config; start from the shipped rig_config.yaml")
    root = L.convert(root_node)
    top = L.mapping(root, "(top level)", TOP_KEYS)
    if "version" in top and top["version"].value != 1:
        raise L.fail(top["version"].line, "version", f"unsupported {top['version'].value!r}; use 1")
    tn = L.require(top, root, "", "targets")
    if not isinstance(tn.value, list) or not tn.value:
        raise L.fail(tn.line, "targets", "expected a non-empty list of targets")
    defaults = top.get("defaults")
    targets = [_target(L, t, i, defaults) for i, t in enumerate(tn.value)]
    seen: dict[str, int] = {}
    for i, t in enumerate(targets):
        if t.name in seen:
            raise L.fail(tn.value[i].line, f"targets[{i}].name",
                         f"{t.name!r} is also targets[{seen[t.name]}]; names must be unique")
        seen[t.name] = i
    _check_shared_wires(L, tn, targets)
    compare = CompareConfig()
    if "compare" in top:
        cm = L.mapping(top["compare"], "compare", SUBKEYS["compare"])
        compare = CompareConfig(
            L.number(cm["alpha"], "compare.alpha", 0.0, True, 1.0) if "alpha" in cm else 0.01,
            L.number(cm["effect_floor_us"], "compare.effect_floor_us", 0.0, False)
            if "effect_floor_us" in cm else 100.0,
            L.number(cm["min_effect_size"], "compare.min_effect_size", 0.0, False, 1.0000001)
            if "min_effect_size" in cm else 0.3,
        )
    return RigConfig(L.file, targets, compare)


def with_overlay(cfg: RigConfig, overlay: str | Path) -> RigConfig:
    """The --overlay option: every sim target runs the build with this module overlay."""
    p = Path(overlay).expanduser().resolve()
    if not p.is_dir():
        raise ConfigError(f"--overlay {overlay}: directory does not exist; give the directory "
                          "that holds the replacement modules (e.g. an asyncio/ package)")
    targets = [dataclasses.replace(t, firmware=FirmwareConfig(t.firmware.executable, p))
               if t.kind == "sim" else t for t in cfg.targets]
    return RigConfig(cfg.path, targets, cfg.compare)
