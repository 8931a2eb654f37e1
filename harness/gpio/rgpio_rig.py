"""The Pi side of the bench through rgpiod (the lg library's daemon: a Pi 5, or any Linux SBC)
with the unmodified `rgpio` client.

Edge times: rgpiod's alerts carry the kernel's event timestamp, CLOCK_MONOTONIC in ns since
boot. Edge.us is that // 1000: 64-bit µs that never wrap, the same unwrapped-µs convention
as pigpio's unwrapped ticks, so nothing above this module can tell them apart.

Stimulus times: rgpiod's outputs are software-timed by a daemon thread, and a line claimed
as an output raises no alerts, so the stimulus edge is measured on a second Pi input jumpered
to the stimulus wire (`wiring.stimulus_sense`): its alerts time the edge on the same clock as
the ack edges. Without one, stimulus times are the commanded times: when rgpiod accepted the
pulse, on the host's clock, moved onto the Pi's by the smallest (arrival - kernel timestamp)
seen over the alerts so far (the clock offset plus the quickest delivery). identity() says
which (`stimulus_times`), and results.json and the report carry it.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import time
from typing import Any

import rgpio

from harness.config import Wiring
from harness.config.specs import GpioSpec, Section
from harness.gpio import STALL_S, EdgeLog, GpioError, Relinking
from harness.gpio.daemon import ask, close_all, connected_client, guarded

log = logging.getLogger(__name__)

PULSE_US = 10  # stimulus pulse width
PULSE_OFF_US = 10  # lg wants on + off > 10 µs per pulse
PULSE_REPORT_S = 2.0  # a pulse the sense line doesn't report by then: the jumper is missing
LGV_CMD = 140  # rgpiod's "lg version" command: a harmless handshake
LG_MAGIC = 1818715245
HEADER = struct.Struct("<IIHHHH")
FIX = "start it on the Pi (rgpiod -n <this host>) or fix gpio.host/port in rig_config.yaml"


class PiClock:
    """The Pi's CLOCK_MONOTONIC as seen from here: host monotonic ns minus the smallest
    (arrival - kernel timestamp) over every alert so far. Unknown (None) until one arrives."""

    def __init__(self) -> None:
        self.offset_ns: int | None = None
        self._lock = threading.Lock()

    def observe(self, kernel_ns: int) -> None:
        d = time.monotonic_ns() - kernel_ns
        with self._lock:
            if self.offset_ns is None or d < self.offset_ns:
                self.offset_ns = d

    def us(self, host_ns: int | None = None) -> int | None:
        """A host monotonic instant (default now) in µs on the Pi's clock, if known."""
        if self.offset_ns is None:
            return None
        return ((time.monotonic_ns() if host_ns is None else host_ns) - self.offset_ns) // 1000


class AlertCapture(EdgeLog):
    """Every edge rgpiod reports on one line, in µs of the kernel's monotonic clock."""

    def __init__(self, sbc: rgpio.sbc, chip: int, gpio: int, clock: PiClock) -> None:
        super().__init__()
        self.gpio = gpio
        self._clock = clock
        self._cb = sbc.callback(chip, gpio, rgpio.BOTH_EDGES, self._on_alert)

    def _on_alert(self, chip: int, gpio: int, level: int, timestamp_ns: int) -> None:
        if level > 1:  # a watchdog report, not an edge
            return
        self._clock.observe(timestamp_ns)
        self.add(timestamp_ns // 1000, level)

    def cancel(self) -> None:
        self._cb.cancel()


class RgpioRig(Relinking):
    """One rgpiod connection: the stimulus line as an output, the ack (and sense) lines as
    alerts. After a failed call the link is out of step, so it is marked broken and
    `ensure_link()` reconnects and claims the lines again."""

    daemon = "rgpio"

    def __init__(self, host: str, port: int, wiring: Wiring, chip: int = 0,
                 connect_timeout_s: float = 5.0, command_timeout_s: float = 5.0) -> None:
        self.host, self.port, self.chip = host, port, chip
        self.stimulus_gpio = wiring.stimulus.pi_gpio
        self.ack_gpio = wiring.ack.pi_gpio
        self.sense_gpio = wiring.stimulus_sense
        self.reset_gpio = wiring.reset.pi_gpio if wiring.reset else None
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.broken = ""
        self.reconnects = 0
        self.last_pulse_at = 0.0
        self.clock = PiClock()  # one timeline across reconnects: the kernel's clock
        self.commanded = EdgeLog()  # the stimulus capture without a sense line
        self._connect()

    @property
    def stimulus_times(self) -> str:
        if self.sense_gpio is not None:
            return (f"sensed: kernel timestamps of GPIO {self.sense_gpio} "
                    "(wiring.stimulus_sense)")
        return "commanded: stimulus times are commanded times (no wiring.stimulus_sense)"

    # ---- connection --------------------------------------------------------------------------
    def _connect(self) -> None:
        log.info("connecting to rgpiod at %s:%s", self.host, self.port)
        self.lg_version = handshake(self.host, self.port, self.connect_timeout_s)
        self.sbc = _connect_client(self.host, self.port, self.connect_timeout_s)
        self.sbc.sl.s.settimeout(self.command_timeout_s)
        self.broken = ""
        self._alerts: list[AlertCapture] = []
        try:
            self.h = self.sbc.gpiochip_open(self.chip)
        except (OSError, rgpio.error, struct.error) as e:
            self._disconnect()
            raise GpioError(f"rgpiod at {self.host}:{self.port} can't open gpiochip{self.chip} "
                            f"({e}): set gpio.chip to the chip of the header's lines (gpioinfo "
                            "on the Pi lists them; a Pi 5 on a kernel before 6.6.45 has them "
                            "on gpiochip4)") from None
        with self.guard(f"claim the stimulus and ack lines on gpiochip{self.chip}"):
            self.sbc.gpio_claim_output(self.h, self.stimulus_gpio, 0)
            if self.reset_gpio is not None:  # released: the board's pull-up holds RUN high
                self.sbc.gpio_claim_input(self.h, self.reset_gpio)
            self.sbc.gpio_claim_alert(self.h, self.ack_gpio, rgpio.BOTH_EDGES)
            self.ack = AlertCapture(self.sbc, self.h, self.ack_gpio, self.clock)
            self._alerts.append(self.ack)
            if self.sense_gpio is not None:
                self.sbc.gpio_claim_alert(self.h, self.sense_gpio, rgpio.RISING_EDGE)
                self.stimulus = AlertCapture(self.sbc, self.h, self.sense_gpio, self.clock)
                self._alerts.append(self.stimulus)
            else:
                self.stimulus = self.commanded

    def guard(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Context for rgpio calls: a daemon that times out or refuses is a bench fault."""
        return guarded(self, what, (OSError, rgpio.error, struct.error),
                       "check rgpiod is running, the lines are free and the Pi is reachable")

    def edge_timing(self) -> str:
        """How exact this rig's edge timestamps are, in one line (`tsfrig doctor`)."""
        return "edge timestamps are the kernel's (CLOCK_MONOTONIC, ns), not sampled"

    def identity(self) -> dict:
        with self.guard("report its name"):
            name = bytes(self.sbc.get_sbc_name()).rstrip(b"\0").decode(errors="replace")
        v = self.lg_version
        return {"sbc_name": name,
                "lg_version": f"{v >> 24 & 0xFF}.{v >> 16 & 0xFF}.{v >> 8 & 0xFF}.{v & 0xFF}",
                "gpiochip": self.chip, "stimulus_times": self.stimulus_times}

    def _ping(self) -> None:
        with self.guard("read the stimulus line"):
            self.sbc.gpio_read(self.h, self.stimulus_gpio)

    # ---- the wires ---------------------------------------------------------------------------
    def reset_capture(self) -> None:
        """Start a fresh capture now: alerts stamped before now (set-up still in flight) are
        not counted, once the Pi's clock is known from an earlier alert."""
        since = self.clock.us()
        self.commanded.clear(since)
        for capture in self._alerts:
            capture.clear(since)

    def _commanded_at(self, host_ns: int, offsets_us: range | list[int]) -> None:
        if self.sense_gpio is None:
            t0 = self.clock.us(host_ns)
            t0 = host_ns // 1000 if t0 is None else t0  # before any alert: the host's clock
            for d in offsets_us:
                self.commanded.add(t0 + d, 1)

    def pulse(self) -> None:
        """One stimulus pulse, played by rgpiod; with a sense line, returns once its edge was
        reported there."""
        before = self.stimulus.count()
        with self.guard("send a stimulus pulse"):
            self.sbc.tx_pulse(self.h, self.stimulus_gpio, PULSE_US, PULSE_OFF_US, 0, 1)
        sent = time.monotonic_ns()
        self.last_pulse_at = time.monotonic()
        self._commanded_at(sent, [0])
        if not self.stimulus.wait_for(before + 1, PULSE_REPORT_S):
            raise self._edges_missing(before, 1, PULSE_REPORT_S)

    def burst(self, count: int, period_us: int) -> None:
        """count pulses period_us apart, timed by rgpiod's tx thread; returns when played."""
        if count <= 0:
            return
        start = self.stimulus.count()
        off = max(period_us - PULSE_US, PULSE_OFF_US)
        with self.guard(f"send a {count}-pulse train"):
            self.sbc.tx_pulse(self.h, self.stimulus_gpio, PULSE_US, off, 0, count)
        sent = time.monotonic_ns()
        self.last_pulse_at = time.monotonic()
        self._commanded_at(sent, range(0, count * (PULSE_US + off), PULSE_US + off))
        deadline_s = count * period_us / 1e6 + 5.0
        if not self.stimulus.wait_for(start + count, deadline_s):
            raise self._edges_missing(start, count, deadline_s)
        self._wait_tx_done(deadline_s)

    def _edges_missing(self, start: int, want: int, waited_s: float) -> GpioError:
        """Why the sense line reported fewer stimulus pulses than were played: a daemon that
        answers slowly (or reports the pulses late) stalled; one that answers at once points
        at the jumper between the two lines."""
        said = (f"the sense line GPIO {self.sense_gpio} saw {self.stimulus.count() - start} "
                f"of {want} stimulus pulses from GPIO {self.stimulus_gpio} within "
                f"{waited_s:.1f} s")
        t0 = time.monotonic()
        try:
            with self.guard("read the sense line after the missing pulses"):
                self.sbc.gpio_read(self.h, self.sense_gpio)
        except GpioError:
            return GpioError(f"{said}, and then rgpiod at {self.host}:{self.port} {self.broken}, "
                             "so rgpiod or the Pi stalled or died; restart rgpiod (is the Pi "
                             "overloaded?)")
        took = time.monotonic() - t0
        if took > STALL_S or self.stimulus.count() - start >= want:
            return GpioError(f"{said}, so rgpiod at {self.host}:{self.port} stalled (it took "
                             f"{took:.1f} s to answer a command); restart rgpiod, or free the "
                             "Pi's CPU if it is overloaded")
        return GpioError(f"{said}, yet rgpiod answers at once, so the jumper between them is "
                         f"likely off; check the jumper from GPIO {self.stimulus_gpio} to GPIO "
                         f"{self.sense_gpio} (wiring.stimulus_sense)")

    def _wait_tx_done(self, timeout_s: float) -> None:
        """A pulse sent while the train still plays would be queued behind it; rgpiod has no
        event for its end, so ask (every 0.5 ms, with a deadline)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.guard("ask whether the pulse train is done"):
                busy = self.sbc.tx_busy(self.h, self.stimulus_gpio, rgpio.TX_PWM)
            if not busy:
                return
            if time.monotonic() > deadline:
                raise GpioError(f"rgpiod still pulsing GPIO {self.stimulus_gpio} after "
                                 f"{timeout_s:.1f} s: check nothing else drives it")
            time.sleep(0.0005)

    def hard_reset(self, reset_gpio: int, hold_ms: float = 10.0) -> None:
        """Pull the board's RUN/EN line low for hold_ms, then release it to the board's pull-up."""
        with self.guard(f"pulse the reset line on GPIO {reset_gpio}"):
            self.sbc.gpio_claim_output(self.h, reset_gpio, 0)
            time.sleep(hold_ms / 1000)  # the reset pulse width, not a wait for anything
            self.sbc.gpio_claim_input(self.h, reset_gpio)

    def close(self) -> None:
        """Leave the stimulus low and disconnect; a daemon already gone is not an error here."""
        if not self.broken:
            with contextlib.suppress(OSError, rgpio.error, struct.error):
                self.sbc.gpio_write(self.h, self.stimulus_gpio, 0)
        self._disconnect()

    def _disconnect(self) -> None:
        """Drop the connection without waiting on rgpiod: it may be gone or silent."""
        sbc = self.sbc
        notify = sbc._notify
        socks = [sbc.sl.s, notify.sl.s if notify is not None else None]
        if socks[0] is not None:
            socks[0].settimeout(0.5)  # a silent daemon must not hold up the goodbye
        for capture in self._alerts:
            capture.cancel()
        with contextlib.suppress(OSError, rgpio.error, struct.error):
            sbc.stop()  # frees the lines and the notification handle
        close_all(socks, [notify])  # wakes the client's notification thread: it ends
        sbc.sl.s, sbc._notify = None, None  # its atexit stop() has nothing left to do


def handshake(host: str, port: int, timeout_s: float) -> int:
    """Connect and ask rgpiod its lg version, with a deadline (the rgpio client connects and
    waits for answers with none); returns the version."""
    where = f"rgpiod at {host}:{port}"
    answer = ask(host, port, HEADER.pack(LG_MAGIC, 0, LGV_CMD, 0, 0, 0), HEADER.size,
                 timeout_s, "rgpiod", FIX)
    status, size, cmd = struct.unpack_from("<iIH", answer)
    if cmd != LGV_CMD or size != 0 or status <= 0:
        raise GpioError(f"{where} answered, but not in rgpiod's protocol: is it rgpiod?")
    return status


def _connect_client(host: str, port: int, timeout_s: float) -> rgpio.sbc:
    """rgpio.sbc() with a deadline: its constructor has none."""
    return connected_client(lambda: rgpio.sbc(host, port, show_errors=False), "rgpio", host,
                            port, timeout_s, "open a notification stream", FIX)

def _options(section: Section) -> dict[str, Any]:
    """gpio.chip: the gpiochip holding the header's lines (the rig's default is 0)."""
    return {"chip": section.integer("chip", 0, 63)} if "chip" in section else {}


def describe_daemon(info: dict) -> str:
    """The daemon as the report's bench line names it, from the identity results.json keeps."""
    return f"lg {info.get('lg_version', '?')} on {info.get('sbc_name', '?')}"


SPEC = GpioSpec(
    rig=RgpioRig, daemon="rgpiod (lg) on a Pi 5 or any Linux SBC", client="rgpio",
    start="rgpiod -n <this host>", default_port=8889,
    gpios=(0, 53), gpios_why="a gpiochip's line offsets (the Pi 5's RP1 has lines 0-53)",
    pis=(5,), stimulus_sense=True, option_keys=frozenset({"chip"}), options=_options,
    describe_daemon=describe_daemon)
