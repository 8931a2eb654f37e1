"""Escalating recovery of a board that stopped answering: Ctrl-C and a soft reset first,
then a hard reset over the RUN/EN wire when the rig config declares one. The step that
worked is reported with the fault, so a wedged board is told apart from bad firmware and
the rest of the suite still runs."""

from __future__ import annotations

from harness.pi import PiDriver
from harness.target import Target, TargetError

SOFT = "Ctrl-C + soft reset"
HARD = "hard reset (RUN pin)"


def recover(target: Target, pi: PiDriver | None) -> str:
    """Bring the board back to the raw REPL; return the step that did it, or raise
    TargetError saying what was tried. The hard reset uses the Pi's reset line, if wired."""
    try:
        target.recover()
        return SOFT
    except TargetError as e:
        soft_error = e
    reset_gpio = pi.reset_gpio if pi is not None else None
    if pi is None or reset_gpio is None:
        raise TargetError(f"{soft_error}; declare wiring.reset (a Pi GPIO on the board's RUN/EN "
                          "pin) so the rig can hard-reset it")
    pi.hard_reset(reset_gpio)
    target.reopen(target.timeout_s)
    try:
        target.soft_reset()
    except TargetError as e:
        raise TargetError(f"board still mute after a hard reset on Pi GPIO {reset_gpio}: {e}; "
                          "check the reset wire, or power-cycle the board") from None
    return HARD
