"""tsfrig: a hardware-in-the-loop test rig for MicroPython's asyncio.ThreadSafeFlag."""

__version__ = "0.1.0"
