"""The simulated Pi driven by the unmodified pigpio client, and its board link."""

import socket
import struct
import threading

import pigpio
import pytest

from harness.sim import wire
from harness.sim.pigpiod import SimPi
from harness.sim.pigpiod_protocol import PI_BAD_HANDLE, PI_UNKNOWN_COMMAND


@pytest.fixture
def sim():
    before = threading.active_count()
    s = SimPi(wiring=[(17, 2, "to_board"), (27, 3, "from_board")]).start()
    yield s
    port, wire_port = s.port, s.wire_port
    s.stop()
    for p in (port, wire_port):  # nothing listens any more
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", p), timeout=1)
    assert threading.active_count() <= before + 1


@pytest.fixture
def pi(sim):
    p = pigpio.pi("127.0.0.1", sim.port)
    assert p.connected
    yield p
    p.stop()


class Edges:
    def __init__(self, pi, gpio, n):
        self.got, self.n, self.done = [], n, threading.Event()
        self.cb = pi.callback(gpio, pigpio.EITHER_EDGE, self.on)

    def on(self, gpio, level, tick):
        self.got.append((level, tick))
        if len(self.got) >= self.n:
            self.done.set()


def square_wave(pi, n: int, high_us: int, low_us: int) -> Edges:
    """n pulses on GPIO 17 from pigpio's wave engine, with a capture waiting for all 2n edges."""
    pi.set_mode(17, pigpio.OUTPUT)
    e = Edges(pi, 17, 2 * n)
    m = 1 << 17
    pi.wave_clear()
    pi.wave_add_generic([pigpio.pulse(m, 0, high_us), pigpio.pulse(0, m, low_us)] * n)
    pi.wave_send_once(pi.wave_create())
    return e


def test_identity_and_modes(pi):
    assert pi.get_hardware_revision() == 0xC03111
    assert pi.get_pigpio_version() == 79
    pi.set_mode(5, pigpio.OUTPUT)
    assert pi.get_mode(5) == pigpio.OUTPUT
    pi.write(5, 1)
    assert pi.read(5) == 1 and pi.read_bank_1() & (1 << 5)


def test_pull_up_sets_an_undriven_input(pi):
    pi.set_mode(6, pigpio.INPUT)
    pi.set_pull_up_down(6, pigpio.PUD_UP)
    assert pi.read(6) == 1
    pi.set_pull_up_down(6, pigpio.PUD_DOWN)
    assert pi.read(6) == 0


def test_bad_arguments_get_pigpio_errors(pi):
    with pytest.raises(pigpio.error, match="GPIO not 0-53"):
        pi.set_mode(60, pigpio.OUTPUT)
    with pytest.raises(pigpio.error, match="level not 0-1"):
        pi.write(4, 7)
    with pytest.raises(pigpio.error, match="pulse length not 1-100"):
        pi.gpio_trigger(4, 500, 1)


def test_unknown_command_answers_not_hangs(sim):
    with socket.create_connection(("127.0.0.1", sim.port), timeout=2) as s:
        s.sendall(struct.pack("<IIII", 250, 0, 0, 0))
        res = struct.unpack("<IIIi", s.recv(16))[3]
    assert res == PI_UNKNOWN_COMMAND


def test_trigger_is_one_pulse_with_exact_width(pi):
    pi.set_mode(17, pigpio.OUTPUT)
    e = Edges(pi, 17, 2)
    pi.gpio_trigger(17, 10, 1)
    assert e.done.wait(2)
    (l1, t1), (l2, t2) = e.got
    assert (l1, l2) == (1, 0) and (t2 - t1) & 0xFFFFFFFF == 10


def test_wave_edges_in_order_at_exact_spacing(pi):
    n = 50
    pi.set_mode(17, pigpio.OUTPUT)
    e = Edges(pi, 17, 2 * n)
    tally = pi.callback(17, pigpio.RISING_EDGE)
    m = 1 << 17
    pi.wave_clear()
    pi.wave_add_generic([pigpio.pulse(m, 0, 10), pigpio.pulse(0, m, 190)] * n)
    wid = pi.wave_create()
    pi.wave_send_once(wid)
    assert pi.wave_tx_busy() == 1
    assert e.done.wait(5)
    gaps = [(b[1] - a[1]) & 0xFFFFFFFF for a, b in zip(e.got, e.got[1:], strict=False)]
    assert set(gaps) == {10, 190}
    assert [lv for lv, _ in e.got] == [1, 0] * n
    assert tally.tally() == n
    pi.wave_delete(wid)
    with pytest.raises(pigpio.error):
        pi.wave_delete(wid)


def test_ten_thousand_edges_all_delivered(pi):
    n = 5000
    e = square_wave(pi, n, 5, 15)
    assert e.done.wait(20), f"{len(e.got)} of {2 * n} edges"
    ticks = [t for _, t in e.got]
    assert all((b - a) & 0xFFFFFFFF in (5, 15) for a, b in zip(ticks, ticks[1:], strict=False))


def test_board_link_carries_edges_both_ways(sim, pi):
    board = socket.create_connection(("127.0.0.1", sim.wire_port), timeout=2)
    try:
        assert wire.decode(board.recv(8, socket.MSG_WAITALL))[0] == wire.HELLO
        first = wire.decode(board.recv(8, socket.MSG_WAITALL))
        assert first[:3] == (wire.EDGE, 2, 0)  # current level of the wired board pin
        pi.set_mode(17, pigpio.OUTPUT)
        pi.write(17, 1)
        kind, pin, level, _, _ = wire.decode(board.recv(8, socket.MSG_WAITALL))
        assert (kind, pin, level) == (wire.EDGE, 2, 1)
        pi.set_mode(27, pigpio.INPUT)
        e = Edges(pi, 27, 1)
        tick = (pi.get_current_tick() + 123) & 0xFFFFFFFF
        board.sendall(wire.encode(wire.EDGE, 3, 1, tick))
        assert e.done.wait(2)
        assert e.got == [(1, tick)] and pi.read(27) == 1
    finally:
        board.close()


def test_glitch_filter_hides_short_pulses_and_stamps_the_steady_tick(pi):
    pi.set_mode(17, pigpio.OUTPUT)
    pi.write(17, 0)
    pi.set_glitch_filter(17, 100)
    e = Edges(pi, 17, 2)
    m = 1 << 17
    pi.wave_clear()  # a 20 µs glitch, then a 300 µs pulse, then low for good
    pi.wave_add_generic([pigpio.pulse(m, 0, 20), pigpio.pulse(0, m, 200),
                         pigpio.pulse(m, 0, 300), pigpio.pulse(0, m, 1000)])
    pi.wave_send_once(pi.wave_create())
    assert e.done.wait(2)
    (l1, t1), (l2, t2) = e.got[:2]
    assert (l1, l2) == (1, 0) and (t2 - t1) & 0xFFFFFFFF == 300
    unfiltered = pi.callback(17, pigpio.EITHER_EDGE)  # the filter applies to reports only
    pi.set_glitch_filter(17, 0)
    pi.gpio_trigger(17, 10, 1)
    for _ in range(200):
        if unfiltered.tally() == 2:
            break
        threading.Event().wait(0.01)
    assert unfiltered.tally() == 2 and len(e.got) == 4


def command(port: int, cmd: int, p1: int, p2: int) -> int:
    """One pigpiod command over a fresh socket, by hand; its result."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(struct.pack("<IIII", cmd, p1, p2, 0))
        return struct.unpack("<IIIi", c.recv(16, socket.MSG_WAITALL))[3]


def test_a_notifier_that_never_reads_is_dropped_not_waited_for(sim, pi):
    n = 40_000  # 80 000 edges: well over what a silent client's socket buffers hold
    silent = socket.socket()
    try:  # an ordinary receive buffer, fixed so that kernel autotuning doesn't matter
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        silent.settimeout(5)
        silent.connect(("127.0.0.1", sim.port))
        silent.sendall(struct.pack("<IIII", 99, 0, 0, 0))  # NOIB: this socket gets reports
        handle = struct.unpack("<IIIi", silent.recv(16, socket.MSG_WAITALL))[3]
        assert command(sim.port, 19, handle, 1 << 17) == 0  # NB: report GPIO 17; never read
        e = square_wave(pi, n, 5, 5)
        assert e.done.wait(20), f"the reading client got {len(e.got)} of {2 * n} edges"
        assert [lv for lv, _ in e.got] == [1, 0] * n
        assert pi.get_pigpio_version() == 79 and pi.read(17) == 0  # commands still answer
        got, end = 0, b"x"
        while end:  # what was queued for the silent client, then the server's hang-up
            try:
                end = silent.recv(1 << 16)
            except ConnectionResetError:
                break
            got += len(end)
        assert got < 24 * n  # it was dropped before all 2n 12-byte reports
        assert command(sim.port, 19, handle, 1 << 17) == PI_BAD_HANDLE  # and forgotten
    finally:
        silent.close()
