"""gpio.backend rgpio: the simulated Pi's rgpiod driven by the unmodified `rgpio` client, the
rgpio GPIO rig over it, and the whole suite on a sim target with `gpio.backend: rgpio`."""

import json
import socket
import struct
import threading
import time
from pathlib import Path

import pigpio
import pytest
import rgpio

from harness.config import Wire, Wiring
from harness.gpio import GpioError, connect_gpio
from harness.gpio.rgpio_rig import handshake
from harness.sim.pigpiod import SimPi
from harness.sim.rgpiod import HEADER, LG_VERSION, UNKNOWN_COMMAND, SimRgpiod

REPO = Path(__file__).resolve().parents[2]
STIM, ACK, SENSE, RESET = 17, 27, 23, 22


@pytest.fixture
def sim():
    """A simulated Pi wired as the suite's bench, GPIO 23 jumpered to the stimulus GPIO 17."""
    before = threading.active_count()
    pi = SimPi(wiring=[(STIM, 2, "to_board"), (ACK, 3, "from_board"), (SENSE, STIM, "sense"),
                       (RESET, -1, "reset")]).start()
    rd = SimRgpiod(pi).start()
    yield pi, rd
    port = rd.port
    rd.stop()
    pi.stop()
    with pytest.raises(ConnectionRefusedError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=1)
    assert threading.active_count() <= before + 1


@pytest.fixture
def sbc(sim):
    c = rgpio.sbc("127.0.0.1", sim[1].port, show_errors=False)
    assert c.connected
    yield c
    c.stop()


class Alerts:
    """Alerts on one line with a wait for the n-th."""

    def __init__(self, sbc, h, gpio, n, edges=rgpio.BOTH_EDGES):
        self.got, self.n, self.done = [], n, threading.Event()
        sbc.gpio_claim_alert(h, gpio, edges)
        self.cb = sbc.callback(h, gpio, edges, self.on)

    def on(self, chip, gpio, level, ts):
        self.got.append((level, ts))
        if len(self.got) >= self.n:
            self.done.set()


def test_identity_chip_and_line_info(sim, sbc):
    assert handshake("127.0.0.1", sim[1].port, 2) == LG_VERSION
    assert bytes(sbc.get_sbc_name()).rstrip(b"\0") == b"tsfrig-sim-pi5"
    h = sbc.gpiochip_open(0)
    assert sbc.gpio_get_chip_info(h) == [0, 54, "gpiochip0", "pinctrl-rp1"]
    sbc.gpio_claim_output(h, 5, 1)
    status, offset, flags, name, user = sbc.gpio_get_line_info(h, 5)
    assert (status, offset, name, user) == (0, 5, "GPIO5", "lg") and flags & 2  # an output


def test_writes_reads_and_pulls(sim, sbc):
    pi = sim[0]
    h = sbc.gpiochip_open(0)
    sbc.gpio_claim_output(h, 5, 0)
    sbc.gpio_write(h, 5, 1)
    assert pi.level[5] == 1 and sbc.gpio_read(h, 5) == 1
    sbc.gpio_claim_input(h, 6, rgpio.SET_PULL_UP)
    assert sbc.gpio_read(h, 6) == 1
    sbc.gpio_claim_input(h, 6, rgpio.SET_PULL_DOWN)
    assert sbc.gpio_read(h, 6) == 0
    sbc.gpio_free(h, 5)
    assert sbc.gpio_get_mode(h, 5) == 0


def test_alerts_carry_monotonic_ns_of_each_edge(sim, sbc):
    h = sbc.gpiochip_open(0)
    sbc.gpio_claim_output(h, STIM, 0)
    a = Alerts(sbc, h, SENSE, 2)
    t0 = time.monotonic_ns()
    sbc.gpio_write(h, STIM, 1)
    sbc.gpio_write(h, STIM, 0)
    t1 = time.monotonic_ns()
    assert a.done.wait(2)
    (l1, ts1), (l2, ts2) = a.got
    assert (l1, l2) == (1, 0)
    assert t0 // 1000 * 1000 <= ts1 <= ts2 <= t1  # the sim's µs clock, in ns


def test_rising_alert_skips_falling_edges(sim, sbc):
    h = sbc.gpiochip_open(0)
    a = Alerts(sbc, h, SENSE, 3, rgpio.RISING_EDGE)
    sbc.tx_pulse(h, STIM, 50, 100, 0, 3)
    assert a.done.wait(2)
    assert [lv for lv, _ in a.got] == [1, 1, 1]


def test_tx_pulse_is_software_timed_never_early(sim, sbc):
    h = sbc.gpiochip_open(0)
    a = Alerts(sbc, h, SENSE, 10)
    assert sbc.tx_pulse(h, STIM, 100, 200, 0, 5) == 9  # room left in the queue
    assert sbc.tx_busy(h, STIM, rgpio.TX_PWM) == 1
    assert a.done.wait(5)
    assert [lv for lv, _ in a.got] == [1, 0] * 5
    gaps = [(b - a_) // 1000 for (_, a_), (_, b) in zip(a.got, a.got[1:], strict=False)]
    assert all(g >= want for g, want in zip(gaps, [100, 200] * 5, strict=False)), gaps
    deadline = time.monotonic() + 2
    while sbc.tx_busy(h, STIM, rgpio.TX_PWM) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert sbc.tx_busy(h, STIM, rgpio.TX_PWM) == 0


def test_tx_wave_on_a_group_of_one(sim, sbc):
    h = sbc.gpiochip_open(0)
    sbc.gpio_claim_output(h, STIM, 0)
    a = Alerts(sbc, h, SENSE, 6)
    sbc.tx_wave(h, STIM, [rgpio.pulse(1, 1, 100), rgpio.pulse(0, 1, 100)] * 3)
    assert a.done.wait(5)
    assert [lv for lv, _ in a.got] == [1, 0] * 3


def test_error_codes(sim, sbc):
    h = sbc.gpiochip_open(0)
    for call, text in [
        (lambda: sbc.gpio_read(h + 100, 5), "unknown handle"),
        (lambda: sbc.gpio_claim_output(h, 60, 0), "bad GPIO number"),
        (lambda: sbc.gpiochip_open(3), "can not open gpiochip"),
        (lambda: sbc.gpio_free(h, 9), "GPIO not allocated"),
        (lambda: sbc.tx_pulse(h, STIM, 5, 5, 0, 1), "bad PWM micros"),
        (lambda: sbc.tx_busy(h, STIM, 7), "bad tx type"),
        (lambda: sbc.gpio_claim_alert(h, SENSE, 0), "bad event request"),
    ]:
        with pytest.raises(rgpio.error, match=text):
            call()
    with socket.create_connection(("127.0.0.1", sim[1].port), timeout=2) as s:
        s.sendall(HEADER.pack(0, 0, 250, 0, 0, 0))
        assert struct.unpack("<i", s.recv(16)[:4])[0] == UNKNOWN_COMMAND


def test_both_daemons_share_the_wires(sim, sbc):
    pi = pigpio.pi("127.0.0.1", sim[0].port)
    try:
        h = sbc.gpiochip_open(0)
        sbc.gpio_claim_output(h, 5, 1)
        assert pi.read(5) == 1  # pigpiod sees what rgpiod drives
        a = Alerts(sbc, h, 6, 1)
        pi.set_mode(6, pigpio.OUTPUT)
        pi.write(6, 1)
        assert a.done.wait(2) and a.got[0][0] == 1  # and rgpiod reports what pigpiod drives
    finally:
        pi.stop()


def test_a_line_is_held_until_its_client_goes(sim, sbc):
    h = sbc.gpiochip_open(0)
    sbc.gpio_claim_output(h, 5, 0)
    other = rgpio.sbc("127.0.0.1", sim[1].port, show_errors=False)
    try:
        h2 = other.gpiochip_open(0)
        with pytest.raises(rgpio.error, match="GPIO busy"):
            other.gpio_claim_output(h2, 5, 0)
        sbc.stop()  # its lines are freed with it
        assert other.gpio_claim_output(h2, 5, 1) == 0
    finally:
        other.stop()


# ---- the rgpio GPIO rig --------------------------------------------------------------------

def wiring(sense: int | None) -> Wiring:
    return Wiring(Wire(STIM, 2), Wire(ACK, 3), Wire(RESET, "RUN"), sense)


@pytest.fixture
def rig_on(sim):
    """`rig_on(sense)`: the rgpio GPIO rig on the sim's rgpiod, its stimulus sensed on that
    line (None: commanded times); closed after the test."""
    rigs = []

    def connect(sense: int | None):
        rigs.append(connect_gpio("rgpio", "127.0.0.1", sim[1].port, wiring(sense)))
        return rigs[-1]
    yield connect
    for rig in rigs:
        rig.close()


def test_rig_times_the_stimulus_on_the_sense_line(sim, rig_on):
    pi, _ = sim
    rig = rig_on(SENSE)
    assert rig.identity()["stimulus_times"].startswith("sensed: kernel timestamps of GPIO 23")
    rig.reset_capture()
    t0 = time.monotonic_ns() // 1000
    rig.pulse()
    rig.burst(5, 1000)
    edges = [e.us for e in rig.stimulus.edges]
    assert len(edges) == 6 and edges[0] >= t0 - 1
    assert all(b - a >= 1000 for a, b in zip(edges[1:], edges[2:], strict=False))
    pi.drive(ACK, 1)  # the board's ack edge, stamped on the same clock
    assert rig.ack.wait_for(1, 2) and rig.ack.edges[0].us > edges[-1]
    rig.hard_reset(RESET, hold_ms=1)
    assert pi.edges[RESET] == 2 and pi.level[RESET] == 1  # pulled low, then released


def test_rig_without_a_sense_line_records_commanded_times(sim, rig_on):
    pi, _ = sim
    rig = rig_on(None)
    assert rig.identity()["stimulus_times"] == \
        "commanded: stimulus times are commanded times (no wiring.stimulus_sense)"
    before = time.monotonic_ns() // 1000
    rig.pulse()
    rig.burst(3, 2000)
    edges = [e.us for e in rig.stimulus.edges]
    assert len(edges) == 4 and before <= edges[0]
    assert [b - a for a, b in zip(edges[1:], edges[2:], strict=False)] == [2000, 2000]
    assert pi.edges[STIM] == 8  # the pulses were played all the same


def test_rig_names_a_missing_sense_jumper(rig_on):
    rig = rig_on(24)  # 24: no jumper
    with pytest.raises(GpioError, match=r"GPIO 24 saw 0 of 1 stimulus pulses.*answers at "
                       r"once, so the jumper between them is likely off.*stimulus_sense"):
        rig.pulse()


def test_rig_faults_are_bench_faults_and_reconnect(rig_on):
    rig = rig_on(SENSE)
    rig.sbc.sl.s.shutdown(socket.SHUT_RDWR)  # the link drops under the rig
    with pytest.raises(GpioError, match=r"^rgpiod at 127\.0\.0\.1:\d+ failed to send"):
        rig.pulse()
    rig.ensure_link()
    assert rig.reconnects == 1 and not rig.broken
    rig.pulse()
    assert rig.stimulus.count() >= 1
    with pytest.raises(GpioError, match="rgpiod at 127.0.0.1:1 does not answer"):
        connect_gpio("rgpio", "127.0.0.1", 1, wiring(None))


def test_silent_daemon_is_a_bench_fault_within_the_deadline():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        t0 = time.monotonic()
        with pytest.raises(GpioError, match="did not answer within 1 s"):
            handshake("127.0.0.1", srv.getsockname()[1], 1)
        assert time.monotonic() - t0 < 3
    finally:
        srv.close()


# ---- the whole suite ---------------------------------------------------------------------

def rgpio_config(tmp_path: Path, sense: bool) -> Path:
    text = (REPO / "rig_config.yaml").read_text()
    kind = "    kind: sim                  # sim | serial\n"
    reset = "      reset: {pi_gpio: 22, board_pin: RUN}"
    assert kind in text and reset in text
    text = text.replace(kind, kind + "    gpio: {backend: rgpio}\n")
    if sense:
        text = text.replace(reset, f"      stimulus_sense: {SENSE}\n{reset}")
    path = tmp_path / "rgpio.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("sense", [True, False], ids=["sensed", "commanded"])
def test_suite_passes_on_rgpio(tmp_path, sense, tsfrig):
    r = tsfrig("run", "--config", str(rgpio_config(tmp_path, sense)), "--report-dir",
               str(tmp_path / "r"), timeout=300)
    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert doc["verdict"] == "pass"
    assert len(doc["tests"]) == 31 and all(t["outcome"] == "passed" for t in doc["tests"])
    gpio = doc["targets"][0]["gpio"]
    assert gpio["backend"] == "rgpio" and gpio["sbc_name"] == "tsfrig-sim-pi5"
    assert gpio["stimulus_times"].startswith("sensed" if sense else "commanded")
    html = (tmp_path / "r" / "latest" / "index.html").read_text()
    assert gpio["stimulus_times"] in html


def test_a_gpiochip_the_pi_lacks_names_gpio_chip(sim):
    """A Pi 5 whose header is on another gpiochip than the configured one: the error says
    which key to set, and the rig leaves no connection behind."""
    with pytest.raises(GpioError, match=r"can't open gpiochip4 .*set gpio\.chip"):
        connect_gpio("rgpio", "127.0.0.1", sim[1].port, wiring(None), chip=4)
