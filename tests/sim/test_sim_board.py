"""The virtual board as mpremote, pyserial and pigpio see it, and `tsfrig sim` as a person
runs it. Real clients only; every wait has a timeout."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pigpio
import pytest
import serial

from harness.board.session import BoardSession
from harness.config import load_config
from harness.sim.bench import SimBench

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(tmp_path):
    b = SimBench(load_config(REPO / "rig_config.yaml").targets[0], flash_dir=tmp_path).start()
    yield b
    pid = b.board.vm_pid
    b.stop()
    with pytest.raises(ProcessLookupError):  # the VM is gone, not orphaned
        os.kill(pid, 0)


@pytest.fixture
def pi_and_board(bench):
    """pigpio's client on the bench's daemon and a session on its board, just soft-reset."""
    host, port = bench.pigpio_address
    pi = pigpio.pi(host, port)
    t = BoardSession(bench.serial_port)
    try:
        t.soft_reset()
        yield pi, t
    finally:
        t.close()
        pi.stop()


def mpremote(port: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=30)


def test_mpremote_file_ops_and_exec(bench, tmp_path):
    src = tmp_path / "hello.py"
    src.write_text("print('hello from flash')\n")
    port = bench.serial_port
    assert mpremote(port, "cp", str(src), ":hello.py").returncode == 0
    assert "hello.py" in mpremote(port, "ls").stdout
    assert mpremote(port, "cat", ":hello.py").stdout.strip() == "print('hello from flash')"
    assert mpremote(port, "exec", "import hello").stdout.strip() == "hello from flash"
    assert mpremote(port, "run", str(src)).stdout.strip() == "hello from flash"
    back = tmp_path / "back.py"
    assert mpremote(port, "cp", ":hello.py", str(back)).returncode == 0
    assert back.read_text() == src.read_text()
    assert mpremote(port, "rm", ":hello.py").returncode == 0
    assert "hello.py" not in mpremote(port, "ls").stdout


def test_soft_reset_gives_a_fresh_vm(bench):
    out = mpremote(bench.serial_port, "exec", "x = 41", "+", "soft-reset", "+",
                   "exec", "print('x' in globals())").stdout
    assert out.strip() == "False"
    assert bench.board.reboots >= 1


def test_raw_repl_soft_reboot_banner_and_ctrl_c(bench):
    with serial.Serial(bench.serial_port, timeout=0.1) as s:
        def read_until(marker: bytes, timeout: float = 5.0) -> bytes:
            buf, end = b"", time.monotonic() + timeout
            while marker not in buf and time.monotonic() < end:
                buf += s.read(256)
            assert marker in buf, buf
            return buf

        s.write(b"\r\x03\r\x01")
        read_until(b"raw REPL; CTRL-B to exit\r\n>")
        s.write(b"\x04")
        read_until(b"MPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>")
        s.write(b"while True: pass\x04")
        read_until(b"OK")
        s.write(b"\x03")
        assert b"KeyboardInterrupt" in read_until(b"\x04>")
        s.write(b"\x02")
        read_until(b">>> ")


def test_pin_irqs_fire_from_pigpio_and_outputs_reach_pigpio(pi_and_board):
    pi, t = pi_and_board
    t.exec("from machine import Pin\nhard = 0\nsoft = 0\n"
           "def h(p):\n global hard\n hard += 1\n"
           "def s(p):\n global soft\n soft += 1\n"
           "a = Pin(2, Pin.IN)\na.irq(h, Pin.IRQ_RISING, hard=True)\n"
           "b = Pin(5, Pin.IN)\nout = Pin(3, Pin.OUT, value=0)\n")
    pi.set_mode(17, pigpio.OUTPUT)
    for _ in range(5):
        pi.gpio_trigger(17, 10, 1)
    deadline = time.monotonic() + 5
    while t.exec("print(hard)").strip() != "5" and time.monotonic() < deadline:
        pass
    assert t.exec("print(hard)").strip() == "5"
    t.exec("a.irq(s, Pin.IRQ_FALLING)")  # soft IRQ, falling edges
    pi.gpio_trigger(17, 10, 1)
    deadline = time.monotonic() + 5
    while t.exec("print(soft)").strip() != "1" and time.monotonic() < deadline:
        pass
    assert t.exec("print(soft)").strip() == "1"
    got = threading.Event()
    cb = pi.callback(27, pigpio.RISING_EDGE, lambda g, lv, tick: got.set())
    t.exec("out.on()")
    assert got.wait(2), "board output edge never reached pigpio"
    cb.cancel()


def test_allocating_hard_handler_raises_memoryerror(pi_and_board):
    pi, t = pi_and_board
    t.exec("from machine import Pin\nlog = []\n"
           "def bad(p):\n log.append([1, 2, 3])\n"
           "a = Pin(2, Pin.IN)\na.irq(bad, Pin.IRQ_RISING, hard=True)\n")
    pi.set_mode(17, pigpio.OUTPUT)
    pi.gpio_trigger(17, 10, 1)
    out, deadline = b"", time.monotonic() + 5
    while b"MemoryError" not in out and time.monotonic() < deadline:
        out += t.serial.read(4096)  # the board reports the handler's exception itself
    assert b"MemoryError" in out, out
    pi.gpio_trigger(17, 10, 1)  # the uncaught exception disabled the IRQ, as on ports
    time.sleep(0.3)  # an absence is being observed: give a wrong second call time to show
    assert b"MemoryError" not in t.serial.read(4096)
    t.serial.write(b"\x01")  # re-prompt the raw REPL after the asynchronous traceback
    assert t.exec("print(len(log))").strip() == "0"


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_tsfrig_sim_prints_addresses_and_stops_cleanly():
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sim"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        serial_line = next(ln for ln in lines if ln.startswith("serial: "))
        pigpio_line = next(ln for ln in lines if ln.startswith("pigpio: "))
        port = serial_line.split()[1]
        host, _, pport = pigpio_line.split()[1].rpartition(":")
        assert host == "127.0.0.1"
        assert mpremote(port, "exec", "print(6*7)").stdout.strip() == "42"
        pi = pigpio.pi(host, int(pport))
        assert pi.connected and pi.get_pigpio_version() == 79
        pi.stop()
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert children, "the VM should be a child of tsfrig sim"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
    with pytest.raises(ConnectionRefusedError):
        import socket
        socket.create_connection((host, int(pport)), timeout=1)


def test_tsfrig_sim_one_line_errors(tmp_path):
    cfg = (REPO / "rig_config.yaml").read_text().replace(
        "executable: auto", f"executable: {tmp_path / 'no-such-micropython'}")
    (tmp_path / "rig.yaml").write_text(cfg)
    r = run_cli("sim", "--config", str(tmp_path / "rig.yaml"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "firmware.executable" in r.stderr
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        r = run_cli("sim", "--pigpio-port", str(busy.getsockname()[1]))
    assert r.returncode == 2 and "port" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_upload_sends_only_files_whose_hash_changed(bench, tmp_path):
    t = BoardSession(bench.serial_port)
    try:
        t.soft_reset()
        scripts = sorted(f.name for f in (REPO / "device_scripts").glob("*.py"))
        assert "tsf_log.py" in scripts and t.upload() == scripts
        assert t.upload() == []  # the board's copies hash the same: nothing is sent
        (tmp_path / "build2").mkdir()  # tmp_path itself is the board's flash
        changed = tmp_path / "build2" / "tsf_log.py"
        changed.write_text("# a different build of the log module\n")
        assert t.upload([changed]) == ["tsf_log.py"]
        assert t.exec("print(open('tsf_log.py').read())").strip() == \
            "# a different build of the log module"
    finally:
        t.close()
