"""Faults on the simulated bench that a real bench survives: a board that boots slowly or not
at all, a simulated Pi that goes away under a running board. Real processes; every wait has a
timeout."""

import socket
import threading
import time
from pathlib import Path

import pigpio
import pytest
import serial
from mpremote.transport_serial import SerialTransport

from harness.config import load_config
from harness.sim import board as board_mod
from harness.sim.bench import SimBench
from harness.sim.board import VirtualBoard
from harness.sim.firmware import Firmware, find_executable

REPO = Path(__file__).resolve().parents[2]
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
BOOT_TIMEOUT_S = 1.0  # the board's patience, shortened so a "slow" boot takes 2 s, not 7


def read_until(s: serial.Serial, marker: bytes, timeout: float = 10.0) -> bytes:
    buf, end = b"", time.monotonic() + timeout
    while marker not in buf and time.monotonic() < end:
        buf += s.read(256)
    assert marker in buf, buf
    return buf


@pytest.fixture
def build(tmp_path, monkeypatch):
    """A firmware build whose boots behave as tmp_path/mode says: `ok`, `slow` (2 s, then the
    real VM), `exit` (dies before its prompt) or `hang` (never prints one)."""
    monkeypatch.setattr(board_mod, "BOOT_TIMEOUT_S", BOOT_TIMEOUT_S)
    mode = tmp_path / "mode"
    mode.write_text("ok")
    exe = tmp_path / "micropython-wrapper"
    exe.write_text(f"""#!/bin/sh
case "$(cat '{mode}')" in
    slow) sleep 2 ;;
    exit) exit 3 ;;
    hang) exec sleep 1000 ;;
esac
exec '{find_executable()}' "$@"
""")
    exe.chmod(0o755)
    return Firmware(exe), mode


@pytest.fixture
def board(build, tmp_path):
    b = VirtualBoard(build[0], tmp_path / "flash", {}).start()
    yield b
    b.stop()
    assert not b._thread.is_alive()


def test_slow_soft_reboots_complete_and_keep_what_the_client_sent(board, build):
    build[1].write_text("slow")
    t = SerialTransport(board.port, baudrate=115200, timeout=0.05)  # as harness/board/session.py
    try:  # mpremote's own soft reset: a boot slower than the board's patience still answers
        t.enter_raw_repl(soft_reset=True, timeout_overall=10)
        assert t.exec("print(6*7)") == b"42\r\n"
        t.exit_raw_repl()
    finally:
        t.close()
    with serial.Serial(board.port, timeout=0.1) as s:
        s.write(b"\r\x03\r\x01")
        read_until(s, RAW_PROMPT)
        s.write(b"\x04print(6*")  # code typed straight after Ctrl-D waits for the new VM ...
        read_until(s, b"MPY: soft reboot\r\n")
        s.write(b"7)\x04")  # ... as does code typed while it boots
        out = read_until(s, b"\x04>")
        assert out.endswith(RAW_PROMPT + b"OK42\r\n\x04\x04>"), out
    assert board.reboots == 2


def test_a_vm_that_never_boots_leaves_the_board_serving_resets(board, build):
    mode = build[1]
    with serial.Serial(board.port, timeout=0.1) as s:
        s.write(b"\r\x03\r\x01")
        read_until(s, RAW_PROMPT)
        mode.write_text("exit")
        s.write(b"\x04")  # soft reboot into a VM that dies at once
        line = read_until(s, b"before reaching its prompt")
        assert b"virtual board: " in line and b"RUN-pin reset" in line
        mode.write_text("hang")
        board.set_run(0)
        board.set_run(1)  # a RUN reset into a VM that never answers
        read_until(s, b"has not reached its prompt within 1 s; still waiting")
        mode.write_text("ok")
        board.set_run(0)
        board.set_run(1)  # and a RUN reset into a good one: the board is back
        read_until(s, b">>> ")
        s.write(b"print(6*7)\r")
        read_until(s, b"42\r\n>>> ")
    assert board._thread.is_alive()


@pytest.fixture
def bench(tmp_path):
    b = SimBench(load_config(REPO / "rig_config.yaml").targets[0], flash_dir=tmp_path).start()
    yield b
    b.stop()


TOGGLE = b"""import machine, select, sys
ack = machine.Pin(3, machine.Pin.OUT)
poll = select.poll()
poll.register(sys.stdin, select.POLLIN)
n = 0
print('toggling')
while not poll.poll(0):
    ack.value(n & 1)
    n += 1
sys.stdin.read(1)
for i in range(1000):
    ack.value(i & 1)
print('survived')
"""


def test_a_cut_wire_raises_nothing_on_the_board(bench):
    host, port = bench.pigpio_address
    pi = pigpio.pi(host, port)
    seen = threading.Event()
    pi.callback(27, pigpio.EITHER_EDGE, lambda g, lv, t: seen.set())
    with serial.Serial(bench.serial_port, timeout=0.1) as s:
        s.write(b"\r\x03\r\x01")
        read_until(s, RAW_PROMPT)
        s.write(TOGGLE + b"\x04")
        read_until(s, b"toggling")
        assert seen.wait(5), "the board's ack edges never reached the Pi"
        pi.stop()
        bench.pi.stop()  # the jumpers are pulled while the board drives its pin
        s.write(b"x")  # the board toggles on, then finishes
        out = read_until(s, b"\x04>")
        assert out.endswith(b"survived\r\n\x04\x04>"), out  # no traceback in between
        s.write(b"\x04")  # a fresh VM with no Pi at all still imports machine
        read_until(s, b"MPY: soft reboot\r\n" + RAW_PROMPT)
        s.write(b"import machine\nmachine.Pin(3, machine.Pin.OUT).value(1)\nprint('ok')\x04")
        out = read_until(s, b"\x04>")
        assert out.endswith(b"OKok\r\n\x04\x04>"), out


def test_a_pi_that_sends_no_hello_leaves_the_board_without_wires(tmp_path):
    with socket.socket() as srv:  # accepts the board's wire and hangs up: no hello
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        threading.Thread(target=lambda: srv.accept()[0].close(), daemon=True).start()
        env = {"TSFRIG_WIRE": f"127.0.0.1:{srv.getsockname()[1]}"}
        with VirtualBoard(Firmware(find_executable()), tmp_path, env) as b, \
                serial.Serial(b.port, timeout=0.1) as s:
            s.write(b"\r\x03\r\x01")
            read_until(s, RAW_PROMPT)
            s.write(b"import machine\nmachine.Pin(3, machine.Pin.OUT).value(1)\n"
                    b"print(machine._sock)\x04")
            out = read_until(s, b"\x04>")
            assert out.endswith(b"OKNone\r\n\x04\x04>"), out
