"""The board side of the bench: a MicroPython target on a serial port.

Uses mpremote's SerialTransport (raw REPL, raw-paste, soft reset, file ops) over
pyserial, the same for a USB board and the virtual one. Every wait has a deadline.
As mpremote splits TransportError from TransportExecError, three things are kept apart:
the link failed (port missing, closed, gone: TargetError, a bench fault), the board
raised (BoardRaised) and the board stopped answering or reset while its port stayed up
(BoardStopped); the last two are firmware evidence once the board came up healthy.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Any

import serial
import serial.tools.list_ports
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from harness.board.log_protocol import LogParser, Record
from harness.shipped import DEVICE_SCRIPTS
from harness.verdict import BenchFault, FirmwareFault, board_exception_summary

log = logging.getLogger(__name__)
# What a board prints when it (re)boots: seen mid-scenario, the board crashed or reset.
POLL_S = 0.05  # a read of the port returns after this long with what came: reads keep deadlines
# mpremote's raw-paste and exec code reads as if every read blocked until its bytes came: a
# header or flow-control credit later than POLL_S (a loaded host) broke a start or an upload
MPREMOTE_READ_S = 2.0  # (a raw-paste window grant from an emulated Pico took >1 s)
RESET_MARKERS = ("MPY: soft reboot", 'Type "help()" for more information.')
# What a board (or the virtual board's bridge) prints when it crashes, before it reboots: the
# line is quoted in the verdict, the signal or fault named first.
CRASH_LINE = re.compile(r"crashed|Guru Meditation|Fatal|panic|HardFault|abort", re.I)
SIGNAL_NAME = re.compile(r"\b(SIG[A-Z]+)\b")


class TargetError(BenchFault):
    """The serial link to the board failed (port missing, closed or gone): a bench fault."""


class BoardRaised(FirmwareFault):
    """The board raised an exception (its traceback is kept)."""

    def __init__(self, error_output: str, context: str = "") -> None:
        self.error_output = error_output.strip()
        self.summary = board_exception_summary(self.error_output) or "an exception"
        super().__init__(f"{context}{self.summary}")


class BoardStopped(FirmwareFault):
    """The board stopped answering, or reset, while its serial port stayed up. `then` says
    it as the second half of a verdict whose first half is what the board raised before."""

    def __init__(self, message: str, then: str = "", **context: Any) -> None:
        super().__init__(message, **context)  # where, raised_first, bench_stalled, recovery
        self.then = then or message


def crash_report(lines: list[str], banner: str) -> BoardStopped:
    """The board rebooted mid-scenario (it printed `banner`): what it said as it crashed
    leads ("crashed: SIGSEGV ('virtual board: the MicroPython VM crashed (SIGSEGV); ...')")."""
    said = next((ln.strip() for ln in reversed(lines)
                 if CRASH_LINE.search(ln) and not ln.startswith("@TSF")), "")
    if not said:
        return BoardStopped(f"board crashed or reset during the scenario (it printed its "
                            f"boot banner: {banner!r})",
                            then=f"it crashed or reset (it printed its boot banner: {banner!r})")
    sig = SIGNAL_NAME.search(said)
    what = f"crashed: {sig.group(1) if sig else 'a fault'} ({said!r})"
    return BoardStopped(f"board {what} and rebooted during the scenario", then=f"it {what}")


def find_port(vid: int | None, pid: int | None, serial_number: str | None) -> str:
    """Resolve `serial.port: auto` by USB VID/PID/serial number."""
    matches = [
        p.device
        for p in serial.tools.list_ports.comports()
        if (vid is None or p.vid == vid)
        and (pid is None or p.pid == pid)
        and (serial_number is None or p.serial_number == serial_number)
    ]
    want = " ".join(f"{k}={v}" for k, v in (
        ("vid", None if vid is None else f"0x{vid:04x}"),
        ("pid", None if pid is None else f"0x{pid:04x}"),
        ("serial_number", serial_number)) if v is not None) or "any device"
    if not matches:
        raise TargetError(f"no USB serial device matches {want}: plug the board in or fix serial:")
    if len(matches) > 1:
        raise TargetError(f"{len(matches)} devices match {want} ({', '.join(matches)}): "
                          "add serial.serial_number to pick one")
    return matches[0]


class BoardSession:
    """A raw-REPL session with one board."""

    def __init__(self, port: str, baudrate: int = 115200, timeout_s: float = 10.0) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self._open()

    def _open(self) -> None:
        try:
            self.transport = SerialTransport(self.port, self.baudrate, timeout=POLL_S)
        except (TransportError, serial.SerialException, OSError) as e:
            raise TargetError(f"serial port {self.port} can't be opened ({e}): check the cable, "
                              "the port name, and that no other program holds it") from None
        self.serial = self.transport.serial
        self._pending = b""
        self._reset: BoardStopped | None = None  # seen by _poll, raised once its lines are fed
        self._recent: collections.deque[str] = collections.deque(maxlen=8)  # a crash's last words

    def reopen(self, timeout_s: float) -> None:
        """Close and open the port again, waiting for it to come back: a USB board's port
        disappears and re-enumerates across a hard reset."""
        self.close()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._open()
                return
            except TargetError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.1)  # polling for a device node that is not there yet

    # ---- session control -------------------------------------------------------------
    def soft_reset(self, timeout_s: float | None = None) -> None:
        """Interrupt whatever runs, soft-reboot, and leave the board in the raw REPL (within
        timeout_s, default the target's)."""
        t0 = time.monotonic()
        with self._link("soft-reset the board"):
            try:
                self.transport.enter_raw_repl(soft_reset=True,
                                              timeout_overall=timeout_s or self.timeout_s)
            except TransportError as e:
                raise BoardStopped(f"board on {self.port} does not answer a soft reset ({e}): "
                                   "power-cycle it or check the firmware boots") from None
        self._pending = b""
        log.debug("soft reset of %s: %.0f ms", self.port, (time.monotonic() - t0) * 1000)

    def recover(self, timeout_s: float | None = None) -> None:
        """Ctrl-C twice, then a soft reset; raises BoardStopped if the board stays mute."""
        self.send(b"\r\x03\x03")
        self.soft_reset(timeout_s)

    def exec(self, code: str) -> str:
        """Run code to completion and return its output (for setup, not timed work)."""
        log.debug("exec on %s: %s", self.port, code.splitlines()[0][:80] if code else "")
        with self._link("run code"), self._mpremote_reads():
            try:
                out, err = self.transport.exec_raw(code, timeout=self.timeout_s)
            except TransportError as e:
                raise BoardStopped(f"board on {self.port} stopped answering: {e}") from None
        if err:
            log.debug("board raised: %s", err.decode(errors="replace").strip()[-200:])
            raise BoardRaised(err.decode(errors="replace").replace("\r\n", "\n"))
        return out.decode(errors="replace").replace("\r\n", "\n")  # a board cooks \n

    def upload(self, files: list[Path] | None = None) -> list[str]:
        """Send the device scripts whose hash differs from the board's copy; return their names."""
        files = files or sorted(DEVICE_SCRIPTS.glob("*.py"))
        sent = []
        self._upload(files, sent)
        log.info("uploaded to %s: %s", self.port, ", ".join(sent) or "nothing changed")
        return sent

    def _upload(self, files: list[Path], sent: list[str]) -> None:
        for f in files:
            data = f.read_bytes()
            try:
                with self._mpremote_reads():
                    have = self.transport.fs_hashfile(f.name, "sha256")
            except (OSError, TransportError, serial.SerialException):
                have = b""
            if have != hashlib.sha256(data).digest():
                try:
                    with self._mpremote_reads():
                        self.transport.fs_writefile(f.name, data)
                except (OSError, TransportExecError) as e:  # the link lost, or the board
                    # refused the file (mpremote turns its OSError into ours)
                    raise TargetError(f"upload of {f.name} to {self.port} failed: {e}") from None
                except TransportError as e:  # the port is up, the raw REPL does not answer
                    raise BoardStopped(f"board on {self.port} stopped answering during the "
                                       f"upload of {f.name} ({e})") from None
                sent.append(f.name)

    def start(self, code: str) -> None:
        """Start code without waiting for it to finish (scenarios talk back over the log)."""
        log.debug("start on %s: %s", self.port, code.splitlines()[-1][:120])
        with self._link("start the scenario"), self._mpremote_reads():
            try:
                self.transport.exec_raw_no_follow(code)
            except TransportError as e:
                raise BoardStopped(f"board on {self.port} would not start the scenario: {e}"
                                   ) from None
        self._pending = b""

    def send(self, cmd: bytes) -> None:
        log.debug("to board: %r", cmd)
        with self._link("send a command"):
            self.serial.write(cmd)

    @contextlib.contextmanager
    def _mpremote_reads(self):
        """While mpremote runs code or moves files: its reads wait up to MPREMOTE_READ_S for
        their bytes (not soft_reset: on a pty mpremote polls with single-byte reads)."""
        self.serial.timeout = MPREMOTE_READ_S
        try:
            yield
        finally:
            with contextlib.suppress(serial.SerialException, OSError):  # the port went away
                self.serial.timeout = POLL_S

    @contextlib.contextmanager
    def _link(self, what: str):
        """Serial-level failures (EIO, port closed or unplugged) are the link's, not the
        board's: a bench fault."""
        try:
            yield
        except (serial.SerialException, OSError) as e:
            raise TargetError(f"serial link to the board lost on {self.port} while trying to "
                              f"{what} ({e}): check the USB cable and that the port still "
                              "exists") from None

    # ---- reading ---------------------------------------------------------------------
    def read_until_record(self, parser: LogParser, record_type: str, timeout_s: float) -> Record:
        """Feed device lines to parser until a record of `record_type` arrives."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines, finished = self._poll(deadline)
            found = self._fed(parser, lines, record_type)
            if found is not None:
                log.debug("board sent %s (%d lines so far)", record_type, len(parser.log.lines))
                if finished:  # the program also ended: keep its end for the next read
                    self._pending = b"\x04" + self._pending
                return found
            if finished:
                err = self._read_error_output(deadline)
                if err:
                    raise BoardRaised(err, context=f"before sending {record_type}: ")
                raise BoardStopped(f"the scenario's program ended before sending {record_type}, "
                                   "with no error")
            if time.monotonic() >= deadline:
                raise BoardStopped(f"board stopped answering: no {record_type} within "
                                   f"{timeout_s:.1f} s")

    def read_to_end(self, parser: LogParser, timeout_s: float) -> str:
        """Feed lines until the scenario's program finishes; return its error output."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines, finished = self._poll(deadline)
            self._fed(parser, lines)
            if finished:
                err = self._read_error_output(deadline)
                log.debug("scenario ended: %d lines%s", len(parser.log.lines),
                          f", error output {err[-200:]!r}" if err else "")
                return err
            if time.monotonic() >= deadline:
                raise BoardStopped(f"board stopped answering: the scenario did not finish "
                                   f"within {timeout_s:.1f} s of the end command")

    def _poll(self, deadline: float) -> tuple[list[str], bool]:
        """Wait (up to deadline) for a complete line or the raw REPL's end-of-output marker."""
        while b"\n" not in self._pending and b"\x04" not in self._pending:
            if time.monotonic() >= deadline:
                return [], False
            self._pending += self._read_some()
        if b"\x04" in self._pending:
            out, _, self._pending = self._pending.partition(b"\x04")
            lines, finished = [ln for ln in out.split(b"\n") if ln.strip()], True
        else:
            *lines, self._pending = self._pending.split(b"\n")
            finished = False
        text = [ln.decode(errors="replace").rstrip("\r") for ln in lines]
        return self._check_reset(text, finished)

    def _read_some(self) -> bytes:
        with self._link("read from the board"):
            return self.serial.read(max(1, self.serial.in_waiting))

    def _check_reset(self, lines: list[str], finished: bool) -> tuple[list[str], bool]:
        """A boot banner mid-scenario: the board crashed or reset and came back. What it said
        before (a traceback, a WAITER_EXIT, its crash line) still reaches the parser: the
        reset is raised by _fed() once those lines are in."""
        for i, line in enumerate(lines):
            if line.strip().startswith(RESET_MARKERS):
                self._reset = crash_report([*self._recent, *lines[:i]], line.strip())
                self._recent.clear()
                self._pending = b""  # the rebooted board's banner and prompt: not the scenario's
                return lines[:i], False
        self._recent.extend(lines)
        return lines, finished

    def _fed(self, parser: LogParser, lines: list[str], record_type: str = "") -> Record | None:
        """Feed every line of a batch to the parser (none may be dropped); the first record of
        `record_type` in it, if any. A reset seen in the batch is raised after."""
        found = None
        for line in lines:
            rec = parser.feed(line)
            if rec is not None and rec.type == record_type and found is None:
                found = rec
        if self._reset is not None:
            reset, self._reset = self._reset, None
            raise reset
        return found

    def poll_record(self, parser: LogParser, record_type: str) -> Record | None:
        """Without waiting: feed what the board has already sent; a record of `record_type` if one
        came (lets a scenario hear the board's news between pulses)."""
        with self._link("read from the board"):
            if self.serial.in_waiting:
                self._pending += self.serial.read(self.serial.in_waiting)
        if b"\n" not in self._pending and b"\x04" not in self._pending:
            return None
        lines, finished = self._poll(time.monotonic())
        found = self._fed(parser, lines, record_type)
        if finished:
            err = self._read_error_output(time.monotonic() + 1.0)
            if err:
                raise BoardRaised(err, context="while the scenario ran: ")
            self._pending = b"\x04\x04" + self._pending  # ended cleanly: the reader sees it
        return found

    def _read_error_output(self, deadline: float) -> str:
        """After the first end marker the raw REPL sends error output and a second marker."""
        deadline = max(deadline, time.monotonic() + 2.0)
        while b"\x04" not in self._pending and time.monotonic() < deadline:
            self._pending += self._read_some()
        err, _, self._pending = self._pending.partition(b"\x04")
        return err.decode(errors="replace").replace("\r\n", "\n").strip()

    def close(self) -> None:
        try:
            self.transport.close()
        except OSError:
            pass
        finally:  # mpremote skips this when clearing RTS fails (EIO on a vanished port):
            # a handle left open keeps the device's name busy, so a board that comes back
            # after a reset would get another name
            with contextlib.suppress(OSError, serial.SerialException):
                self.serial.close()
