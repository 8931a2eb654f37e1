# tsfrig clock check, board side (MicroPython; uploaded to the target, never run by CPython).
# The host pulses the stimulus wire a few times, seconds apart; the IRQ handler stamps each
# edge with time.ticks_us(), and the host compares those intervals with the Pi's edge
# timestamps to get the drift between the two clocks.
import time

from machine import Pin

N = 32
_ticks = [0] * N  # preallocated: the hard IRQ handler must not allocate
count = 0
_pin = None


def _edge(pin):
    global count
    if count < N:
        _ticks[count] = time.ticks_us()
        count += 1


def arm(stim_pin, hard):
    """Stamp rising edges on the stimulus pin (a hard IRQ where the port has one)."""
    global count, _pin
    count = 0
    _pin = Pin(stim_pin, Pin.IN, Pin.PULL_DOWN)
    try:
        _pin.irq(_edge, Pin.IRQ_RISING, hard=hard)
    except TypeError:  # esp32: no hard argument, every pin IRQ is soft
        _pin.irq(_edge, Pin.IRQ_RISING)


def wait(n, timeout_ms):
    """Keep the VM running until n edges or the timeout, then report: a soft IRQ (esp32's
    only kind) runs between bytecodes, not while the REPL waits for input."""
    t0 = time.ticks_ms()
    while count < n and time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        time.sleep_ms(1)
    report()


def report():
    """Disarm and print the edges' times, in µs after the first (wrap-safe)."""
    _pin.irq(None)
    print([time.ticks_diff(_ticks[i], _ticks[0]) for i in range(count)])
