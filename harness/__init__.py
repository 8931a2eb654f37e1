"""tsfrig: a hardware-in-the-loop test rig for MicroPython's asyncio.ThreadSafeFlag.

PYTEST_DONT_REWRITE: the harness holds no test asserts, and `tsfrig run` imports it before
pytest starts (pytest would warn that it cannot rewrite it).
"""

__version__ = "0.1.0"
