"""The board side of the bench: a MicroPython target on a serial port.

Uses mpremote's SerialTransport (raw REPL, raw-paste, soft reset, file ops) over
pyserial, the same for a USB board and the virtual one. Every wait has a deadline;
a board that stops answering is a TargetError, which is an infrastructure fault,
never a firmware verdict.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import serial
import serial.tools.list_ports
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from harness.protocol import LogParser, Record

DEVICE_SCRIPTS = Path(__file__).resolve().parent.parent / "device_scripts"


class TargetError(Exception):
    """The board or its port misbehaved (no answer, port gone): a bench fault."""


def find_port(vid: int | None, pid: int | None, serial_number: str | None) -> str:
    """Resolve `serial.port: auto` by USB VID/PID/serial number."""
    matches = [
        p.device
        for p in serial.tools.list_ports.comports()
        if (vid is None or p.vid == vid)
        and (pid is None or p.pid == pid)
        and (serial_number is None or p.serial_number == serial_number)
    ]
    want = f"vid={vid!r} pid={pid!r} serial_number={serial_number!r}"
    if not matches:
        raise TargetError(f"no USB serial device matches {want}: plug the board in or fix serial:")
    if len(matches) > 1:
        raise TargetError(f"{len(matches)} devices match {want} ({', '.join(matches)}): "
                          "add serial.serial_number to pick one")
    return matches[0]


class Target:
    """A raw-REPL session with one board."""

    def __init__(self, port: str, baudrate: int = 115200, timeout_s: float = 10.0) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self._open()

    def _open(self) -> None:
        try:
            self.transport = SerialTransport(self.port, self.baudrate, timeout=0.05)
        except (TransportError, serial.SerialException, OSError) as e:
            raise TargetError(f"serial port {self.port} can't be opened ({e}): check the cable, "
                              "the port name, and that no other program holds it") from None
        self.serial = self.transport.serial
        self._pending = b""

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
    def soft_reset(self) -> None:
        """Interrupt whatever runs, soft-reboot, and leave the board in the raw REPL."""
        try:
            self.transport.enter_raw_repl(soft_reset=True, timeout_overall=self.timeout_s)
        except TransportError as e:
            raise TargetError(f"board on {self.port} does not answer a soft reset ({e}): "
                              "power-cycle it or check the firmware boots") from None
        self._pending = b""

    def recover(self) -> None:
        """Escalate: Ctrl-C twice, then a soft reset; raises TargetError if the board stays mute."""
        self.serial.write(b"\r\x03\x03")
        self.soft_reset()

    def exec(self, code: str) -> str:
        """Run code to completion and return its output (for setup, not timed work)."""
        try:
            out, err = self.transport.exec_raw(code, timeout=self.timeout_s)
        except TransportError as e:
            raise TargetError(f"board on {self.port} stopped answering: {e}") from None
        if err:
            raise TargetError(f"board raised: {err.decode(errors='replace').strip()}")
        return out.decode(errors="replace")

    def upload(self, files: list[Path] | None = None) -> list[str]:
        """Send the device scripts whose hash differs from the board's copy; return their names."""
        files = files or sorted(DEVICE_SCRIPTS.glob("*.py"))
        sent = []
        for f in files:
            data = f.read_bytes()
            try:
                have = self.transport.fs_hashfile(f.name, "sha256")
            except (OSError, TransportError):
                have = b""
            if have != hashlib.sha256(data).digest():
                try:
                    self.transport.fs_writefile(f.name, data)
                except (OSError, TransportError) as e:
                    raise TargetError(f"upload of {f.name} to {self.port} failed: {e}") from None
                sent.append(f.name)
        return sent

    def start(self, code: str) -> None:
        """Start code without waiting for it to finish (scenarios talk back over the log)."""
        try:
            self.transport.exec_raw_no_follow(code)
        except TransportError as e:
            raise TargetError(f"board on {self.port} would not start the scenario: {e}") from None
        self._pending = b""

    def send(self, cmd: bytes) -> None:
        self.serial.write(cmd)

    # ---- reading ---------------------------------------------------------------------
    def read_until_record(self, parser: LogParser, kind: str, timeout_s: float) -> Record:
        """Feed device lines to parser until a record of `kind` arrives."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines, finished = self._poll(deadline)
            for line in lines:
                rec = parser.feed(line)
                if rec is not None and rec.kind == kind:
                    return rec
            if finished:
                err = self._read_error_output(deadline)
                raise TargetError(f"scenario ended before sending {kind}: {err or 'no error'}")
            if time.monotonic() >= deadline:
                raise TargetError(f"board on {self.port} sent no {kind} within {timeout_s:.1f} s")

    def read_to_end(self, parser: LogParser, timeout_s: float) -> str:
        """Feed lines until the scenario's program finishes; return its error output."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines, finished = self._poll(deadline)
            for line in lines:
                parser.feed(line)
            if finished:
                return self._read_error_output(deadline)
            if time.monotonic() >= deadline:
                raise TargetError(f"board on {self.port} did not finish the scenario within "
                                  f"{timeout_s:.1f} s")

    def _poll(self, deadline: float) -> tuple[list[str], bool]:
        """Wait (up to deadline) for a complete line or the raw REPL's end-of-output marker."""
        while b"\n" not in self._pending and b"\x04" not in self._pending:
            if time.monotonic() >= deadline:
                return [], False
            self._pending += self.serial.read(max(1, self.serial.in_waiting))
        if b"\x04" in self._pending:
            out, _, self._pending = self._pending.partition(b"\x04")
            return [ln.decode(errors="replace") for ln in out.split(b"\n") if ln.strip()], True
        *complete, self._pending = self._pending.split(b"\n")
        return [ln.decode(errors="replace") for ln in complete], False

    def _read_error_output(self, deadline: float) -> str:
        """After the first end marker the raw REPL sends error output and a second marker."""
        deadline = max(deadline, time.monotonic() + 2.0)
        while b"\x04" not in self._pending and time.monotonic() < deadline:
            self._pending += self.serial.read(max(1, self.serial.in_waiting))
        err, _, self._pending = self._pending.partition(b"\x04")
        return err.decode(errors="replace").strip()

    def close(self) -> None:
        try:
            self.transport.close()
        except OSError:
            pass
