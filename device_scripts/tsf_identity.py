# tsfrig board identity (MicroPython; uploaded to the target, never run by CPython).
# Imports nothing that the firmware under test might break (asyncio is tried, not required),
# so a build whose asyncio fails to import still comes up and is judged by the suite.
import sys

import micropython


def _asyncio():
    try:
        import asyncio
    except Exception as e:  # noqa - a broken asyncio is a finding for the suite, not bring-up
        return "import failed: %s: %s" % (type(e).__name__, e)
    return getattr(asyncio, "__file__", "frozen")


def _dropped_irqs():
    try:
        import machine
    except ImportError:
        return None
    return getattr(machine, "_irq_dropped", None)


def identity():
    """Firmware identity as the board reports it."""
    import os

    impl = sys.implementation
    info = {
        "implementation": impl.name,
        "version": ".".join(str(x) for x in impl.version[:3]),
        "sys_version": sys.version,
        "machine": getattr(impl, "_machine", ""),
        "build": getattr(impl, "_build", ""),
        "mpy": getattr(impl, "_mpy", 0),
        "platform": sys.platform,
        "asyncio": _asyncio(),
        "opt_level": micropython.opt_level() if hasattr(micropython, "opt_level") else -1,
    }
    try:
        info["uname"] = " ".join(os.uname())
    except AttributeError:
        info["uname"] = None
    info["irq_dropped"] = _dropped_irqs()
    return info
