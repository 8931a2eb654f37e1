"""Board profiles: what each MicroPython port can do and what to expect of it, probed on the
board before the suite (device_scripts/tsf_probe.py).

A profile gives a target's defaults: which set sources run (esp32 has no hard pin IRQs, so
its hard tests are "not supported by this port", never failures), latency budgets from
published figures, the schedule queue's depth, the second waiter's behaviour, the reset pin's
name and how pins are named. An explicit key in the target's config wins over the profile;
where the probe contradicts the config or the profile, `resolve_profile` says so in one line.
`tsfrig doctor` calls probe_board and resolve_profile too.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.board.ports import GENERIC, NO_THREAD, PROFILES, UNSUPPORTED, Profile
from harness.board.sources import IRQ_SOURCES
from harness.config.registry import KIND, spec

if TYPE_CHECKING:
    from harness.board.session import BoardSession
    from harness.config import TargetConfig


@dataclass(frozen=True)
class BoardProbe:
    """What device_scripts/tsf_probe.py found on the board."""

    platform: str  # sys.platform
    sysname: str  # os.uname().sysname: the port's name on every port
    machine: str  # os.uname().machine (board and MCU)
    hard_irq: bool | None  # Pin.irq(hard=True) accepted; None: not probed
    hard_irq_error: str = ""
    thread: bool = False
    sched_depth: int | None = None
    sched_note: str = ""
    ticks_period: int | None = None
    asyncio: str | None = None  # "asyncio", "uasyncio" or None
    asyncio_file: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # probe -> what it raised

    @property
    def port(self) -> str:
        """The profile this board's port name selects ("" when none does)."""
        names = {self.sysname, self.platform} - {""}
        return next((p.name for p in PROFILES.values() for n in names if n in p.platforms), "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BoardProbe:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def probe_board(board: BoardSession, stim_pin: int | str | None = None) -> BoardProbe:
    """Run the probe on a board whose device scripts are uploaded. The hard-IRQ probe needs a
    pin it may claim for a moment (the stimulus pin); without one it is not asked."""
    out = board.exec(f"import tsf_probe, json\nprint(json.dumps(tsf_probe.probe({stim_pin!r})))")
    return BoardProbe.from_dict(json.loads(out.strip().splitlines()[-1]))


def _evidence(kind: str, probe: BoardProbe) -> str:
    """What the probe saw of a set source: why it can't run, or "" when it can."""
    if kind == "hard" and probe.hard_irq is False:
        return f"Pin.irq(hard=True) raises {probe.hard_irq_error}"
    if kind == "thread" and not probe.thread:
        return NO_THREAD
    return ""


def _pick(target: TargetConfig, probe: BoardProbe, warn: list[str]) -> Profile:
    found = probe.port
    board = f"{probe.sysname or probe.platform} ({probe.machine})"
    if target.profile != "auto":
        if found and found != target.profile:
            warn.append(f"profile: {target.profile} is set, but the board reports {board}: "
                        f"the {found} profile fits it; fix profile: or use auto")
        return PROFILES[target.profile]
    if not found:
        warn.append(f"no profile for the board's port {board}: tsfrig's generic defaults "
                    "apply; set profile: or irq_kinds and budgets")
        return dataclasses.replace(GENERIC, platforms=(probe.sysname or probe.platform,))
    return PROFILES[found]


def resolve_profile(target_cfg: TargetConfig, probe: BoardProbe) -> tuple[Profile, list[str]]:
    """The target's effective settings: the profile (the config's `profile:`, or the one the
    probe's port selects) with every key the config gives explicitly applied; and one line
    per place where the probe contradicts the config or the profile."""
    warn: list[str] = []
    base = _pick(target_cfg, probe, warn)
    given = target_cfg.explicit
    kinds = target_cfg.irq_kinds if "irq_kinds" in given else base.irq_kinds
    unsupported = {}
    for kind in IRQ_SOURCES:
        seen = _evidence(kind, probe)
        if kind in base.unsupported:
            unsupported[kind] = f"{base.name}: {seen or base.unsupported[kind]}"
            if not seen and (kind != "hard" or probe.hard_irq):
                warn.append(f"the probe found {kind} IRQs possible on {base.name}, whose profile "
                            f"has none: add {kind} to irq_kinds to test them")
        if kind in kinds and seen:
            how = "irq_kinds lists" if "irq_kinds" in given else f"the {base.name} profile runs"
            warn.append(f"{how} {kind}, but on this board {seen}: its {kind} tests will fail"
                        + ("" if "irq_kinds" in given else "; set irq_kinds without it if this "
                           "build lacks it"))
    latency = dict(base.latency_us)
    prev = 0.0
    for q in latency:  # per quantile: the config's where it gives one, never decreasing
        if f"budgets.latency_us.{q}" in given:
            latency[q] = target_cfg.budgets.latency_us[q]
        latency[q] = prev = max(prev, latency[q])
    depth = base.sched_depth or 4  # py/mpconfig.h's default when nothing is known
    if probe.sched_depth is not None:
        if base.sched_depth and probe.sched_depth != base.sched_depth:
            warn.append(f"the schedule queue holds {probe.sched_depth} on this board, the "
                        f"{base.name} profile says {base.sched_depth}: the board's is used")
        depth = probe.sched_depth
    reset = target_cfg.wiring.reset
    if reset is not None and isinstance(reset.board_pin, str) and \
            reset.board_pin.upper() != base.reset_pin:
        warn.append(f"wiring.reset.board_pin is {reset.board_pin!r}, but {base.name} boards reset "
                    f"on {base.reset_pin}: check the wire")
    variant = base.variant_of(probe.machine)
    chip = target_cfg.flash.options.get("chip") if target_cfg.flash is not None else None
    if chip and base.name == "esp32" and chip.lower().replace("-", "") != variant:
        warn.append(f"flash.chip is {chip}, but the board is an {variant} ({probe.machine}): "
                    f"esptool would write at the wrong offset; set flash.chip: {variant}")
    if probe.asyncio != "asyncio":
        has = f"only {probe.asyncio}" if probe.asyncio else "no asyncio module"
        warn.append(f"the board has {has}: the suite imports asyncio, every scenario will fail")
    for what, err in sorted(probe.errors.items()):
        if what not in ("thread", "hard_irq"):  # those two are answers, said above
            warn.append(f"probe {what} failed on the board: {err}")
    profile = dataclasses.replace(
        base, irq_kinds=tuple(kinds), unsupported=unsupported, latency_us=latency,
        sched_depth=depth, variant=variant,
        second_waiter=target_cfg.second_waiter if "second_waiter" in given
        else base.second_waiter,
        reset_pin=reset.board_pin if reset is not None and isinstance(reset.board_pin, str)
        else base.reset_pin)
    return profile, warn


def effective_target(target_cfg: TargetConfig, profile: Profile) -> TargetConfig:
    """The target config the suite runs with: the resolved profile's set sources, second
    waiter and latency budgets in place of the config's defaults."""
    budgets = dataclasses.replace(target_cfg.budgets, latency_us=dict(profile.latency_us))
    return dataclasses.replace(target_cfg, irq_kinds=profile.irq_kinds,
                               second_waiter=profile.second_waiter, budgets=budgets)


def skip_reason(target_cfg: TargetConfig, profile: Profile | None, kind: str) -> str | None:
    """Why a set source does not run on this target, or None when it runs."""
    kinds = profile.irq_kinds if profile is not None else target_cfg.irq_kinds
    why = spec(KIND, target_cfg.kind).skips.get(kind)
    if why:  # a source the bench kind itself can't give
        return why
    if kind not in IRQ_SOURCES or kind in kinds:
        return None
    if profile is not None and kind in profile.unsupported:
        return f"{UNSUPPORTED} ({profile.unsupported[kind]})"
    return f"{target_cfg.name} does not run {kind} IRQs (irq_kinds in rig config)"


def is_unsupported(message: str) -> bool:
    """A results.json skip message that says the port can't do the set source."""
    return message.removeprefix("Skipped: ").startswith(UNSUPPORTED)
