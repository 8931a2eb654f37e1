"""The board link: the jumper wires between the simulated Pi and the virtual board.

The virtual board's ``machine`` module (harness/sim/mpy/machine.py, MicroPython) opens one
TCP connection to 127.0.0.1:<port> given in the VM's environment as ``TSFRIG_WIRE``.
Both directions carry fixed 8-byte frames so the board side decodes them into a
preallocated buffer without allocating:

    byte 0   frame_type: b"E" level change, b"M" pin mode, b"H" hello
    byte 1   board pin number (0..255)
    byte 2   level (E) or mode (M: 0 input, 1 output)
    byte 3   pull (M: 0 none, 1 up, 2 down); 0 for E
    byte 4-7 tick, little-endian u32 (same clock as the Pi's tick, see clock.py)

Pi -> board: ``H`` once the link is live (the board's ``import machine`` waits for it,
so no edge is sent before the board listens); ``E`` when a Pi output wired to a board pin
changes level (tick = the edge's exact scheduled tick); on connect, one ``E`` per wired
board pin with its level.
Board -> Pi: ``M`` when a pin is configured, ``E`` when a board output changes level
(tick = the board's ``time.ticks_us() & 0xFFFFFFFF`` at the write).
"""

import struct

FRAME = struct.Struct("<cBBBI")
FRAME_SIZE = FRAME.size  # 8
EDGE = b"E"
MODE = b"M"
HELLO = b"H"
ENV_WIRE = "TSFRIG_WIRE"


def encode(frame_type: bytes, pin: int, value: int, tick: int, pull: int = 0) -> bytes:
    """Pack one frame."""
    return FRAME.pack(frame_type, pin, value, pull, tick & 0xFFFFFFFF)


def decode(frame: bytes) -> tuple[bytes, int, int, int, int]:
    """Unpack one frame into (frame_type, pin, value, pull, tick)."""
    frame_type, pin, value, pull, tick = FRAME.unpack(frame)
    return frame_type, pin, value, pull, tick
