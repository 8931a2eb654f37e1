"""Escalating recovery of a board that stopped answering: Ctrl-C and a soft reset first,
then a hard reset over the RUN/EN wire when the rig config declares one. The step that
worked goes into the verdict ("Ctrl-C got it back"), so a hang reads as what it was and
the rest of the suite still runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from harness.gpio import GpioError, GpioRig
from harness.target import BoardStopped, Target, TargetError

log = logging.getLogger(__name__)

SOFT = "Ctrl-C + soft reset"
HARD = "hard reset (RUN pin)"


def recover(target: Target, pi: GpioRig | None) -> str:
    """Bring the board back to the raw REPL; return the step that did it. Raises
    TargetError when the serial link itself is gone (a bench fault) and BoardStopped when
    the port is there but the board stays mute, each saying what was tried."""
    log.info("recovering the board on %s: %s", target.port, SOFT)
    try:
        target.recover()
        return SOFT
    except (BoardStopped, TargetError) as e:
        soft_error = e
        log.warning("%s did not work: %s", SOFT, e)
    reset_gpio = pi.reset_gpio if pi is not None else None
    if pi is None or reset_gpio is None:
        raise type(soft_error)(f"{soft_error}; declare wiring.reset (a Pi GPIO on the board's "
                               "RUN/EN pin) so the rig can hard-reset it")
    log.info("recovering the board: %s on Pi GPIO %s", HARD, reset_gpio)
    pi.hard_reset(reset_gpio)
    target.reopen(target.timeout_s)
    try:
        target.soft_reset()
    except (BoardStopped, TargetError) as e:
        raise type(e)(f"board still mute after a hard reset on Pi GPIO {reset_gpio}: {e}; "
                      "check the reset wire, or power-cycle the board") from None
    return HARD


@dataclass(frozen=True)
class Recovery:
    """What trying to get the board back found, for the verdict's message."""

    step: str = ""  # the step that got it back
    failure: str = ""  # why nothing did
    link_lost: bool = False  # the serial port itself is gone: the bench's fault

    def says(self) -> str:
        return f"{self.step} got it back" if self.step else f"nothing got it back ({self.failure})"


def recover_after_fault(target: Target, pi: GpioRig | None) -> Recovery:
    """recover(), reporting instead of raising: a GPIO link that is out of step is not used
    for the RUN-pin reset."""
    try:
        return Recovery(step=recover(target, pi if pi is not None and not pi.broken else None))
    except TargetError as e:
        return Recovery(failure=str(e), link_lost=True)
    except (BoardStopped, GpioError) as e:
        return Recovery(failure=str(e))
