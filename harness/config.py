"""rig_config.yaml: load and validate, with every problem a one-line error naming the
file, the line, the key and the fix."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.benches import BENCH_KINDS, KIND_ONLY_KEYS
from harness.gpio import GPIO_BACKENDS, GPIO_DEFAULT_PORTS
from harness.power import POWER_METHODS
from harness.profiles import EMULATED, PROFILES
from harness.sources import IRQ_SOURCES
from harness.stats import QUANTILE_NAMES


class ConfigError(Exception):
    """A config problem: one line, with file:line, the key path and what to do."""


@dataclass(frozen=True)
class Wire:
    """One jumper between a Pi GPIO and a board pin (a number, or a name like "GP2"/"RUN")."""

    pi_gpio: int
    board_pin: int | str


@dataclass(frozen=True)
class Wiring:
    stimulus: Wire  # Pi output -> board IRQ pin
    ack: Wire  # board output -> Pi input
    reset: Wire | None = None  # optional: Pi GPIO on the board's RUN/EN pin
    stimulus_sense: int | None = None  # optional: a Pi input jumpered to the stimulus wire


@dataclass(frozen=True)
class Budgets:
    latency_us: dict[str, float] = field(default_factory=lambda: {
        "p50": 2000.0, "p90": 3000.0, "p99": 5000.0, "max": 20000.0})
    wake_timeout_ms: float = 200.0
    device_timeout_s: float = 10.0


@dataclass(frozen=True)
class FirmwareConfig:
    executable: Path | None = None  # None: auto
    overlay: Path | None = None
    image: Path | None = None  # serial: the image to flash before the run


FLASH_METHODS = ("rp2-uf2", "esptool", "dfu-util", "command")


@dataclass(frozen=True)
class FlashConfig:
    """serial: how firmware.image gets onto the board (harness/flash.py)."""

    method: str
    volume: str | None = None  # rp2-uf2: glob of the bootloader's volume
    chip: str | None = None  # esptool: esp32, esp32s3, ...
    command: str | None = None  # command: template with {image} {port} {serial_number}
    timeout_s: float = 60.0


SIM_OFF_S = 0.2  # a virtual board has nothing to discharge: off as long as a hard reset is


@dataclass(frozen=True)
class PowerConfig:
    """How the rig switches the board's power, the last recovery step (harness/power.py)."""

    method: str
    location: str | None = None  # uhubctl: the hub's location (-l), e.g. "1-1.2"
    port: str | None = None  # uhubctl: the hub port(s) (-p), e.g. "3" or "1,3"
    path: Path | None = None  # sysfs: the USB port's `disable` file
    off: str | None = None  # command: templates with {port} {serial_number}
    on: str | None = None
    cycle: str | None = None  # command: one template that switches off and on
    off_s: float = 2.0  # how long the board stays unpowered
    timeout_s: float = 30.0  # each switching step, and the board's port coming back


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
    flash: FlashConfig | None = None
    power: PowerConfig | None = None  # sim targets: method sim unless `power: null`
    gpio_backend: str = "pigpio"  # harness.gpio.GPIO_BACKENDS
    gpio_chip: int | None = None  # rgpio: the gpiochip of the header's lines (backend default 0)
    pigpio: PigpioConfig = field(default_factory=PigpioConfig)  # the GPIO daemon's address
    irq_wake: str = "schedule"
    irq_latency_us: int = 0
    irq_jitter_us: int = 0
    irq_kinds: tuple[str, ...] = IRQ_SOURCES
    second_waiter: str = "second-wins"
    known_issues: dict[str, str] = field(default_factory=dict)  # "test[kind]" -> why
    profile: str = "auto"  # harness.profiles: auto (the probe's port) or a profile's name
    emulate: str | None = None  # sim only: the virtual board behaves as this port's
    # the keys the config gave (defaults: included), e.g. "irq_kinds", "budgets.latency_us.p50":
    # they win over the profile's defaults
    explicit: frozenset[str] = frozenset()
    place: str | None = None  # labgrid: the place to acquire (harness/lab.py)
    lg_wait_s: float = 0.0  # labgrid: how long to wait for a held place (--lg-wait)

    def to_dict(self) -> dict:
        """JSON-friendly copy for reports."""
        def conv(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list | tuple | frozenset):
                return [conv(x) for x in (sorted(v) if isinstance(v, frozenset) else v)]
            return v
        d = conv(dataclasses.asdict(self))
        for optional in ("reset", "stimulus_sense"):
            if d["wiring"][optional] is None:
                del d["wiring"][optional]
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

ENUMS = {
    "kind": tuple(BENCH_KINDS),
    "irq_wake": ("schedule", "poll"),
    "second_waiter": ("second-wins", "first-wins", "both-wake", "raises"),
    "profile": ("auto", *PROFILES),
    "emulate": EMULATED,
}
IRQ_KINDS = IRQ_SOURCES
ESP_CHIPS = ("esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6", "esp32h2", "esp32c5",
             "esp32p4")  # harness.flash.ESP_OFFSETS
TARGET_KEYS = {"name", "kind", "firmware", "irq_wake", "irq_latency_us", "irq_jitter_us",
               "irq_kinds", "second_waiter", "gpio", "pigpio", "serial", "wiring", "budgets",
               "known_issues", "flash", "power", "profile", "emulate", "place"}
SUBKEYS = {
    "firmware": {"executable", "overlay", "image"},
    "flash": {"method", "volume", "chip", "command", "timeout_s"},
    "power": {"method", "location", "port", "path", "off", "on", "cycle", "off_s", "timeout_s"},
    "gpio": {"backend", "host", "port", "chip"},
    "pigpio": {"host", "port"},
    "serial": {"port", "vid", "pid", "serial_number", "baudrate"},
    "wiring": {"stimulus", "ack", "reset", "stimulus_sense"},
    "stimulus": {"pi_gpio", "board_pin"},
    "ack": {"board_pin", "pi_gpio"},
    "reset": {"pi_gpio", "board_pin"},
    "budgets": {"latency_us", "wake_timeout_ms", "device_timeout_s"},
    "latency_us": set(QUANTILE_NAMES),
    "compare": {"alpha", "effect_floor_us", "min_effect_size"},
}
TOP_KEYS = {"version", "targets", "defaults", "compare"}
# Every numeric key's sane range (inclusive) and unit: a value outside it is a typo or a unit
# mix-up (a sub-microsecond timeout, a latency budget of days), never a bench to test.
SANE: dict[str, tuple[float, float, str]] = {
    "budgets.latency_us": (1, 10_000_000, "µs"),
    "budgets.wake_timeout_ms": (1, 60_000, "ms"),
    "budgets.device_timeout_s": (1, 600, "s"),
    "irq_latency_us": (0, 1_000_000, "µs"),
    "irq_jitter_us": (0, 1_000_000, "µs"),
    "flash.timeout_s": (1, 3600, "s"),
    "power.off_s": (0.01, 60, "s"),
    "power.timeout_s": (1, 600, "s"),
    "serial.baudrate": (300, 16_000_000, "baud"),
    "wiring.board_pin": (0, 1023, ""),
    "compare.effect_floor_us": (0, 10_000_000, "µs"),
}
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
PIGPIO_GPIOS = (0, 31)  # pigpio callbacks and notifications only cover bank 1
BOARD_PIN_RE = re.compile(r"^(?:GP)?(\d+)$", re.IGNORECASE)  # 2, "2", "GP2", "gp2": one pin
TOP_LEVEL = "(top level)"


class _Node:
    """A YAML value with the line it came from, so errors can point at it."""

    def __init__(self, value: Any, line: int, key_line: int | None = None) -> None:
        self.value = value
        self.line = line
        self.key_line = key_line if key_line is not None else line


def _subkey(parent: str, child: str) -> str:
    return child if parent == TOP_LEVEL else f"{parent}.{child}"


def _one_line(s: str) -> str:
    return " ".join(str(s).split("\n"))


class _Loader:
    def __init__(self, path: Path, yaml_loader: yaml.SafeLoader) -> None:
        self.file = path
        self.fname = path.name
        self.yaml = yaml_loader
        self._done: dict[int, _Node] = {}  # id(yaml node) -> converted: an alias is one value
        self._open: set[int] = set()  # the nodes being converted: an alias to one recurses

    def fail(self, line: int, key: str, msg: str) -> ConfigError:
        return ConfigError(_one_line(f"{self.fname}:{line}: {key}: {msg}"))

    def convert(self, node: yaml.Node, key: str = TOP_LEVEL) -> _Node:
        """YAML node tree -> _Node tree (mappings as dicts of _Node), duplicate keys rejected.
        Each YAML node is converted once, so aliases share their value and a recursive one
        (`a: &x [*x]`) is an error instead of an endless structure."""
        line = node.start_mark.line + 1
        if id(node) in self._done:
            return self._done[id(node)]
        if id(node) in self._open:
            raise self.fail(line, key, "recursive alias: the anchored value contains itself "
                                       "(*alias inside its own &anchor); write the value out")
        self._open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, _Node] = {}
            for k, v in node.value:
                kline = k.start_mark.line + 1
                if not isinstance(k, yaml.ScalarNode):
                    raise self.fail(kline, key, "a key must be a plain name, not a list or "
                                                "a mapping; use a name like the README's")
                name = str(k.value)
                if name in out:
                    raise self.fail(kline, name, f"duplicate key (first at line "
                                                 f"{out[name].key_line}); keep one")
                child = self.convert(v, _subkey(key, name))
                out[name] = _Node(child.value, child.line, kline)
            result = _Node(out, line)
        elif isinstance(node, yaml.SequenceNode):
            result = _Node([self.convert(v, f"{key}[{i}]") for i, v in enumerate(node.value)],
                           line)
        else:
            result = _Node(self.scalar(node, key), line)
        self._open.discard(id(node))
        self._done[id(node)] = result
        return result

    def scalar(self, node: yaml.Node, key: str) -> Any:
        try:
            return self.yaml.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            line = node.start_mark.line + 1
            if node.tag not in type(self.yaml).yaml_constructors:
                tag = node.tag.replace("tag:yaml.org,2002:", "!!")
                raise self.fail(line, key, f"unknown YAML tag {tag}; remove it") from None
            kind = node.tag.rsplit(":", 1)[-1]
            raise self.fail(line, key, f"{_show(str(node.value))} is not a valid YAML {kind}; "
                                       "fix it, or quote it if it is text") from None

    # ---- typed getters -------------------------------------------------------------------
    def mapping(self, n: _Node, key: str, allowed: set[str]) -> dict[str, _Node]:
        if not isinstance(n.value, dict):
            raise self.fail(n.line, key, f"expected a mapping, got {_show(n.value)}")
        for k, v in n.value.items():
            if k not in allowed:
                close = difflib.get_close_matches(k, sorted(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"known keys: {', '.join(sorted(allowed))}"
                raise self.fail(v.key_line, _subkey(key, k), f"unknown key; {hint}")
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
               hi: float | None = None, hi_open: bool = True) -> float:
        """A finite number in range (by default > 0): YAML booleans, .nan and .inf are not
        numbers here, and a negative budget or threshold means nothing."""
        v = n.value
        f = math.nan
        if isinstance(v, int | float) and not isinstance(v, bool):
            try:
                f = float(v)
            except OverflowError:
                pass
        ok = math.isfinite(f) and (f > lo if lo_open else f >= lo) and \
            (hi is None or (f < hi if hi_open else f <= hi))
        if not ok:
            rng = f"{'>' if lo_open else '>='} {lo:g}" + \
                (f" and {'<' if hi_open else '<='} {hi:g}" if hi is not None else "")
            raise self.fail(n.line, key, f"expected a finite number {rng}, got {_show(v)}")
        return f

    def pi_gpio(self, n: _Node, key: str, wire: str) -> int:
        lo, hi = PIGPIO_GPIOS
        v = n.value
        if isinstance(v, int) and not isinstance(v, bool) and not lo <= v <= hi:
            raise self.fail(n.line, key, f"the {wire} wire's Pi GPIO {v} is outside {lo}-{hi}: "
                                         "pigpio callbacks and notifications only cover bank 1 "
                                         f"(GPIO {lo}-{hi}); wire it to a GPIO {lo}-{hi}")
        return self.integer(n, key, lo, hi)

    def usb_id(self, n: _Node, key: str) -> int:
        v = n.value
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFF:
            raise self.fail(n.line, key, f"expected a 16-bit USB id 0x0000-0xffff, got "
                                         f"{_show_usb_id(v)}; write it in hex like 0x2e8a "
                                         "(unquoted)")
        return v

    def string(self, n: _Node, key: str) -> str:
        if not isinstance(n.value, str) or not n.value:
            raise self.fail(n.line, key, f"expected a non-empty string, got {_show(n.value)}")
        return n.value

    def enum(self, n: _Node, key: str, choices: tuple[str, ...]) -> str:
        if n.value not in choices:
            raise self.fail(n.line, key, f"expected one of {' | '.join(choices)}, "
                                         f"got {_show(n.value)}")
        return n.value

    def sane(self, n: _Node, key: str, kind: str, integer: bool = False) -> float:
        """A number in its key's sane range (SANE[kind]): the error names the range and unit."""
        lo, hi, unit = SANE[kind]
        v = n.value
        ok = isinstance(v, int | float) and not isinstance(v, bool) and \
            (not integer or isinstance(v, int))
        try:
            ok = ok and lo <= v <= hi and math.isfinite(float(v))
        except OverflowError:
            ok = False
        if not ok:
            what = "an integer" if integer else "a number"
            raise self.fail(n.line, key, f"expected {what} from {_plain(lo)} to {_plain(hi)}"
                                         f"{' ' + unit if unit else ''}, got {_show(v)}")
        return v if integer else float(v)

    def pin(self, n: _Node, key: str) -> int | str:
        v = n.value
        if isinstance(v, bool) or not (isinstance(v, int) and v >= 0 or isinstance(v, str) and v):
            raise self.fail(n.line, key, f"expected a board pin number >= 0 or a name like "
                                         f"'GP2', got {_show(v)}")
        if isinstance(v, int):
            return int(self.sane(n, key, "wiring.board_pin", integer=True))
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
    """A YAML value as the user wrote it, or its kind: never a Python repr of a container."""
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return f"{'true' if v else 'false'} (a YAML boolean)"
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        return repr(v) if math.isfinite(v) else (".inf" if v > 0 else "-.inf")
    if isinstance(v, int):
        return str(v) if abs(v) < 10**20 else f"a {len(str(abs(v)))}-digit number"
    if isinstance(v, str):
        return repr(v if len(v) <= 60 else v[:57] + "...")
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"a YAML {type(v).__name__}"  # date, datetime, bytes, set


def _plain(x: float) -> str:
    """1000000, not 1e+06: a range bound as a person would type it."""
    return str(int(x)) if x == int(x) else f"{x:g}"


def _show_usb_id(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:#06x}" if v >= 0 else f"-{-v:#06x}"
    return _show(v)


def _pin_id(pin: int | str) -> int | str:
    """One name per machine.Pin: 2, "2", "GP2" and "gp2" are the same pin; other names
    ("X1", "D5") are compared as written."""
    if isinstance(pin, int):
        return pin
    m = BOARD_PIN_RE.match(pin)
    return int(m.group(1)) if m else pin


def _merge(defaults: _Node | None, target: _Node) -> _Node:
    """defaults (already checked to be a mapping) under target, one level deep for nested
    sections."""
    if defaults is None or not isinstance(target.value, dict):
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
    bench = BENCH_KINDS[kind]
    present = set(m) | {f"{k}.{s}" for k in m if isinstance(m[k].value, dict)
                        for s in m[k].value}
    for k in sorted((KIND_ONLY_KEYS - bench.only_keys) & present):
        owner = next(b.name for b in BENCH_KINDS.values() if k in b.only_keys)
        top, _, sub = k.partition(".")
        line = m[top].value[sub].line if sub else m[top].line
        raise L.fail(line, f"{key}.{k}", f"only for kind: {owner}; remove it")
    for k in sorted(bench.required_keys - m.keys()):
        raise L.fail(n.line, f"{key}.{k}", f"missing; a {kind} target needs {k}: (see README)")

    kw: dict[str, Any] = {"name": name, "kind": kind}
    explicit = set(m)
    for k in ("profile", "emulate"):
        if k in m:
            kw[k] = L.enum(m[k], f"{key}.{k}", ENUMS[k])
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
        image = L.path(fm["image"], f"{key}.firmware.image") if "image" in fm else None
        if image is not None and not image.is_file():
            raise L.fail(fm["image"].line, f"{key}.firmware.image",
                         f"{image} does not exist; give the firmware image to flash (.uf2, "
                         ".bin, .dfu) or remove the key")
        if image is not None and "flash" not in m and kind != "vpico":
            raise L.fail(fm["image"].line, f"{key}.firmware.image",
                         "needs flash: {method: ...} to say how to put it on the board")
        kw["firmware"] = FirmwareConfig(exe, ov, image)
    if "flash" in m:
        fk = f"{key}.flash"
        fl = L.mapping(m["flash"], fk, SUBKEYS["flash"])
        method = L.enum(L.require(fl, m["flash"], fk, "method"), f"{fk}.method", FLASH_METHODS)
        got = {k: L.string(fl[k], f"{fk}.{k}") for k in ("volume", "chip", "command")
               if k in fl}
        if "chip" in got and got["chip"].lower().replace("-", "") not in ESP_CHIPS:
            raise L.fail(fl["chip"].line, f"{fk}.chip", f"unknown chip {got['chip']!r}; use "
                         f"one of {' | '.join(ESP_CHIPS)}")
        if method == "command" and "command" not in got:
            raise L.fail(m["flash"].line, f"{fk}.command", "missing; method: command needs a "
                         "template like 'picotool load -x {image}'")
        if "command" in got:
            try:
                got["command"].format(image="", port="", serial_number="")
            except (KeyError, IndexError, ValueError) as e:
                raise L.fail(fl["command"].line, f"{fk}.command", f"bad placeholder {e}; use "
                             "{image}, {port}, {serial_number} (double other braces)") from None
        if "timeout_s" in fl:
            got["timeout_s"] = L.sane(fl["timeout_s"], f"{fk}.timeout_s", "flash.timeout_s")
        kw["flash"] = FlashConfig(method, **got)
    kw["power"] = _power(L, m, key, bench.simulated)
    if "place" in m:
        kw["place"] = L.string(m["place"], f"{key}.place")
    if "known_issues" in m:
        km = m["known_issues"]
        if not isinstance(km.value, dict):
            raise L.fail(km.line, f"{key}.known_issues", "expected a mapping of "
                                                         "'test_name[kind]': reason")
        kw["known_issues"] = {
            k: L.string(v, f"{key}.known_issues.{k}") for k, v in km.value.items()}
        for k, v in km.value.items():
            wrong = _unknown_test(k)
            if wrong:
                raise L.fail(v.line, f"{key}.known_issues", wrong)
    for k in ("irq_wake", "second_waiter"):
        if k in m:
            kw[k] = L.enum(m[k], f"{key}.{k}", ENUMS[k])
    for k in ("irq_latency_us", "irq_jitter_us"):
        if k in m:
            kw[k] = int(L.sane(m[k], f"{key}.{k}", k, integer=True))
    if "irq_kinds" in m:
        ik = m["irq_kinds"]
        if not isinstance(ik.value, list) or not ik.value:
            raise L.fail(ik.line, f"{key}.irq_kinds", "expected a non-empty list of "
                                                      f"{' | '.join(IRQ_KINDS)}")
        kw["irq_kinds"] = tuple(L.enum(x, f"{key}.irq_kinds", IRQ_KINDS) for x in ik.value)
    backend = "pigpio"
    gm = L.mapping(m["gpio"], f"{key}.gpio", SUBKEYS["gpio"]) if "gpio" in m else {}
    if "backend" in gm:
        backend = kw["gpio_backend"] = L.enum(gm["backend"], f"{key}.gpio.backend",
                                              tuple(GPIO_BACKENDS))
    if "chip" in gm:
        if backend != "rgpio":
            raise L.fail(gm["chip"].line, f"{key}.gpio.chip", f"only gpio.backend rgpio opens a "
                         f"gpiochip ({backend} numbers GPIOs itself); remove the key")
        kw["gpio_chip"] = L.integer(gm["chip"], f"{key}.gpio.chip", 0, 63)
    # the daemon's address: gpio.host/port, or pigpio.host/port (the older spelling)
    where = "gpio" if {"host", "port"} & gm.keys() else "pigpio" if "pigpio" in m else None
    if where and kind == "labgrid":
        line = m["pigpio"].line if where == "pigpio" else gm[min({"host", "port"} & gm.keys())].line
        raise L.fail(line, f"{key}.{where}", "a labgrid target's GPIO daemon is its place's "
                     "NetworkService (README, A shared lab); remove the address here")
    if where == "gpio" and "pigpio" in m:
        raise L.fail(m["pigpio"].line, f"{key}.pigpio", "the daemon's address is already in "
                     "gpio: host/port; keep one of the two")
    if where == "pigpio" and backend != "pigpio":
        raise L.fail(m["pigpio"].line, f"{key}.pigpio", f"is for gpio.backend pigpio; write "
                     f"the {backend} daemon's address as gpio: {{host: ..., port: ...}}")
    am = L.mapping(m["pigpio"], f"{key}.pigpio", SUBKEYS["pigpio"]) if where == "pigpio" \
        else gm
    got: dict[str, Any] = {"port": GPIO_DEFAULT_PORTS[backend]}
    if "host" in am:
        got["host"] = L.string(am["host"], f"{key}.{where}.host")
    if "port" in am:
        got["port"] = L.integer(am["port"], f"{key}.{where}.port", 1, 65535)
    kw["pigpio"] = PigpioConfig(**got)
    if "serial" in m:
        sm = L.mapping(m["serial"], f"{key}.serial", SUBKEYS["serial"])
        port = L.string(L.require(sm, m["serial"], f"{key}.serial", "port"), f"{key}.serial.port")
        vid = L.usb_id(sm["vid"], f"{key}.serial.vid") if "vid" in sm else None
        pid = L.usb_id(sm["pid"], f"{key}.serial.pid") if "pid" in sm else None
        sn = None
        if "serial_number" in sm:
            snn = sm["serial_number"]
            if not isinstance(snn.value, str) or not snn.value:
                raise L.fail(snn.line, f"{key}.serial.serial_number",
                             f"expected text, got {_show(snn.value)}; quote it (e.g. '0123') "
                             "so YAML keeps it as written")
            sn = snn.value
        if port == "auto" and vid is None and pid is None and sn is None:
            raise L.fail(sm["port"].line, f"{key}.serial.port",
                         "'auto' needs vid, pid or serial_number to find the board")
        extra = {"baudrate": int(L.sane(sm["baudrate"], f"{key}.serial.baudrate",
                                        "serial.baudrate", integer=True))} \
            if "baudrate" in sm else {}
        kw["serial"] = SerialConfig(port, vid, pid, sn, **extra)

    wn = L.require(m, n, key, "wiring")
    wm = L.mapping(wn, f"{key}.wiring", SUBKEYS["wiring"])
    st = L.mapping(L.require(wm, wn, f"{key}.wiring", "stimulus"), f"{key}.wiring.stimulus",
                   SUBKEYS["stimulus"])
    ac = L.mapping(L.require(wm, wn, f"{key}.wiring", "ack"), f"{key}.wiring.ack",
                   SUBKEYS["ack"])
    sk, ak = f"{key}.wiring.stimulus", f"{key}.wiring.ack"
    s_gpio = L.pi_gpio(L.require(st, wm["stimulus"], sk, "pi_gpio"), f"{sk}.pi_gpio",
                       "stimulus")
    s_pin = L.pin(L.require(st, wm["stimulus"], sk, "board_pin"), f"{sk}.board_pin")
    a_pin = L.pin(L.require(ac, wm["ack"], ak, "board_pin"), f"{ak}.board_pin")
    a_gpio = L.pi_gpio(L.require(ac, wm["ack"], ak, "pi_gpio"), f"{ak}.pi_gpio", "ack")
    if s_gpio == a_gpio:
        raise L.fail(ac["pi_gpio"].line, f"{ak}.pi_gpio",
                     f"Pi GPIO {a_gpio} is already wired to the stimulus; use another GPIO")
    if _pin_id(s_pin) == _pin_id(a_pin):
        same = "" if s_pin == a_pin else \
            f" ({sk}.board_pin {s_pin!r} is the same pin: n, 'n' and 'GPn' name one pin)"
        raise L.fail(ac["board_pin"].line, f"{ak}.board_pin",
                     f"board pin {a_pin!r} is already wired to the stimulus{same}; "
                     "use another pin")
    r_gpio: int | None = None
    r_pin: int | str | None = None
    if "reset" in wm:
        rk = f"{key}.wiring.reset"
        rm = L.mapping(wm["reset"], rk, SUBKEYS["reset"])
        r_gpio = L.pi_gpio(L.require(rm, wm["reset"], rk, "pi_gpio"), f"{rk}.pi_gpio", "reset")
        r_pin = L.pin(L.require(rm, wm["reset"], rk, "board_pin"), f"{rk}.board_pin")
        if r_gpio in (s_gpio, a_gpio):
            raise L.fail(rm["pi_gpio"].line, f"{rk}.pi_gpio",
                         f"Pi GPIO {r_gpio} is already wired to the "
                         f"{'stimulus' if r_gpio == s_gpio else 'ack'}; use another GPIO")
        # The reset wire goes to RUN/EN, not to a machine.Pin: only the same name clashes.
        if r_pin in (s_pin, a_pin):
            raise L.fail(rm["board_pin"].line, f"{rk}.board_pin",
                         f"board pin {r_pin!r} is already wired to the "
                         f"{'stimulus' if r_pin == s_pin else 'ack'}; use the board's RUN/EN pin")
    sense = None
    if "stimulus_sense" in wm:
        sn, snk = wm["stimulus_sense"], f"{key}.wiring.stimulus_sense"
        if backend != "rgpio":
            raise L.fail(sn.line, snk, f"only for gpio.backend: rgpio ({backend} times the "
                         "stimulus edges itself); remove it")
        sense = L.pi_gpio(sn, snk, "stimulus sense")
        taken = {s_gpio: "stimulus", a_gpio: "ack", r_gpio: "reset"}
        if sense in taken:
            raise L.fail(sn.line, snk, f"Pi GPIO {sense} is already the {taken[sense]} wire; "
                         "give the Pi input jumpered to the stimulus wire")
    kw["wiring"] = Wiring(Wire(s_gpio, s_pin), Wire(a_gpio, a_pin),
                          Wire(r_gpio, r_pin) if r_gpio is not None else None, sense)

    defaults = Budgets()  # the defaults live in the dataclass
    lat = dict(defaults.latency_us)
    wake_ms, dev_s = defaults.wake_timeout_ms, defaults.device_timeout_s
    if "budgets" in m:
        bk = f"{key}.budgets"
        bm = L.mapping(m["budgets"], bk, SUBKEYS["budgets"])
        if "latency_us" in bm:
            lm = L.mapping(bm["latency_us"], f"{bk}.latency_us", SUBKEYS["latency_us"])
            for q, v in lm.items():
                lat[q] = L.sane(v, f"{bk}.latency_us.{q}", "budgets.latency_us")
                explicit.add(f"budgets.latency_us.{q}")
            for a, b in zip(QUANTILE_NAMES, QUANTILE_NAMES[1:], strict=False):
                if lat[a] > lat[b]:
                    line = (lm.get(b) or lm.get(a) or bm["latency_us"]).line
                    raise L.fail(line, f"{bk}.latency_us", f"{a} ({lat[a]:g}) > {b} ({lat[b]:g}); "
                                 "percentile budgets must not decrease")
        if "wake_timeout_ms" in bm:
            wake_ms = L.sane(bm["wake_timeout_ms"], f"{bk}.wake_timeout_ms",
                             "budgets.wake_timeout_ms")
        if "device_timeout_s" in bm:
            dev_s = L.sane(bm["device_timeout_s"], f"{bk}.device_timeout_s",
                           "budgets.device_timeout_s")
        if wake_ms >= dev_s * 1000 and {"wake_timeout_ms", "device_timeout_s"} & bm.keys():
            name = "wake_timeout_ms" if "wake_timeout_ms" in bm else "device_timeout_s"
            raise L.fail(bm[name].line, f"{bk}.{name}", f"wake_timeout_ms ({wake_ms:g} ms) must "
                         f"be shorter than device_timeout_s ({dev_s:g} s): the board waits out "
                         "the wake timeout before it answers")
    kw["budgets"] = Budgets(lat, wake_ms, dev_s)
    return TargetConfig(**kw, explicit=frozenset(explicit))


def _power(L: _Loader, m: dict[str, _Node], key: str, simulated: bool) -> PowerConfig | None:
    """`power:`: a simulated bench switches its own board (method sim, the default there);
    a real one names a hub port, a sysfs `disable` file or commands. `power: null`: none."""
    if "power" not in m:
        return PowerConfig("sim", off_s=SIM_OFF_S) if simulated else None
    pn, pk = m["power"], f"{key}.power"
    if pn.value is None:
        return None
    pm = L.mapping(pn, pk, SUBKEYS["power"])
    method = L.enum(L.require(pm, pn, pk, "method"), f"{pk}.method", tuple(POWER_METHODS))
    if method == "sim" and not simulated:
        raise L.fail(pm["method"].line, f"{pk}.method", "sim switches only a simulated bench; "
                     "use uhubctl, sysfs or command")
    if method != "sim" and simulated:
        raise L.fail(pm["method"].line, f"{pk}.method", f"a simulated bench is switched by "
                     f"method sim, not {method}; write power: {{method: sim}} or remove it")
    need = {"uhubctl": ("location", "port"), "sysfs": ("path",), "command": (), "sim": ()}
    allowed = set(need[method]) | {"method", "off_s", "timeout_s"} | \
        ({"off", "on", "cycle"} if method == "command" else set())
    for k in pm:
        if k not in allowed:
            raise L.fail(pm[k].key_line, f"{pk}.{k}", f"not a key of method {method}; remove "
                         f"it (it takes {', '.join(sorted(allowed - {'method'}))})")
    for k in need[method]:
        L.require(pm, pn, pk, k)
    got: dict[str, Any] = {}
    if "location" in pm:
        got["location"] = L.string(pm["location"], f"{pk}.location")
    if "port" in pm:
        v = pm["port"].value
        if isinstance(v, bool) or not re.fullmatch(r"\d+(,\d+)*", str(v)):
            raise L.fail(pm["port"].line, f"{pk}.port", f"expected a hub port number like 3 "
                         f"(or '1,3'), got {_show(v)}; `uhubctl` lists the hub's ports")
        got["port"] = str(v)
    if "path" in pm:
        got["path"] = L.path(pm["path"], f"{pk}.path")
        if got["path"] is None or got["path"].name != "disable":
            raise L.fail(pm["path"].line, f"{pk}.path", "expected the USB port's `disable` "
                         "file, e.g. /sys/bus/usb/devices/1-1:1.0/1-1-port2/disable")
    for k in ("off", "on", "cycle"):
        if k in pm:
            got[k] = L.string(pm[k], f"{pk}.{k}")
            try:
                got[k].format(port="", serial_number="")
            except (KeyError, IndexError, ValueError) as e:
                raise L.fail(pm[k].line, f"{pk}.{k}", f"bad placeholder {e}; use {{port}}, "
                             "{serial_number} (double other braces)") from None
    if method == "command" and not ("cycle" in got or "off" in got and "on" in got):
        raise L.fail(pn.line, pk, "method command needs off: and on: templates, or one "
                     "cycle: template (e.g. 'ykushcmd -d 1' and 'ykushcmd -u 1')")
    if "cycle" in got and ("off" in got or "on" in got):
        raise L.fail(pm["cycle"].line, f"{pk}.cycle", "give either cycle: or off: and on:, "
                     "not both")
    for k in ("off_s", "timeout_s"):
        if k in pm:
            got[k] = L.sane(pm[k], f"{pk}.{k}", f"power.{k}")
    if method == "sim":
        got.setdefault("off_s", SIM_OFF_S)
    return PowerConfig(method, **got)


def _unknown_test(key: str) -> str:
    """Why a known_issues key names no test of the suite ("" if it names one): a key that
    matches nothing would silently mark nothing."""
    from harness.scenarios import SUITE  # (imports this module)
    from harness.sources import IRQ_SOURCES, LOOP_SOURCES

    m = re.fullmatch(r"(\w+)\[(\w+)\]", str(key))
    if not m:
        return f"{key!r} is not 'test_name[kind]' (e.g. 'test_wake[hard]')"
    name, kind = m.groups()
    if name not in SUITE:
        near = difflib.get_close_matches(name, SUITE, n=1)
        return (f"{key!r} names no test of the suite"
                + (f" (did you mean {near[0]}?)" if near else f"; tests: {', '.join(SUITE)}"))
    kinds = LOOP_SOURCES if name == "test_set_from_loop_and_schedule" else \
        ("hard", "soft") if name == "test_second_waiter_behaviour" else IRQ_SOURCES
    if kind not in kinds:
        return f"{key!r}: {name} runs with {', '.join(kinds)}, not {kind!r}"
    return ""


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
    gpios: dict[tuple[str, int], int] = {}
    ports: dict[str, int] = {}
    for i, t in enumerate(targets):
        if BENCH_KINDS[t.kind].simulated or t.kind == "vpico":  # each has its own Pi
            continue
        node = tn.value[i]
        for role in ("stimulus", "ack", "reset", "stimulus_sense"):
            wire = getattr(t.wiring, role)
            if wire is None:
                continue
            gpio, sub = (wire, ()) if isinstance(wire, int) else (wire.pi_gpio, ("pi_gpio",))
            pi = f"place {t.place}" if t.place else f"{t.pigpio.host}:{t.pigpio.port}"
            key = (pi, gpio)
            if key in gpios:
                raise L.fail(_line_of(node, "wiring", role, *sub),
                             ".".join((f"targets[{i}].wiring.{role}", *sub)),
                             f"Pi GPIO {gpio} on {pi} is already "
                             f"wired for targets[{gpios[key]}]; use another GPIO")
            gpios[key] = i
        if t.serial.port != "auto":
            if t.serial.port in ports:
                raise L.fail(_line_of(node, "serial", "port"), f"targets[{i}].serial.port",
                             f"{t.serial.port} is already targets[{ports[t.serial.port]}]'s "
                             "board; each target needs its own port")
            ports[t.serial.port] = i


def _key_at(node: yaml.Node, index: int, key: str = TOP_LEVEL) -> str | None:
    """The key path of the scalar at a character index of the text, if any."""
    todo, seen = [(node, key)], set()
    while todo:
        n, k = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.ScalarNode):
            if n.start_mark.index <= index < n.end_mark.index:
                return k
        elif isinstance(n, yaml.SequenceNode):
            todo += [(v, f"{k}[{i}]") for i, v in enumerate(n.value)]
        elif isinstance(n, yaml.MappingNode):
            todo += [(v, _subkey(k, str(kn.value))) for kn, v in n.value]
            todo += [(kn, _subkey(k, str(kn.value))) for kn, _ in n.value]
    return None


def _where(text: str, index: int) -> str:
    """' key:' for the value holding character `index` of the text (a bad character already
    replaced, so the rest parses), or '' when it is not in a value or the text won't parse."""
    try:
        node = yaml.SafeLoader(text).get_single_node()
    except (yaml.YAMLError, RecursionError):
        return ""
    key = _key_at(node, index) if node is not None else None
    return f" {key}:" if key else ""


def _decode(path: Path, data: bytes) -> str:
    """The file as text: UTF-8 (a UTF-8 byte-order mark is allowed), else a one-line error
    with the line, and the key when the bad byte is in a value."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bad = e.start
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path.name}:1: the file is UTF-16 (it starts with a UTF-16 "
                          "byte-order mark), not UTF-8; save it as UTF-8") from None
    line = data.count(b"\n", 0, bad) + 1
    col = bad - (data.rfind(b"\n", 0, bad) + 1) + 1
    where = _where(data.decode("utf-8-sig", "replace"), len(data[:bad].decode("utf-8-sig")))
    raise ConfigError(f"{path.name}:{line}:{where} byte 0x{data[bad]:02x} (column {col}) is not "
                      "valid UTF-8; save the file as UTF-8") from None


def _yaml_error(path: Path, text: str, e: yaml.YAMLError) -> ConfigError:
    """PyYAML's multi-line error text as one line with the line number."""
    if isinstance(e, yaml.reader.ReaderError):  # a control character, before any parsing
        line = text.count("\n", 0, e.position) + 1
        where = _where(text[:e.position] + "\ufffd" + text[e.position + 1:], e.position)
        fix = "save the file as UTF-8 (is it UTF-16?)" if e.character == 0 else "remove it"
        return ConfigError(f"{path.name}:{line}:{where} character U+{e.character:04X} is not "
                           f"allowed in YAML; {fix}")
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    line = mark.line + 1 if mark else 1
    problem = getattr(e, "problem", None) or "cannot parse"
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and cmark and cmark is not mark:
        problem = f"{context} (line {cmark.line + 1}) {problem}" if problem.startswith("but ") \
            else f"{problem} ({context} at line {cmark.line + 1})"
    return ConfigError(_one_line(f"{path.name}:{line}: invalid YAML: {problem}; fix the "
                                 "syntax there (see the shipped rig_config.yaml)"))


def load_config(path: str | Path) -> RigConfig:
    """Parse and validate a rig config; raise ConfigError with file:line on any problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the rig config ({e.strerror}); "
                          "pass --config with an existing file") from None
    text = _decode(path, data)
    try:
        yaml_loader = yaml.SafeLoader(text)
        L = _Loader(path.resolve(), yaml_loader)
        root_node = yaml_loader.get_single_node()
        root = L.convert(root_node) if root_node is not None else None
    except yaml.YAMLError as e:
        raise _yaml_error(path, text, e) from None
    except RecursionError:
        raise ConfigError(f"{path.name}: nested too deeply to be a rig config; see the "
                          "shipped rig_config.yaml for its shape") from None
    if root is None:
        raise ConfigError(f"{path.name}:1: empty config; start from the shipped rig_config.yaml")
    if not isinstance(root.value, dict):
        raise L.fail(root.line, TOP_LEVEL, "the top level must be a mapping with version: and "
                                           f"targets:, got {_show(root.value)}; start from the "
                                           "shipped rig_config.yaml")
    top = L.mapping(root, TOP_LEVEL, TOP_KEYS)
    if "version" in top:
        v = top["version"].value
        if isinstance(v, bool) or not isinstance(v, int) or v != 1:
            raise L.fail(top["version"].line, "version",
                         f"unsupported version {_show(v)}; write version: 1")
    tn = L.require(top, root, "", "targets")
    if not isinstance(tn.value, list) or not tn.value:
        raise L.fail(tn.line, "targets", "expected a non-empty list of targets")
    defaults = top.get("defaults")
    if defaults is not None:
        if not isinstance(defaults.value, dict):
            raise L.fail(defaults.line, "defaults", "expected a mapping of target keys merged "
                                                    "under every target (e.g. irq_kinds: "
                                                    f"[hard]), got {_show(defaults.value)}")
        L.mapping(defaults, "defaults", TARGET_KEYS)
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
            L.sane(cm["effect_floor_us"], "compare.effect_floor_us", "compare.effect_floor_us")
            if "effect_floor_us" in cm else 100.0,
            L.number(cm["min_effect_size"], "compare.min_effect_size", 0.0, False, 1.0, False)
            if "min_effect_size" in cm else 0.3,
        )
    return RigConfig(L.file, targets, compare)


def with_overlay(cfg: RigConfig, overlay: str | Path) -> RigConfig:
    """The --overlay option: every sim target runs the build with this module overlay."""
    p = Path(overlay).expanduser().resolve()
    if not p.is_dir():
        raise ConfigError(f"--overlay {overlay}: directory does not exist; give the directory "
                          "that holds the replacement modules (e.g. an asyncio/ package)")
    targets = [dataclasses.replace(t, firmware=dataclasses.replace(t.firmware, overlay=p))
               if BENCH_KINDS[t.kind].simulated or t.kind == "vpico" else t
               for t in cfg.targets]
    return RigConfig(cfg.path, targets, cfg.compare)


def with_firmware(cfg: RigConfig, executable: str | Path) -> RigConfig:
    """The --firmware option on a simulated bench: every sim target runs this MicroPython
    unix-port executable (the build under test) instead of its configured one."""
    p = Path(executable).expanduser().resolve()
    uf2 = p.suffix.lower() == ".uf2"  # an RP2 image: for vpico and flashing targets, not sim
    sim = not uf2 and any(BENCH_KINDS[t.kind].simulated for t in cfg.targets)
    if not p.is_file() or sim and not os.access(p, os.X_OK):
        raise ConfigError(f"--firmware {executable}: not an executable file; give a MicroPython "
                          "unix-port build (e.g. ports/unix/build-standard/micropython)"
                          if sim else f"--firmware {executable}: no such file; give the "
                          "firmware image to flash")
    # a serial target with a flash method flashes it; other serial targets keep their board
    targets = [t if uf2 and BENCH_KINDS[t.kind].simulated else
               dataclasses.replace(t, firmware=dataclasses.replace(t.firmware, executable=p))
               if BENCH_KINDS[t.kind].simulated else
               dataclasses.replace(t, firmware=dataclasses.replace(t.firmware, image=p))
               if t.flash is not None or t.kind == "vpico" else t for t in cfg.targets]
    return RigConfig(cfg.path, targets, cfg.compare)
