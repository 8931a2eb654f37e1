"""The bench trace: every harness module logs to its own `logging` logger under "harness";
a run writes all of it at DEBUG to trace.log in its run directory (GPIO daemon calls, serial
exchanges summarised, resets, recovery steps, timings), so a failure on a real bench can be
diagnosed from the artefact. The console gets only --log-level and above."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = "harness"
FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s"


class _TraceFile(logging.FileHandler):
    """A trace that can't be written (disk full) stops quietly: the results writer reports
    the host fault once, and a logging traceback on stderr would only bury it."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        logging.getLogger(ROOT).removeHandler(self)


def start_trace(run_dir: Path | None, console_level: str = "WARNING",
                tag: str = "") -> Callable[[], None]:
    """Attach the trace file (when there is a run directory) and the console; returns the
    function that detaches and closes them. tag (an xdist worker's id) leads each line:
    parallel workers append to one trace.log."""
    logger = logging.getLogger(ROOT)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # pytest's log capture would repeat every line in failures
    handlers: list[logging.Handler] = []
    if run_dir is not None:
        trace = _TraceFile(Path(run_dir) / "trace.log", encoding="utf-8")
        trace.setLevel(logging.DEBUG)
        handlers.append(trace)
    console = logging.StreamHandler(sys.__stderr__)
    console.setLevel(console_level.upper())
    handlers.append(console)
    for h in handlers:
        h.setFormatter(logging.Formatter(f"[{tag}] {FORMAT}" if tag else FORMAT, "%H:%M:%S"))
        logger.addHandler(h)

    def stop() -> None:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
    return stop
