"""rig_config.yaml read as YAML whose every value remembers its line, and the typed getters
the loader and the plug-ins' specs read it with: each problem one line naming the file, the
line, the key and the fix."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

import yaml

from harness.config.schema import ConfigError

TOP_LEVEL = "(top level)"
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


class Node:
    """A YAML value with the line it came from, so errors can point at it."""

    def __init__(self, value: Any, line: int, key_line: int | None = None) -> None:
        self.value = value
        self.line = line
        self.key_line = key_line if key_line is not None else line


def subkey(parent: str, child: str) -> str:
    return child if parent == TOP_LEVEL else f"{parent}.{child}"


def one_line(s: str) -> str:
    return " ".join(str(s).split("\n"))


class Loader:
    def __init__(self, path: Path, yaml_loader: yaml.SafeLoader) -> None:
        self.file = path
        self.fname = path.name
        self.yaml = yaml_loader
        self._done: dict[int, Node] = {}  # id(yaml node) -> converted: an alias is one value
        self._open: set[int] = set()  # the nodes being converted: an alias to one recurses

    def fail(self, line: int, key: str, msg: str) -> ConfigError:
        return ConfigError(one_line(f"{self.fname}:{line}: {key}: {msg}"))

    def convert(self, node: yaml.Node, key: str = TOP_LEVEL) -> Node:
        """YAML node tree -> Node tree (mappings as dicts of Node), duplicate keys rejected.
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
            out: dict[str, Node] = {}
            for k, v in node.value:
                kline = k.start_mark.line + 1
                if not isinstance(k, yaml.ScalarNode):
                    raise self.fail(kline, key, "a key must be a plain name, not a list or "
                                                "a mapping; use a name like the README's")
                name = str(k.value)
                if name in out:
                    raise self.fail(kline, name, f"duplicate key (first at line "
                                                 f"{out[name].key_line}); keep one")
                child = self.convert(v, subkey(key, name))
                out[name] = Node(child.value, child.line, kline)
            result = Node(out, line)
        elif isinstance(node, yaml.SequenceNode):
            result = Node([self.convert(v, f"{key}[{i}]") for i, v in enumerate(node.value)],
                           line)
        else:
            result = Node(self.scalar(node, key), line)
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
            raise self.fail(line, key, f"{show(str(node.value))} is not a valid YAML {kind}; "
                                       "fix it, or quote it if it is text") from None

    # ---- typed getters -------------------------------------------------------------------
    def mapping(self, n: Node, key: str, allowed: set[str]) -> dict[str, Node]:
        if not isinstance(n.value, dict):
            raise self.fail(n.line, key, f"expected a mapping, got {show(n.value)}")
        for k, v in n.value.items():
            if k not in allowed:
                close = difflib.get_close_matches(k, sorted(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"known keys: {', '.join(sorted(allowed))}"
                raise self.fail(v.key_line, subkey(key, k), f"unknown key; {hint}")
        return n.value

    def require(self, m: dict[str, Node], parent: Node, key: str, name: str) -> Node:
        if name not in m:
            raise self.fail(parent.line, f"{key}.{name}" if key else name,
                            "missing; add it (see README, Config reference)")
        return m[name]

    def integer(self, n: Node, key: str, lo: int | None = None, hi: int | None = None) -> int:
        v = n.value
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo) or \
                (hi is not None and v > hi):
            rng = f" {lo}-{hi}" if hi is not None else (f" >= {lo}" if lo is not None else "")
            raise self.fail(n.line, key, f"expected an integer{rng}, got {show(v)}")
        return v

    def number(self, n: Node, key: str, lo: float = 0.0, lo_open: bool = True,
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
            raise self.fail(n.line, key, f"expected a finite number {rng}, got {show(v)}")
        return f

    def pi_gpio(self, n: Node, key: str, wire: str, gpios: tuple[int, int], why: str) -> int:
        """A Pi GPIO the target's GPIO backend can drive (`gpios`, `why` that range)."""
        lo, hi = gpios
        v = n.value
        if isinstance(v, int) and not isinstance(v, bool) and not lo <= v <= hi:
            raise self.fail(n.line, key, f"the {wire} wire's Pi GPIO {v} is outside {lo}-{hi}: "
                                         f"{why} (GPIO {lo}-{hi}); wire it to a GPIO {lo}-{hi}")
        return self.integer(n, key, lo, hi)

    def usb_id(self, n: Node, key: str) -> int:
        v = n.value
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFF:
            raise self.fail(n.line, key, f"expected a 16-bit USB id 0x0000-0xffff, got "
                                         f"{show_usb_id(v)}; write it in hex like 0x2e8a "
                                         "(unquoted)")
        return v

    def string(self, n: Node, key: str) -> str:
        if not isinstance(n.value, str) or not n.value:
            raise self.fail(n.line, key, f"expected a non-empty string, got {show(n.value)}")
        return n.value

    def enum(self, n: Node, key: str, choices: tuple[str, ...]) -> str:
        if n.value not in choices:
            raise self.fail(n.line, key, f"expected one of {' | '.join(choices)}, "
                                         f"got {show(n.value)}")
        return n.value

    def sane(self, n: Node, key: str, kind: str, integer: bool = False) -> float:
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
                                         f"{' ' + unit if unit else ''}, got {show(v)}")
        return v if integer else float(v)

    def pin(self, n: Node, key: str) -> int | str:
        v = n.value
        if isinstance(v, bool) or not (isinstance(v, int) and v >= 0 or isinstance(v, str) and v):
            raise self.fail(n.line, key, f"expected a board pin number >= 0 or a name like "
                                         f"'GP2', got {show(v)}")
        if isinstance(v, int):
            return int(self.sane(n, key, "wiring.board_pin", integer=True))
        return v

    def path(self, n: Node, key: str, must_be_dir: bool = False) -> Path | None:
        if n.value is None:
            return None
        p = Path(self.string(n, key)).expanduser()
        if not p.is_absolute():
            p = (self.file.parent / p).resolve()
        if must_be_dir and not p.is_dir():
            raise self.fail(n.line, key, f"directory {p} does not exist; create it or fix the path")
        return p


def show(v: Any) -> str:
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


def show_usb_id(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:#06x}" if v >= 0 else f"-{-v:#06x}"
    return show(v)


def key_at(node: yaml.Node, index: int, key: str = TOP_LEVEL) -> str | None:
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
            todo += [(v, subkey(k, str(kn.value))) for kn, v in n.value]
            todo += [(kn, subkey(k, str(kn.value))) for kn, _ in n.value]
    return None


def where_in(text: str, index: int) -> str:
    """' key:' for the value holding character `index` of the text (a bad character already
    replaced, so the rest parses), or '' when it is not in a value or the text won't parse."""
    try:
        node = yaml.SafeLoader(text).get_single_node()
    except (yaml.YAMLError, RecursionError):
        return ""
    key = key_at(node, index) if node is not None else None
    return f" {key}:" if key else ""


def decode(path: Path, data: bytes) -> str:
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
    where = where_in(data.decode("utf-8-sig", "replace"), len(data[:bad].decode("utf-8-sig")))
    raise ConfigError(f"{path.name}:{line}:{where} byte 0x{data[bad]:02x} (column {col}) is not "
                      "valid UTF-8; save the file as UTF-8") from None


def yaml_error(path: Path, text: str, e: yaml.YAMLError) -> ConfigError:
    """PyYAML's multi-line error text as one line with the line number."""
    if isinstance(e, yaml.reader.ReaderError):  # a control character, before any parsing
        line = text.count("\n", 0, e.position) + 1
        where = where_in(text[:e.position] + "\ufffd" + text[e.position + 1:], e.position)
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
    return ConfigError(one_line(f"{path.name}:{line}: invalid YAML: {problem}; fix the "
                                 "syntax there (see the shipped rig_config.yaml)"))
