"""Escalating recovery of a board that stopped answering: Ctrl-C and a soft reset first,
then a hard reset over the RUN/EN wire when the rig config declares one, then a power cycle
when the target has a `power:` switch. The step that worked goes into the verdict ("power
cycle (uhubctl 1-1.2 port 3) got it back"), so a hang reads as what it was and the rest of
the suite still runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from harness.board.session import BoardSession, BoardStopped, TargetError
from harness.gpio import GpioError, GpioRig
from harness.power import PowerError, PowerSwitch

log = logging.getLogger(__name__)

SOFT = "Ctrl-C + soft reset"
HARD = "hard reset (RUN pin)"
POWER = "power cycle"


def power_step(power: PowerSwitch) -> str:
    """The power step as the verdict names it: 'power cycle (uhubctl 1-1.2 port 3)'."""
    return f"{POWER} ({power.describe()})"


def recover(target: BoardSession, pi: GpioRig | None, power: PowerSwitch | None = None,
            soft_s: float | None = None) -> str:
    """Bring the board back to the raw REPL; return the step that did it. Raises
    TargetError when the serial link itself is gone (a bench fault) and BoardStopped when
    the port is there but the board stays mute, each saying what was tried; PowerError when
    the last step, the power switch, itself fails. soft_s (fail fast, for a build that
    already hung or crashed this run): the soft reset's deadline when a RUN pin or power
    switch can take over; a board that answers at all answers one in well under a second."""
    log.info("recovering the board on %s: %s", target.port, SOFT)
    can_escalate = (pi is not None and pi.reset_gpio is not None) or power is not None
    try:
        target.recover(soft_s if can_escalate else None)
        return SOFT
    except (BoardStopped, TargetError) as e:
        error: BoardStopped | TargetError = e
        log.warning("%s did not work: %s", SOFT, e)
    reset_gpio = pi.reset_gpio if pi is not None else None
    if pi is not None and reset_gpio is not None:
        log.info("recovering the board: %s on Pi GPIO %s", HARD, reset_gpio)
        try:
            pi.hard_reset(reset_gpio)
            target.reopen(target.timeout_s)
            target.soft_reset()
            return HARD
        except (BoardStopped, TargetError) as e:
            error = type(e)(f"board still mute after a hard reset on Pi GPIO {reset_gpio}: {e}")
        except GpioError as e:
            if power is None:
                raise
            error = BoardStopped(f"{error}; the RUN-pin reset failed: {e}")
        log.warning("%s did not work: %s", HARD, error)
    if power is None:
        fix = "check the reset wire, or declare power: so the rig can power-cycle the board" \
            if reset_gpio is not None else "declare wiring.reset (a Pi GPIO on the board's " \
            "RUN/EN pin) or power: so the rig can hard-reset or power-cycle it"
        raise type(error)(f"{error}; {fix}")
    step = power_step(power)
    log.info("recovering the board: %s", step)
    target.close()  # a board's port can only come back under its old name once it is free
    try:
        target.port = power.cycle(target.port)
    except PowerError as e:  # the port gone and no switch to bring it back: still the link's
        raise (TargetError if isinstance(error, TargetError) else PowerError)(
            f"{error}; then {e}") from None
    try:
        target.reopen(target.timeout_s)
        target.soft_reset()
    except (BoardStopped, TargetError) as e:
        raise type(e)(f"board still mute after a {step}: {e}; check the board boots "
                      "MicroPython and the power switch powers this board") from None
    return step


@dataclass(frozen=True)
class Recovery:
    """What trying to get the board back found, for the verdict's message."""

    step: str = ""  # the step that got it back
    failure: str = ""  # why nothing did
    link_lost: bool = False  # the serial port itself is gone: the bench's fault

    def says(self) -> str:
        return f"{self.step} got it back" if self.step else f"nothing got it back ({self.failure})"


def recover_after_fault(target: BoardSession, pi: GpioRig | None,
                        power: PowerSwitch | None = None,
                        soft_s: float | None = None) -> Recovery:
    """recover(), reporting instead of raising: a GPIO link that is out of step is not used
    for the RUN-pin reset."""
    try:
        return Recovery(step=recover(target, pi if pi is not None and not pi.broken else None,
                                     power, soft_s))
    except TargetError as e:
        return Recovery(failure=str(e), link_lost=True)
    except (BoardStopped, GpioError, PowerError) as e:
        return Recovery(failure=str(e))
