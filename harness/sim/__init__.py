"""The simulated bench: a pigpiod-compatible Pi and a virtual MicroPython board, wired."""
