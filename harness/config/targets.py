"""A target's keys and the rules every target shares: its name and kind, firmware, serial
port, wiring and budgets. What a bench kind, GPIO backend, power method or flash method adds
is its own spec's (harness/config/registry.py), read here through a Section."""

from __future__ import annotations

import difflib
import re
from typing import Any

from harness.board.ports import EMULATED, PROFILES
from harness.board.sources import IRQ_SOURCES
from harness.config.registry import FLASH, GPIO, KIND, POWER, names, spec, specs
from harness.config.schema import (
    Budgets,
    ConfigError,
    FirmwareConfig,
    FlashConfig,
    GpioConfig,
    PowerConfig,
    SerialConfig,
    TargetConfig,
    Wire,
    Wiring,
)
from harness.config.specs import Section
from harness.config.yaml_lines import Loader, Node, show
from harness.suite.catalogue import SuiteTest, suite_tests
from harness.suite.stats import QUANTILE_NAMES

ENUMS = {
    "irq_wake": ("schedule", "poll"),
    "second_waiter": ("second-wins", "first-wins", "both-wake", "raises"),
    "profile": ("auto", *PROFILES),
    "emulate": EMULATED,
}
IRQ_KINDS = IRQ_SOURCES
TARGET_KEYS = {"name", "kind", "firmware", "irq_wake", "irq_latency_us", "irq_jitter_us",
               "irq_kinds", "second_waiter", "gpio", "serial", "wiring", "budgets",
               "known_issues", "flash", "power", "profile", "emulate", "place"}
SUBKEYS = {
    "firmware": {"executable", "overlay", "image"},
    "flash": {"method", "timeout_s"},  # and each method's own keys
    "power": {"method", "off_s", "timeout_s"},  # and each method's own keys
    "gpio": {"backend", "host", "port"},  # and each backend's option_keys
    "serial": {"port", "vid", "pid", "serial_number", "baudrate"},
    "wiring": {"stimulus", "ack", "reset", "stimulus_sense"},
    "stimulus": {"pi_gpio", "board_pin"},
    "ack": {"board_pin", "pi_gpio"},
    "reset": {"pi_gpio", "board_pin"},
    "budgets": {"latency_us", "wake_timeout_ms", "device_timeout_s"},
    "latency_us": set(QUANTILE_NAMES),
    "compare": {"alpha", "effect_floor_us", "min_effect_size"},
}
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
BOARD_PIN_RE = re.compile(r"^(?:GP)?(\d+)$", re.IGNORECASE)  # 2, "2", "GP2", "gp2": one pin


def _pin_id(pin: int | str) -> int | str:
    """One name per machine.Pin: 2, "2", "GP2" and "gp2" are the same pin; other names
    ("X1", "D5") are compared as written."""
    if isinstance(pin, int):
        return pin
    m = BOARD_PIN_RE.match(pin)
    return int(m.group(1)) if m else pin


def _merge(defaults: Node | None, target: Node) -> Node:
    """defaults (already checked to be a mapping) under target, one level deep for nested
    sections."""
    if defaults is None or not isinstance(target.value, dict):
        return target
    merged = dict(defaults.value)
    for k, v in target.value.items():
        if k in merged and isinstance(merged[k].value, dict) and isinstance(v.value, dict):
            merged[k] = Node({**merged[k].value, **v.value}, v.line)
        else:
            merged[k] = v
    return Node(merged, target.line)


def read_target(L: Loader, n: Node, idx: int, defaults: Node | None) -> TargetConfig:
    key = f"targets[{idx}]"
    m = L.mapping(_merge(defaults, n), key, target_keys())
    name = L.string(L.require(m, n, key, "name"), f"{key}.name")
    if not NAME_RE.match(name):
        raise L.fail(m["name"].line, f"{key}.name", f"{name!r}: use letters, digits, _ . - only")
    kind = L.enum(L.require(m, n, key, "kind"), f"{key}.kind", names(KIND))
    kinds = specs(KIND)
    bench = kinds[kind]
    present = set(m) | {f"{k}.{s}" for k in m if isinstance(m[k].value, dict)
                        for s in m[k].value}
    kind_only = frozenset().union(*(b.only_keys for b in kinds.values()))
    for k in sorted((kind_only - bench.only_keys) & present):
        owner = next(name for name, b in kinds.items() if k in b.only_keys)
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
        if image is not None and "flash" not in m and not bench.runs_image:
            raise L.fail(fm["image"].line, f"{key}.firmware.image",
                         "needs flash: {method: ...} to say how to put it on the board")
        kw["firmware"] = FirmwareConfig(exe, ov, image)
    if "flash" in m:
        kw["flash"] = _flash(L, m, key)
    kw["power"] = _power(L, m, key, bench.simulated, bench.default_power)
    if bench.check is not None:
        kw.update(bench.check(Section(L, m, n, key)))
    if "known_issues" in m:
        km = m["known_issues"]
        if not isinstance(km.value, dict):
            raise L.fail(km.line, f"{key}.known_issues", "expected a mapping of "
                                                         "'test_name[kind]': reason")
        kw["known_issues"] = {
            k: L.string(v, f"{key}.known_issues.{k}") for k, v in km.value.items()}
        try:
            suite = suite_tests()
        except SyntaxError:  # the run says it, cause first, as the suite that did not collect
            suite = None
        except ValueError as e:  # the suite's own file, not the config: say where
            raise ConfigError(str(e)) from None
        for k, v in km.value.items():
            wrong = _unknown_test(k, suite) if suite is not None else ""
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
    kw["gpio"] = gpio = _gpio(L, m, key)
    gspec = spec(GPIO, gpio.backend)
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
                             f"expected text, got {show(snn.value)}; quote it (e.g. '0123') "
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
    gpios = gspec.gpios, gspec.gpios_why
    s_gpio = L.pi_gpio(L.require(st, wm["stimulus"], sk, "pi_gpio"), f"{sk}.pi_gpio",
                       "stimulus", *gpios)
    s_pin = L.pin(L.require(st, wm["stimulus"], sk, "board_pin"), f"{sk}.board_pin")
    a_pin = L.pin(L.require(ac, wm["ack"], ak, "board_pin"), f"{ak}.board_pin")
    a_gpio = L.pi_gpio(L.require(ac, wm["ack"], ak, "pi_gpio"), f"{ak}.pi_gpio", "ack",
                       *gpios)
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
        r_gpio = L.pi_gpio(L.require(rm, wm["reset"], rk, "pi_gpio"), f"{rk}.pi_gpio", "reset",
                           *gpios)
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
        if not gspec.stimulus_sense:
            sensing = " | ".join(b for b, g in specs(GPIO).items() if g.stimulus_sense)
            raise L.fail(sn.line, snk, f"only for gpio.backend: {sensing} ({gpio.backend} times "
                         "the stimulus edges itself); remove it")
        sense = L.pi_gpio(sn, snk, "stimulus sense", *gpios)
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


def target_keys() -> set[str]:
    """The keys a target (or defaults:) takes: the shared ones, and each GPIO backend's older
    section for its daemon's address (its spec's address_key)."""
    return TARGET_KEYS | {g.address_key for g in specs(GPIO).values() if g.address_key}


def _flash(L: Loader, m: dict[str, Node], key: str) -> FlashConfig:
    """`flash:` (serial targets): how firmware.image gets onto the board; the method's spec
    checks what it needs."""
    fk = f"{key}.flash"
    own = {k for s in specs(FLASH).values() for k in s.keys}  # taken by any, as strings
    fl = L.mapping(m["flash"], fk, SUBKEYS["flash"] | own)
    method = L.enum(L.require(fl, m["flash"], fk, "method"), f"{fk}.method",
                    names(FLASH))
    section = Section(L, fl, m["flash"], fk)
    options: dict[str, Any] = {k: section.string(k) for k in sorted(own) if k in fl}
    flasher = spec(FLASH, method)
    if flasher.check is not None:
        options.update(flasher.check(section))
    got = {"timeout_s": section.sane("timeout_s", "flash.timeout_s")} if "timeout_s" in fl \
        else {}
    return FlashConfig(method, **got, options=options)


def _power(L: Loader, m: dict[str, Node], key: str, simulated: bool,
           default: str | None) -> PowerConfig | None:
    """`power:`: a simulated bench switches its own board (its kind's default method); a real
    one names a method whose spec checks its keys. `power: null`: none."""
    methods = specs(POWER)
    if "power" not in m:
        return PowerConfig(default, **methods[default].defaults) if default else None
    pn, pk = m["power"], f"{key}.power"
    if pn.value is None:
        return None
    own = {k for s in methods.values() for k in (*s.needs, *s.keys)}
    pm = L.mapping(pn, pk, SUBKEYS["power"] | own)
    method = L.enum(L.require(pm, pn, pk, "method"), f"{pk}.method", tuple(methods))
    switch = methods[method]
    if switch.simulated != simulated:
        fits = [n for n, s in methods.items() if s.simulated == simulated]
        if not simulated:
            raise L.fail(pm["method"].line, f"{pk}.method", f"{method} switches only a "
                         f"simulated bench; use {', '.join(fits[:-1])} or {fits[-1]}")
        raise L.fail(pm["method"].line, f"{pk}.method", f"a simulated bench is switched by "
                     f"method {fits[0]}, not {method}; write power: {{method: {fits[0]}}} or "
                     "remove it")
    allowed = set(switch.needs) | switch.keys | {"method", "off_s", "timeout_s"}
    for k in pm:
        if k not in allowed:
            raise L.fail(pm[k].key_line, f"{pk}.{k}", f"not a key of method {method}; remove "
                         f"it (it takes {', '.join(sorted(allowed - {'method'}))})")
    for k in switch.needs:
        L.require(pm, pn, pk, k)
    section = Section(L, pm, pn, pk)
    options: dict[str, Any] = switch.check(section) if switch.check is not None else {}
    got = {k: section.sane(k, f"power.{k}") for k in ("off_s", "timeout_s") if k in pm}
    return PowerConfig(method, **{**switch.defaults, **got}, options=options)


def _gpio(L: Loader, m: dict[str, Node], key: str) -> GpioConfig:
    """`gpio:`: the backend (the registry's first unless named), its daemon's address
    (gpio: host/port, or the backend's older section), and the keys only that backend takes."""
    backends = specs(GPIO)
    options = frozenset().union(*(g.option_keys for g in backends.values()))
    gm = L.mapping(m["gpio"], f"{key}.gpio", SUBKEYS["gpio"] | options) if "gpio" in m else {}
    backend = next(iter(backends))
    if "backend" in gm:
        backend = L.enum(gm["backend"], f"{key}.gpio.backend", tuple(backends))
    chosen = backends[backend]
    for k in sorted((options - chosen.option_keys) & gm.keys()):
        owner = next(n for n, g in backends.items() if k in g.option_keys)
        raise L.fail(gm[k].line, f"{key}.gpio.{k}", f"only for gpio.backend {owner} ({backend} "
                     "does not take it); remove the key")
    got: dict[str, Any] = {}
    if chosen.options is not None and "gpio" in m:
        got = chosen.options(Section(L, gm, m["gpio"], f"{key}.gpio"))
    olds = {g.address_key: n for n, g in backends.items() if g.address_key and g.address_key in m}
    old = next(iter(olds), None)
    where = "gpio" if {"host", "port"} & gm.keys() else old
    kind = spec(KIND, m["kind"].value)
    if where and kind.gpio_address:
        line = m[where].line if where != "gpio" else gm[min({"host", "port"} & gm.keys())].line
        raise L.fail(line, f"{key}.{where}", f"a {m['kind'].value} target's GPIO daemon is "
                     f"{kind.gpio_address}; remove the address here")
    if where == "gpio" and old:
        raise L.fail(m[old].line, f"{key}.{old}", "the daemon's address is already in "
                     "gpio: host/port; keep one of the two")
    if old and olds[old] != backend:
        raise L.fail(m[old].line, f"{key}.{old}", f"is for gpio.backend {olds[old]}; write "
                     f"the {backend} daemon's address as gpio: {{host: ..., port: ...}}")
    am = L.mapping(m[old], f"{key}.{old}", {"host", "port"}) if where == old and old else gm
    address: dict[str, Any] = {"port": chosen.default_port}
    if "host" in am:
        address["host"] = L.string(am["host"], f"{key}.{where}.host")
    if "port" in am:
        address["port"] = L.integer(am["port"], f"{key}.{where}.port", 1, 65535)
    return GpioConfig(backend, **address, options=got)


def _unknown_test(key: str, suite: dict[str, SuiteTest]) -> str:
    """Why a known_issues key names no test of the suite ("" if it names one): a key that
    matches nothing would silently mark nothing. The suite's tests and their set sources
    are read from its file (harness.suite.catalogue), never imported."""
    m = re.fullmatch(r"(\w+)\[(\w+)\]", str(key))
    if not m:
        return f"{key!r} is not 'test_name[kind]' (e.g. 'test_wake[hard]')"
    name, kind = m.groups()
    if name not in suite:
        near = difflib.get_close_matches(name, suite, n=1)
        return (f"{key!r} names no test of the suite"
                + (f" (did you mean {near[0]}?)" if near else f"; tests: {', '.join(suite)}"))
    kinds = suite[name].kinds
    if kind not in kinds:
        return f"{key!r}: {name} runs with {', '.join(kinds)}, not {kind!r}"
    return ""


def _line_of(node: Node, *keys: str) -> int:
    """Line of a nested key under a target node, or the deepest one that exists."""
    line = node.line
    for k in keys:
        if not isinstance(node.value, dict) or k not in node.value:
            break
        node = node.value[k]
        line = node.line
    return line


def check_shared_wires(L: Loader, tn: Node, targets: list[TargetConfig]) -> None:
    """Real benches can share a GPIO daemon: a Pi GPIO or a serial port used by two targets is a
    wire declared twice. (A kind whose targets each have their own Pi is left out.)"""
    gpios: dict[tuple[str, int], int] = {}
    ports: dict[str, int] = {}
    for i, t in enumerate(targets):
        if spec(KIND, t.kind).own_pi:  # each has its own simulated Pi
            continue
        node = tn.value[i]
        for role in ("stimulus", "ack", "reset", "stimulus_sense"):
            wire = getattr(t.wiring, role)
            if wire is None:
                continue
            gpio, sub = (wire, ()) if isinstance(wire, int) else (wire.pi_gpio, ("pi_gpio",))
            pi = f"place {t.place}" if t.place else f"{t.gpio.host}:{t.gpio.port}"
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
