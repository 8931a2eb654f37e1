"""One bring-up of a target's bench, the order the pytest plugin and `tsfrig doctor` share:
bench -> GPIO -> board -> upload -> identity -> probe -> wiring.

Each step is one function here, taking what the steps before it gave. The plugin runs them as
session fixtures (a failure is the target's bench fault), doctor as checks (one line each,
with a deadline and the fix); neither has its own copy of a step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.benches import BenchAddress, BenchProvider, bench_for
from harness.board.profiles import BoardProbe, probe_board, resolve_profile
from harness.board.recovery import recover
from harness.board.session import BoardSession, BoardStopped
from harness.board.wiring import check_wiring
from harness.gpio import GpioRig, connect_gpio

if TYPE_CHECKING:
    from harness.board.ports import Profile
    from harness.config import RigConfig, TargetConfig
    from harness.power import PowerSwitch

log = logging.getLogger(__name__)
IDENTITY_CODE = "import tsf_identity, json\nprint(json.dumps(tsf_identity.identity()))"


def bench(target: TargetConfig, rig: RigConfig) -> BenchProvider:
    """The provider of the target's kind, not started yet (its start() brings the bench up
    and says where the board and the GPIO daemon are)."""
    return bench_for(target, rig)


def gpio(target: TargetConfig, address: BenchAddress) -> GpioRig:
    """The Pi side, through the target's GPIO backend, connected and set up."""
    return connect_gpio(target.gpio.backend, address.gpio_host, address.gpio_port,
                        target.wiring, **target.gpio.options)


def board(target: TargetConfig, address: BenchAddress,
          timeout_s: float | None = None) -> BoardSession:
    """The board's serial session (not reset yet: a wedged board is the caller's to recover)."""
    return BoardSession(address.serial_port, target.serial.baudrate,
                  timeout_s=timeout_s if timeout_s is not None
                  else target.budgets.device_timeout_s)


def upload(t: BoardSession) -> None:
    """The device scripts onto the board (only changed files are sent)."""
    t.upload()


def identity(t: BoardSession) -> dict:
    """What the board says it runs (device_scripts/tsf_identity.py)."""
    return json.loads(t.exec(IDENTITY_CODE).strip().splitlines()[-1])


def probe(t: BoardSession, target: TargetConfig) -> tuple[BoardProbe, Profile, list[str]]:
    """What the board can do, the profile that picks, and each place the probe contradicts
    the target's settings (one line each)."""
    found = probe_board(t, target.wiring.stimulus.board_pin)
    profile, warnings = resolve_profile(target, found)
    return found, profile, warnings


def wiring(t: BoardSession, rig: GpioRig, target: TargetConfig) -> dict:
    """Every wire's loopback self-test (harness/board/wiring.py): what each one saw."""
    return check_wiring(t, rig, target.wiring)


def once_more_if_mute(step: Callable[..., Any], t: BoardSession, gpio_rig: GpioRig,
                      switch: PowerSwitch | None, *args: Any) -> Any:
    """step(*args), and once more after the escalating recovery if the board went mute in it:
    a board can stall anywhere in the bring-up (the fault matrix stops its VM for 15 s as the
    first soft reboot starts it; under load that lands in the upload or the probe). A board
    still mute after that is the bring-up's fault, as before."""
    try:
        return step(*args)
    except BoardStopped as e:
        log.warning("the board went mute in the bring-up's %s (%s): recovering it, then "
                    "once more", step.__name__.strip("_"), e)
        recover(t, gpio_rig, switch)
        return step(*args)
