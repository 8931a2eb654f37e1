# tsfrig wiring self-test, board side (MicroPython; uploaded to the target, never run by
# CPython). The host pulses the stimulus wire and asks how many edges arrived; then it asks
# the board to toggle the ack wire and counts the edges on the Pi.
from machine import Pin

count = 0
_stim = None
_ack = None


def _edge(pin):
    global count
    count += 1


def arm(stim_pin, ack_pin):
    """Count rising edges on the stimulus pin (soft IRQ) and drive the ack pin low."""
    global count, _stim, _ack
    count = 0
    _stim = Pin(stim_pin, Pin.IN, Pin.PULL_DOWN)
    _stim.irq(_edge, Pin.IRQ_RISING)
    _ack = Pin(ack_pin, Pin.OUT, value=0)


def disarm():
    _stim.irq(None)


def toggle_ack(n):
    for _ in range(n):
        _ack.value(not _ack.value())
