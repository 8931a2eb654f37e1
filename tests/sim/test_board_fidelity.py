"""The virtual board as MicroPython's own tools see a bare-metal board: cooked `\\r\\n` output,
SystemExit as a soft reset back into the raw REPL, machine.reset() as a port that goes away
and comes back, a crashed VM as a board that reset, input that survives every restart, and
filesystem answers with sizes. Clients: a pyboard.py-style client written here (the sequence
MicroPython's tests/run-tests.py drives through tools/pyboard.py), mpremote, pyserial and the
harness's own BoardSession. Real processes; every wait has a timeout."""

import os
import re
import signal
import struct
import subprocess
import sys
import time

import pytest
import serial

from harness.board.log_protocol import LogParser
from harness.board.session import BoardRaised, BoardSession, BoardStopped
from harness.sim import board as board_mod
from harness.sim.board import SOFT_REBOOT, VirtualBoard
from harness.sim.client_port import RAW_BANNER, RAW_PROMPT
from harness.sim.firmware import Firmware, find_executable

BANNER_END = b'Type "help()" for more information.\r\n>>> '
LONE_LF = re.compile(rb"(?<!\r)\n")


class RawClient:
    """What tools/pyboard.py sends and waits for, over pyserial (written for these tests)."""

    def __init__(self, port: str) -> None:
        self.s = serial.Serial(port, timeout=0.05)
        self.at_prompt = False  # the last read ended with the raw REPL's ">"

    def close(self) -> None:
        self.s.close()

    def read_until(self, ending: bytes, timeout: float = 10.0) -> bytes:
        buf, deadline = b"", time.monotonic() + timeout
        while not buf.endswith(ending):
            assert time.monotonic() < deadline, f"no {ending!r}; got {buf[-300:]!r}"
            buf += self.s.read(1)
        self.at_prompt = ending.endswith(b">")
        return buf

    def read_exactly(self, n: int, timeout: float = 10.0) -> bytes:
        buf, deadline = b"", time.monotonic() + timeout
        while len(buf) < n:
            assert time.monotonic() < deadline, f"{n} bytes expected; got {buf!r}"
            buf += self.s.read(n - len(buf))
        return buf

    def enter_raw_repl(self, soft_reset: bool = True) -> None:
        self.s.write(b"\r\x03")  # interrupt whatever runs
        while self.s.in_waiting:
            self.s.read(self.s.in_waiting)
        self.s.write(b"\r\x01")
        if soft_reset:
            self.read_until(RAW_PROMPT)
            self.s.write(b"\x04")
            self.read_until(b"soft reboot\r\n")
        self.read_until(RAW_BANNER)

    def submit(self, code: bytes, paste: bool = True) -> None:
        """Send code at the raw prompt and see it accepted (raw-paste, else plain raw)."""
        if not self.at_prompt:
            self.read_until(b">")
        self.at_prompt = False
        if paste:
            self.s.write(b"\x05A\x01")
            assert self.read_exactly(2) == b"R\x01"
            window = remain = struct.unpack("<H", self.read_exactly(2))[0]
            i = 0
            while i < len(code):
                while remain == 0 or self.s.in_waiting:
                    got = self.read_exactly(1)
                    assert got == b"\x01", f"unexpected {got!r} during raw paste"
                    remain += window
                chunk = code[i:i + remain]
                self.s.write(chunk)
                remain -= len(chunk)
                i += len(chunk)
            self.s.write(b"\x04")
            self.read_until(b"\x04")
        else:
            for i in range(0, len(code), 256):
                self.s.write(code[i:i + 256])
            self.s.write(b"\x04")
            assert self.read_exactly(2) == b"OK"

    def exec_raw(self, code: bytes, paste: bool = True) -> tuple[bytes, bytes]:
        self.submit(code, paste)
        return self.read_until(b"\x04")[:-1], self.read_until(b"\x04")[:-1]

    def run_test(self, script: bytes) -> bytes:
        """One test as tests/run-tests.py runs it on a board: soft reset, the script behind a
        START TEST marker; the output without the marker (None if it went missing)."""
        self.enter_raw_repl()
        out, err = self.exec_raw(b"print('START TEST')\n" + script)
        out += err
        if out.strip() == b"START TEST\r\nSKIP":  # skipped by SystemExit: wait for the reset
            self.read_until(RAW_BANNER)
        assert out.startswith(b"START TEST\r\n"), out
        return out.removeprefix(b"START TEST\r\n")


@pytest.fixture
def board(tmp_path):
    b = VirtualBoard(Firmware(find_executable()), tmp_path / "flash", {}).start()
    yield b
    pid = b.vm_pid
    b.stop()
    assert not b._thread.is_alive()
    if pid is not None:
        with pytest.raises(ProcessLookupError):  # the VM is gone, not orphaned
            os.kill(pid, 0)


@pytest.fixture
def client(board):
    c = RawClient(board.port)
    yield c
    c.close()


def mpremote(port: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, timeout=30)


def wait_for_path(path: str, exists: bool, timeout: float = 5.0) -> bool:
    """A device node appearing or vanishing has no event to await here: poll, bounded."""
    deadline = time.monotonic() + timeout
    while os.path.exists(path) != exists:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---- 1. cooked output --------------------------------------------------------------------------

def test_friendly_repl_output_is_cooked(client):
    client.s.write(b"\r")
    client.read_until(b">>> ")
    client.s.write(b"print('a\\nb')\r")
    assert client.read_until(b">>> ") == b"print('a\\nb')\r\na\r\nb\r\n>>> "
    client.s.write(b"1/0\r")
    out = client.read_until(b">>> ")
    assert out.endswith(b"ZeroDivisionError: divide by zero\r\n>>> "), out
    assert b"Traceback (most recent call last):\r\n" in out
    assert not LONE_LF.search(out), out


@pytest.mark.parametrize("paste", [False, True], ids=["raw", "raw-paste"])
def test_raw_repl_output_is_cooked_and_its_framing_unchanged(client, paste):
    client.enter_raw_repl()
    out, err = client.exec_raw(b"print('a')\nprint('b\\r\\nc')\n1/0", paste=paste)
    assert out == b"a\r\nb\r\nc\r\n"  # a \r\n the program prints itself is not doubled
    assert err.startswith(b"Traceback (most recent call last):\r\n")
    assert err.endswith(b"ZeroDivisionError: divide by zero\r\n") and not LONE_LF.search(err)
    # longer than raw-paste's flow-control window: the \x01 window bytes pass as they are
    script = b"".join(b"x%d = %d  # filler\n" % (i, i) for i in range(300)) + b"print(x299)"
    assert len(script) > 4 * 128
    assert client.exec_raw(script, paste=paste) == (b"299\r\n", b"")


@pytest.mark.parametrize("paste", [False, True], ids=["raw", "raw-paste"])
def test_crlf_source_is_one_newline_as_on_a_board(client, paste):
    """The unix port's REPL input turns \\n into \\r, so CRLF source was two newlines (upstream's
    basics/string_crlf_conversion.py failed through the board); a program's stdin is as sent."""
    client.enter_raw_repl()
    lines = [b"x%d = %d" % (i, i) for i in range(200)]  # > 128 CRLFs: paste credits still add up
    script = b"\r\n".join([*lines, b's = """a\r\nb\r\n"""', b"print(repr(s), x199)"])
    assert client.exec_raw(script, paste=paste) == (b"'a\\nb\\n' 199\r\n", b"")
    client.submit(b"import sys\r\nprint(repr(sys.stdin.read(4)))\r\n", paste=paste)
    client.s.write(b"a\r\nb")
    assert client.read_until(b"\x04") == b"'a\\r\\nb'\r\n\x04"


def test_crlf_typed_at_the_friendly_prompt_is_one_enter(client):
    client.s.write(b"\r")
    client.read_until(b">>> ")
    client.s.write(b"print(1)\r\nprint(2)\r\n")  # a second Enter would show an empty prompt
    assert client.read_until(b"2\r\n>>> ") == b"print(1)\r\n1\r\n>>> print(2)\r\n2\r\n>>> "
    client.s.write(b"x = input()\r")
    client.read_until(b"x = input()\r\n")
    client.s.write(b"abc\r\n")  # input() edits a line as the REPL does
    client.read_until(b">>> ")
    client.s.write(b"print(repr(x))\r")
    assert client.read_until(b">>> ").endswith(b"'abc'\r\n>>> ")


def test_input_typed_behind_a_line_survives_the_vm_flushing_its_tty(client):
    """The unix port flushes its tty's input (TCSAFLUSH) as it switches mode to run a line;
    a board's UART keeps what was typed. Here the line flushes it itself (termios.setraw
    does it the same way) and the Ctrl-C, Ctrl-A typed right behind it must still reach the
    REPL: after a crash-reboot the host's stale end command ran as such a line and took
    recovery's Ctrl-A with it, so every soft reset timed out."""
    client.s.write(b"\r")
    client.read_until(b">>> ")
    client.s.write(b"import termios; termios.setraw(0)\r\x03\r\x01")
    client.read_until(RAW_PROMPT, timeout=5)
    assert client.exec_raw(b"print(6*7)") == (b"42\r\n", b"")


# ---- 2. lifecycle ------------------------------------------------------------------------------

def test_run_tests_sequence_survives_systemexit(board, client):
    """The sequence run-tests.py drives: SKIP by SystemExit used to leave the board in the
    friendly REPL with the runner's next Ctrl-C/Ctrl-A lost; each test gets a fresh VM."""
    assert client.run_test(b"x = 1\nprint('one')\n") == b"one\r\n"
    assert client.run_test(b"print('SKIP')\nraise SystemExit\n") == b"SKIP\r\n"
    assert client.run_test(b"print('x' in globals())\nimport sys\nsys.exit(3)\n") == \
        b"False\r\n"
    assert client.run_test(b"import asyncio\nprint('two')\n") == b"two\r\n"
    kinds = [kind for kind, _ in board.resets]
    assert kinds.count("soft") == len(kinds) >= 6  # 4 by Ctrl-D, 2 by SystemExit


def test_systemexit_in_the_raw_repl_is_a_soft_reset_into_the_raw_repl(board, client):
    client.enter_raw_repl()
    client.read_until(b">")
    client.s.write(b"print('bye')\nraise SystemExit\x04")
    assert client.read_until(RAW_PROMPT) == b"OKbye\r\n\x04\x04" + SOFT_REBOOT + RAW_PROMPT
    for code in (b"import sys\nsys.exit()", b"import machine\nmachine.soft_reset()"):
        client.s.write(code + b"\x04")
        assert client.read_until(RAW_PROMPT) == b"OK\x04\x04" + SOFT_REBOOT + RAW_PROMPT
    assert client.exec_raw(b"print(6*7)") == (b"42\r\n", b"")
    assert board.resets[-3:] == [("soft", "the VM exited (status 0)")] * 3


def test_soft_resets_in_the_friendly_repl_come_back_to_its_banner(board, client):
    client.s.write(b"\r")
    client.read_until(b">>> ")
    for typed in (b"import machine; machine.soft_reset()\r", b"raise SystemExit\r", b"\x04"):
        client.s.write(typed)
        out = client.read_until(BANNER_END)
        assert SOFT_REBOOT + b"MicroPython " in out, out
    client.s.write(b"print(6*7)\r")
    client.read_until(b"42\r\n>>> ")
    assert [kind for kind, _ in board.resets] == ["soft"] * 3


def test_input_sent_while_the_vm_restarts_reaches_the_new_vm(board, client):
    client.enter_raw_repl()
    client.read_until(b">")
    # typed ahead: the VM exits with the next command unread; the new one gets it
    client.s.write(b"raise SystemExit\x04print(6*7)\x04")
    assert client.read_until(b"\x04>") == \
        b"OK\x04\x04" + SOFT_REBOOT + RAW_PROMPT + b"OK42\r\n\x04\x04>"
    # pyboard.py's next Ctrl-C/Ctrl-A, sent the moment the end markers arrive: not lost, and
    # no Ctrl-C lands on the exiting VM as a signal
    for _ in range(3):
        client.s.write(b"print('SKIP')\nraise SystemExit\x04")
        client.read_until(b"SKIP\r\n\x04\x04")
        client.s.write(b"\r\x03\r\x01")
        client.read_until(RAW_PROMPT)
    assert "crash" not in [kind for kind, _ in board.resets]
    client.s.write(b"\x02")  # friendly REPL: typed ahead over a SystemExit too
    client.read_until(b">>> ")
    client.s.write(b"raise SystemExit\rprint(6*7)\r")
    out = client.read_until(b"42\r\n>>> ")
    assert SOFT_REBOOT in out and BANNER_END + b"print(6*7)\r\n42\r\n>>> " in out, out


def test_machine_reset_takes_the_port_away_and_brings_it_back(board, client):
    client.enter_raw_repl()
    port, reboots = board.port, board.reboots
    # as `mpremote reset` does it: what the board sent just before it resets may be lost
    client.submit(b"import machine, time\ntime.sleep_ms(100)\nmachine.reset()", paste=False)
    with pytest.raises(serial.SerialException):  # a USB board's device vanishes
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            client.s.read(64)
    assert wait_for_path(port, exists=False, timeout=0.1)
    client.close()  # as a client does when its device is gone
    assert board.wait_ready(5)
    # back under its name (unless another program took that name meanwhile, as happens to
    # a USB board's tty too)
    assert board.port == port or os.path.exists(port)
    assert board.reboots == reboots + 1
    assert board.resets[-1] == ("hard", "machine.reset()")
    again = RawClient(board.port)
    try:
        again.s.write(b"\r")
        again.read_until(b">>> ")
        again.enter_raw_repl()
        assert again.exec_raw(b"print(6*7)") == (b"42\r\n", b"")
    finally:
        again.close()


def test_mpremote_reset_then_reconnect(board):
    r = mpremote(board.port, "reset")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 10
    while board.resets[-1:] != [("hard", "machine.reset()")]:  # mpremote left: 100 ms later
        assert time.monotonic() < deadline, board.resets
        time.sleep(0.01)
    assert board.wait_ready(5)
    r = mpremote(board.port, "exec", "print(6*7)")
    assert r.stdout.strip() == b"42", r


def test_a_client_holding_the_old_port_gets_a_new_one(board, client, monkeypatch):
    monkeypatch.setattr(board_mod, "PORT_RECLAIM_S", 0.5)
    old = board.port
    client.enter_raw_repl()
    client.submit(b"import machine\nmachine.reset()", paste=False)
    deadline = time.monotonic() + 5
    while board.port == old:  # the old name stays taken while the client holds it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    again = RawClient(board.port)
    try:
        again.enter_raw_repl()
        assert again.exec_raw(b"print(6*7)") == (b"42\r\n", b"")
    finally:
        again.close()


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT, signal.SIGKILL],
                         ids=lambda s: s.name)
def test_a_vm_crash_is_a_reset_and_says_so(board, client, sig):
    client.enter_raw_repl()
    client.submit(b"print('running')\nwhile True: pass", paste=False)
    client.read_until(b"running\r\n")
    os.kill(board.vm_pid, sig)
    out = client.read_until(BANNER_END)
    assert out.startswith(f"virtual board: the MicroPython VM crashed ({sig.name}); the board "
                          "resets\r\nMicroPython ".encode()), out
    assert board.resets[-1] == ("crash", sig.name)
    client.enter_raw_repl()
    assert client.exec_raw(b"print(6*7)") == (b"42\r\n", b"")


def test_the_harness_sees_a_crash_as_a_board_reset(board):
    t = BoardSession(board.port, timeout_s=5)
    try:
        t.soft_reset()
        t.start("print('@')\nwhile True:\n    pass\n")
        os.kill(board.vm_pid, signal.SIGSEGV)
        with pytest.raises(BoardStopped, match=r"crashed: SIGSEGV \('virtual board: the "
                                               r"MicroPython VM crashed \(SIGSEGV\)"):
            t.read_until_record(LogParser(), "READY", 5)
    finally:
        t.close()


def test_what_the_board_said_before_a_crash_reaches_the_parser(board):
    """Read only once the board is back: its last words, the crash line and the banner come
    in one batch, and the words before the banner are still fed (they name the cause)."""
    t = BoardSession(board.port, timeout_s=5)
    try:
        t.soft_reset()
        reboots = board.reboots
        t.start("print('last words')\nimport uctypes\nuctypes.bytes_at(16, 64)\n")
        deadline = time.monotonic() + 5
        while board.reboots == reboots:  # the bridge has no event for "crashed"
            assert time.monotonic() < deadline, "the VM did not crash"
            time.sleep(0.01)
        assert board.wait_ready(5)
        parser = LogParser()
        with pytest.raises(BoardStopped, match=r"crashed: SIGSEGV"):
            t.read_until_record(parser, "READY", 5)
        assert "last words" in parser.log.lines
        assert board.resets[-1] == ("crash", "SIGSEGV")
    finally:
        t.close()


# ---- 3. filesystem -----------------------------------------------------------------------------

def test_filesystem_answers_like_a_board(board, tmp_path):
    port = board.port
    src = tmp_path / "data.bin"
    src.write_bytes(b"x" * 1234)
    assert mpremote(port, "cp", str(src), ":data.bin").returncode == 0
    assert mpremote(port, "mkdir", ":lib").returncode == 0
    listing = mpremote(port, "fs", "ls").stdout.decode()
    assert re.search(r"^\s*1234 data\.bin$", listing, re.M), listing
    assert re.search(r"^\s*0 lib/$", listing, re.M), listing
    back = tmp_path / "back.bin"
    assert mpremote(port, "cp", ":data.bin", str(back)).returncode == 0
    assert back.read_bytes() == src.read_bytes()
    out = mpremote(port, "exec", "import os, sys, uos\n"
                   "print(os.stat('data.bin')[6], os.stat('lib')[6])\n"
                   "print(sorted(os.ilistdir()))\n"
                   "print(sorted(e[:3] for e in uos.ilistdir()) == sorted(uos.ilistdir()))\n"
                   "u = os.uname()\nprint(u.sysname == sys.platform, u.machine)"
                   ).stdout.decode().splitlines()
    assert out[0] == "1234 0"
    assert re.fullmatch(r"\[\('data\.bin', 32768, \d+, 1234\), \('lib', 16384, \d+, 0\)\]",
                        out[1]), out[1]
    assert out[2] == "True"  # the firmware's own os (as uos) is untouched
    assert out[3].startswith("True tsfrig virtual board with "), out[3]


# ---- the harness on real-board line endings ---------------------------------------------------

def test_the_harness_reads_board_line_endings(board):
    t = BoardSession(board.port, timeout_s=5)
    try:
        t.soft_reset()
        assert t.exec("print('a')\nprint('b')") == "a\nb\n"
        with pytest.raises(BoardRaised) as e:
            t.exec("def f():\n    1/0\nf()")
        assert "\r" not in e.value.error_output
        assert e.value.summary.startswith("ZeroDivisionError")
        parser = LogParser()
        t.start("print('one')\nprint('two')\n")
        assert t.read_to_end(parser, 5) == ""
        assert parser.log.lines == ["one", "two"]
    finally:
        t.close()
