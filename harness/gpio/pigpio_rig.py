"""The Pi side of the bench: pigpio stimulus pulses and edge capture on the wires.

Works the same against a real pigpiod and the simulated one: only the pigpio client
library is used. pigpio's ticks wrap at 32 bits; edges leave here unwrapped (64-bit µs on
the Pi's clock), so nothing above this module does tick arithmetic.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import struct
import time

import pigpio

from harness.config import Wiring
from harness.config.specs import GpioSpec
from harness.gpio import STALL_S, EdgeLog, GpioError, Relinking
from harness.gpio.daemon import ask, close_all, connected_client, guarded
from harness.gpio.ticks import TickUnwrapper

log = logging.getLogger(__name__)

PULSE_US = 10  # stimulus pulse width: short, like an interrupt line's strobe
PULSE_REPORT_S = 2.0  # a pulse pigpio doesn't report by then: the Pi is mute
PIGPV_CMD = 26  # pigpiod's "get version" command: a harmless handshake
FIX = "start it on the Pi (sudo pigpiod -s 1) or fix pigpio.host/port in rig_config.yaml"


class EdgeCapture(EdgeLog):
    """Every edge pigpio reports on one GPIO, unwrapped onto one timeline."""

    def __init__(self, pi: pigpio.pi, gpio: int, unwrap: TickUnwrapper,
                 edge: int = pigpio.EITHER_EDGE) -> None:
        super().__init__()
        self.gpio = gpio
        self._unwrap = unwrap
        self._cb = pi.callback(gpio, edge, self._on_edge)

    def _on_edge(self, gpio: int, level: int, tick: int) -> None:
        if level > 1:  # watchdog timeout report, not an edge
            return
        self.add(self._unwrap(tick), level)

    def cancel(self) -> None:
        self._cb.cancel()


class PigpioRig(Relinking):
    """One pigpio connection: drives the stimulus GPIO, watches the ack GPIO. After any
    failed call the link is out of step (a late answer would be read as the next one's), so
    it is marked broken and `ensure_link()` reconnects and re-applies the GPIO set-up."""

    daemon = "pigpio"

    def __init__(self, host: str, port: int, wiring: Wiring,
                 connect_timeout_s: float = 5.0, command_timeout_s: float = 5.0) -> None:
        self.host, self.port = host, port
        self.wiring = wiring
        self.stimulus_gpio = wiring.stimulus.pi_gpio
        self.ack_gpio = wiring.ack.pi_gpio
        self.reset_gpio = wiring.reset.pi_gpio if wiring.reset else None
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.broken = ""  # why the link is out of step, until it is re-established
        self.reconnects = 0
        self.last_pulse_at = 0.0  # host monotonic time of the last stimulus sent
        self.unwrap = TickUnwrapper()  # one timeline for both wires, across reconnects
        self._connect()

    def _connect(self) -> None:
        log.info("connecting to pigpiod at %s:%s", self.host, self.port)
        handshake(self.host, self.port, self.connect_timeout_s)
        self.pi = _connect_client(self.host, self.port, self.connect_timeout_s)
        self.pi.sl.s.settimeout(self.command_timeout_s)  # the client itself would wait forever
        self.broken = ""
        with self.guard("set up the stimulus and ack GPIOs"):
            self.pi.set_mode(self.stimulus_gpio, pigpio.OUTPUT)
            self.pi.write(self.stimulus_gpio, 0)
            self.pi.set_mode(self.ack_gpio, pigpio.INPUT)
            self.pi.set_pull_up_down(self.ack_gpio, pigpio.PUD_OFF)
            if self.reset_gpio is not None:  # released: the board's pull-up holds RUN high
                self.pi.set_mode(self.reset_gpio, pigpio.INPUT)
            self.stimulus = EdgeCapture(self.pi, self.stimulus_gpio, self.unwrap,
                                        pigpio.RISING_EDGE)
            self.ack = EdgeCapture(self.pi, self.ack_gpio, self.unwrap, pigpio.EITHER_EDGE)

    def guard(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Context for pigpio calls: a pigpiod that times out or refuses a command is a bench
        fault (GpioError), never a firmware verdict."""
        return guarded(self, what, (OSError, pigpio.error, struct.error),
                       "check pigpiod is running and the Pi is reachable")

    def identity(self) -> dict:
        with self.guard("report its version"):
            return {
                "hw_revision": self.pi.get_hardware_revision(),
                "pigpio_version": self.pi.get_pigpio_version(),
                "stimulus_times": f"sampled: pigpio's reports of GPIO {self.stimulus_gpio}",
            }

    def _ping(self) -> None:
        with self.guard("read the current tick"):
            self.pi.get_current_tick()

    def reset_capture(self) -> None:
        """Start a fresh capture now: edges stamped before this tick (pin set-up whose
        notification is still in flight) are not counted."""
        with self.guard("read the current tick"):
            now = self.unwrap(self.pi.get_current_tick())
        self.stimulus.clear(now)
        self.ack.clear(now)

    def pulse(self) -> None:
        """One stimulus pulse now (pigpio's trigger: exact width, no host jitter); returns once
        pigpio has reported its edge."""
        before = self.stimulus.count()
        with self.guard("send a stimulus pulse"):
            self.pi.gpio_trigger(self.stimulus_gpio, PULSE_US, 1)
        self.last_pulse_at = time.monotonic()
        if not self.stimulus.wait_for(before + 1, PULSE_REPORT_S):  # no vacuous scenario
            raise self._edges_missing(before, 1, PULSE_REPORT_S)

    def burst(self, count: int, period_us: int) -> None:
        """count pulses at exact spacing, played by pigpio's waveform engine; returns when sent."""
        if count <= 0:
            return
        mask = 1 << self.stimulus_gpio
        low_us = max(period_us - PULSE_US, 1)
        pulses = [pigpio.pulse(mask, 0, PULSE_US), pigpio.pulse(0, mask, low_us)] * count
        pi = self.pi
        with self.guard(f"build a {count}-pulse waveform"):
            pi.wave_clear()
            pi.wave_add_generic(pulses)
            wid = pi.wave_create()
        start = self.stimulus.count()
        try:
            with self.guard("send a waveform"):
                pi.wave_send_once(wid)
            self.last_pulse_at = time.monotonic()
            deadline_s = count * period_us / 1e6 + 5.0
            if not self.stimulus.wait_for(start + count, deadline_s):
                raise self._edges_missing(start, count, deadline_s)
            self._wait_wave_done(deadline_s)
        finally:
            if not self.broken:  # on a broken link the reconnect clears pigpiod's waves
                with self.guard("delete a waveform"):
                    pi.wave_delete(wid)

    def edge_timing(self) -> str:
        """How exact this rig's edge timestamps are, in one line (`tsfrig doctor`)."""
        us = self.edge_resolution_us()
        return f"edge timestamps to {us} µs" + (
            f" (pigpiod samples every {us} µs: `pigpiod -s 1` gives 1 µs)" if us > 1 else "")

    def edge_resolution_us(self) -> int:
        """The resolution of pigpio's edge ticks: its sample period (pigpiod -s, default 5
        µs). pigpiod has no command that reports it, so it is measured: pulses at prime
        spacings on the stimulus wire, and the GCD of the intervals pigpio stamps on them
        (1 when every tick is exact; a multiple of the sample period otherwise)."""
        mask = 1 << self.stimulus_gpio
        periods = (23, 29, 31, 37, 41, 43, 47, 53, 59, 61)  # high 10 µs: any sampler sees it
        pulses = []
        for period in periods:
            pulses += [pigpio.pulse(mask, 0, 10), pigpio.pulse(0, mask, period - 10)]
        self.reset_capture()
        with self.guard("build the resolution probe's waveform"):
            self.pi.wave_clear()
            self.pi.wave_add_generic(pulses)
            wid = self.pi.wave_create()
        try:
            with self.guard("send a waveform"):
                self.pi.wave_send_once(wid)
            if not self.stimulus.wait_for(len(periods), 5.0):
                raise self._edges_missing(0, len(periods), 5.0)
            self._wait_wave_done(5.0)
        finally:
            if not self.broken:
                with self.guard("delete a waveform"):
                    self.pi.wave_delete(wid)
        ticks = [e.us for e in self.stimulus.edges[:len(periods)]]
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        return functools.reduce(math.gcd, gaps, 0) or 1

    def _edges_missing(self, start: int, want: int, waited_s: float) -> GpioError:
        """Why pigpio reported fewer stimulus edges than it was told to make, as far as can be
        told: ask pigpiod (timed) whether it still answers and still drives the GPIO as an
        output. A slow answer or late edges mean pigpiod or the Pi stalled; a GPIO that is no
        longer an output means another program took it; anything else is said to be unknown."""
        gpio = self.stimulus_gpio
        said = (f"pigpio reported {self.stimulus.count() - start} of {want} stimulus edges on "
                f"GPIO {gpio} within {waited_s:.1f} s")
        t0 = time.monotonic()
        try:
            with self.guard(f"say GPIO {gpio}'s mode after the missing edges"):
                mode = self.pi.get_mode(gpio)
        except GpioError:
            return GpioError(f"{said}, and then pigpiod at {self.host}:{self.port} {self.broken}, "
                             "so pigpiod or the Pi stalled or died; restart pigpiod (is the Pi "
                             "overloaded?)")
        took = time.monotonic() - t0
        late = self.stimulus.count() - start >= want
        if took > STALL_S or late:
            return GpioError(f"{said}, so pigpiod at {self.host}:{self.port} stalled (it took "
                             f"{took:.1f} s to answer a command"
                             f"{', and the edges came late' if late else ''}); restart "
                             "pigpiod, or free the Pi's CPU if it is overloaded")
        if mode != pigpio.OUTPUT:
            return GpioError(f"{said}, and GPIO {gpio} is no longer an output (mode {mode}), "
                             f"so another program reconfigured it; free GPIO {gpio}: stop the "
                             "program that uses it")
        return GpioError(f"{said}, yet pigpiod answers and GPIO {gpio} is still its output: "
                         "the cause is not known (did pigpiod's edge reports stop?); restart "
                         "pigpiod and run `tsfrig doctor`")

    def _wait_wave_done(self, timeout_s: float) -> None:
        """The last rising edge is reported before the wave's last falling edge is played: a
        pulse sent before then would find the line still high and make no edge. pigpio has
        no event for the end of a wave, so ask it (every 0.5 ms, with a deadline)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.guard("ask whether the waveform is done"):
                busy = self.pi.wave_tx_busy()
            if not busy:
                return
            if time.monotonic() > deadline:
                raise GpioError(f"pigpio still sending a waveform after {timeout_s:.1f} s: "
                                 "check nothing else uses pigpio's wave engine")
            time.sleep(0.0005)

    def hard_reset(self, reset_gpio: int, hold_ms: float = 10.0) -> None:
        """Pull the board's RUN/EN line low for hold_ms, then release it (input: the board's
        own pull-up takes it high), as an open-drain reset switch would."""
        with self.guard(f"pulse the reset line on GPIO {reset_gpio}"):
            self.pi.write(reset_gpio, 0)
            time.sleep(hold_ms / 1000)  # the reset pulse width, not a wait for anything
            self.pi.set_mode(reset_gpio, pigpio.INPUT)

    def close(self) -> None:
        """Leave the stimulus low and disconnect; a pigpiod already gone is not an error here."""
        if not self.broken:
            with contextlib.suppress(OSError, pigpio.error, struct.error):
                self.pi.write(self.stimulus_gpio, 0)
        self._disconnect()

    def _disconnect(self) -> None:
        """Drop the connection without waiting on pigpiod: it may be gone or silent."""
        notify = getattr(self.pi, "_notify", None)
        socks = [self.pi.sl.s, notify.sl.s if notify is not None else None]
        if socks[0] is not None:
            socks[0].settimeout(0.5)  # a silent daemon must not hold up the goodbye
        with contextlib.suppress(OSError, pigpio.error, struct.error, AttributeError):
            self.stimulus.cancel()
            self.ack.cancel()
        with contextlib.suppress(OSError, pigpio.error, struct.error):
            self.pi.stop()
        close_all(socks, [notify])  # wakes the client's notification thread: it ends


def handshake(host: str, port: int, timeout_s: float) -> None:
    """Connect and ask pigpiod its version, with a deadline: the pigpio client connects and
    waits for answers with none, so a daemon that accepts but never answers would hang it."""
    where = f"pigpiod at {host}:{port}"
    answer = ask(host, port, struct.pack("<IIII", PIGPV_CMD, 0, 0, 0), 16, timeout_s,
                 "pigpiod", FIX)
    if struct.unpack("<I", answer[:4])[0] != PIGPV_CMD:
        raise GpioError(f"{where} answered, but not in pigpiod's protocol: is it pigpiod?")


def _connect_client(host: str, port: int, timeout_s: float) -> pigpio.pi:
    """pigpio.pi() with a deadline: its constructor has none."""
    return connected_client(lambda: pigpio.pi(host, port, show_errors=False), "pigpio", host,
                            port, timeout_s, "complete the pigpio handshake", FIX)


def _hex(rev: object) -> str:
    """pigpio's hardware revision as the Pi's docs and `tsfrig doctor` write it (0xc03111)."""
    return f"0x{rev:x}" if isinstance(rev, int) else str(rev if rev is not None else "?")


def describe_daemon(info: dict) -> str:
    """The daemon as the report's bench line names it, from the identity results.json keeps."""
    return f"v{info.get('pigpio_version', '?')} on hw revision {_hex(info.get('hw_revision'))}"


SPEC = GpioSpec(
    rig=PigpioRig, daemon="pigpiod on a Pi 1-4 (or the simulated Pi)", client="pigpio",
    start="sudo pigpiod -s 1", default_port=8888,
    gpios=(0, 31), gpios_why="pigpio callbacks and notifications only cover bank 1",
    pis=(1, 2, 3, 4), address_key="pigpio", describe_daemon=describe_daemon)
