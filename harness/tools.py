"""Running an external tool of the bench (a flasher, a power switch) to completion within a
deadline, every way it can fail turned into one line of the caller's bench-fault error:
what was tried, what went wrong (the tool's last line of output), and the fix."""

from __future__ import annotations

import subprocess


def run_tool(argv: list[str], what: str, timeout_s: float, fix: str,
             error: type[Exception], slow_fix: str) -> None:
    """Run argv; raise `error` naming `what` if it is missing, overruns timeout_s or fails."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                           stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise error(f"{what}: {argv[0]} not found; {fix}") from None
    except subprocess.TimeoutExpired:
        raise error(f"{what}: no result within {timeout_s:g} s; {slow_fix}") from None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()
        raise error(f"{what}: exit status {r.returncode}: "
                    f"{tail[-1] if tail else 'no output'}; {fix}")
