"""The virtual board: a real MicroPython VM behind a pty that mpremote and pyserial open
like a USB serial device.

The unix port already speaks the friendly REPL, raw REPL and raw-paste mode over a tty.
The bridge adds what a board does and the unix port doesn't: Ctrl-D in the raw REPL with
an empty buffer soft-reboots (the VM is restarted fresh and `MPY: soft reboot` printed);
a VM that exits is restarted like a board after a reset. Ctrl-C while code runs reaches
the VM as SIGINT -> KeyboardInterrupt because the VM's pty is its controlling terminal
with ISIG on (the unix REPL turns ISIG off only while it reads a line).

Booting is a state of the bridge, not a wait inside it: a booting board takes no input (the
client's bytes stay queued and reach the VM once it is at its prompt), answers as soon as
it is booted however long that takes, and a VM that never boots leaves the bridge serving
RUN-pin resets and stop().
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import termios
import threading
import time
import tty
from pathlib import Path

from harness.children import die_with_parent
from harness.sim.firmware import Firmware

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
RAW_PROMPT = RAW_BANNER + b">"
BOOT_TIMEOUT_S = 5.0  # start() gives up on a first boot this slow; a reboot this slow is noted


class BoardError(Exception):
    """The virtual board's VM would not start or answer."""


def _make_controlling_tty() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    die_with_parent()  # its own session: only this stops it if the bench is killed


def _raw_with_isig(fd: int) -> None:
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] |= termios.ISIG
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class VirtualBoard:
    """Owns the client-facing pty, the VM process and the bridge thread between them."""

    def __init__(self, firmware: Firmware, flash_dir: Path, env_extra: dict[str, str]) -> None:
        self.firmware = firmware
        self.flash_dir = Path(flash_dir)
        self.env_extra = dict(env_extra)
        self.reboots = 0
        self.port = ""
        self._proc: subprocess.Popen | None = None
        self._vm_fd = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._raw = False          # VM is in the raw REPL
        self._raw_empty = False    # ... at its prompt with nothing typed
        self._paste_state = 0      # 1: saw \x05, 2: saw \x05A, 3: pasting until \x04
        self._pasted_code_runs = False  # raw-paste code submitted, its output not ended
        self._last_sigint = 0.0
        self._tail = b""
        self._run_level = 1        # the RUN/EN pin: low holds the board in reset
        self._run_changes: list[int] = []
        self._run_lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()  # wakes the bridge for a RUN change
        self._boot_wait: bytes | None = None  # booting: the prompt the VM has yet to print
        self._boot_raw = False     # ... then enter the raw REPL (a soft reboot)
        self._boot_seen = b""      # ... its output so far
        self._boot_deadline = 0.0  # ... when to tell the client it is taking long
        self._boot_noted = False
        self._held = b""           # client bytes after a soft reboot's Ctrl-D, for the new VM
        self._first_boot = threading.Event()
        self._first_boot_error = ""

    @property
    def vm_pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> VirtualBoard:
        """Open the pty and boot the board; a first boot that fails is a BoardError (a bench
        that can't bring its board up), later ones leave the board dead until a RUN reset."""
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self._client_fd, self._client_slave = os.openpty()
        tty.setraw(self._client_slave)  # kept open so the master never sees a hang-up
        self.port = os.ttyname(self._client_slave)
        self._boot(raw=False)
        self._thread = threading.Thread(target=self._bridge, name="board-bridge", daemon=True)
        self._thread.start()
        if self._first_boot.wait(BOOT_TIMEOUT_S + 1):
            error = self._first_boot_error
        else:
            error = f"{self.firmware.executable} did not reach its prompt within " \
                    f"{BOOT_TIMEOUT_S:.0f} s"
        if error:  # a bench that can't boot its board at all is a bench fault
            self.stop()
            raise BoardError(error)
        return self

    def stop(self) -> None:
        """Kill the VM's process group, stop the bridge, close every fd."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self._kill_vm()
        for fd in (getattr(self, "_client_fd", -1), getattr(self, "_client_slave", -1),
                   self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._client_fd = self._client_slave = self._wake_r = self._wake_w = -1

    def set_run(self, level: int) -> None:
        """The RUN/EN pin changed (any thread): low holds the VM in reset, high boots it."""
        with self._run_lock:
            self._run_changes.append(1 if level else 0)
        try:
            os.write(self._wake_w, b"r")
        except OSError:
            pass

    def __enter__(self) -> VirtualBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn_vm(self) -> None:
        master, slave = os.openpty()
        _raw_with_isig(slave)
        env = dict(os.environ, MICROPYPATH=self.firmware.micropypath(self.flash_dir),
                   **self.env_extra)
        try:
            self._proc = subprocess.Popen(
                [str(self.firmware.executable)], stdin=slave, stdout=slave, stderr=slave,
                cwd=self.flash_dir, env=env, preexec_fn=_make_controlling_tty, close_fds=True)
        except OSError as e:
            os.close(master)
            raise BoardError(f"cannot start {self.firmware.executable}: {e}") from None
        finally:
            os.close(slave)
        self._vm_fd = master
        self._raw = self._raw_empty = False
        self._paste_state = 0
        self._pasted_code_runs = False
        self._tail = b""

    def _boot(self, raw: bool) -> None:
        """Start a fresh VM and enter the booting state; the bridge finishes the boot (its
        prompt, then the raw REPL's for a soft reboot) without blocking (bridge thread only)."""
        try:
            self._spawn_vm()
        except BoardError as e:
            self._boot_failed(str(e))
            return
        self._boot_wait, self._boot_raw, self._boot_seen = b">>> ", raw, b""
        self._boot_deadline = time.monotonic() + BOOT_TIMEOUT_S
        self._boot_noted = False

    def _boot_step(self, vm_readable: bool) -> None:
        """Take the booting VM's output; until its prompt client input waits in the pty, as a
        booting board takes none (a Ctrl-C now would kill the VM's own start-up)."""
        if not self._boot_noted and time.monotonic() > self._boot_deadline:
            self._boot_noted = True  # no answer yet: say why, keep waiting
            self._note(f"{self.firmware.executable} has not reached its prompt within "
                       f"{BOOT_TIMEOUT_S:.0f} s; still waiting (a RUN-pin reset restarts "
                       f"it): {self._boot_seen[-200:]!r}")
        if not vm_readable:
            return
        try:
            data = os.read(self._vm_fd, 4096)
        except OSError:
            data = b""
        if not data:
            self._boot_failed(f"{self.firmware.executable} exited before reaching its prompt "
                              f"(a RUN-pin reset restarts it): {self._boot_seen[-200:]!r}")
            return
        seen = (self._boot_seen + data)[-4096:]
        if not seen.endswith(self._boot_wait):
            self._boot_seen = seen
        elif self._boot_raw and self._boot_wait != RAW_PROMPT:
            self._boot_wait, self._boot_seen = RAW_PROMPT, b""
            self._write_vm(b"\x01")
        else:
            self._boot_wait = None
            self._from_vm(RAW_PROMPT if self._boot_raw else seen)
            self._first_boot.set()
            held, self._held = self._held, b""
            if held:
                self._from_client(held)

    def _boot_failed(self, why: str) -> None:
        """The VM won't boot: the board stays dead, as one that crashes at start-up does,
        until a RUN-pin reset; the client gets one line saying so."""
        self._kill_vm()
        self._note(why)
        if not self._first_boot.is_set():
            self._first_boot_error = why
            self._first_boot.set()

    def _note(self, text: str) -> None:
        self._to_client(f"virtual board: {text}\r\n".encode())

    def _kill_vm(self) -> None:
        """The VM is gone with its boot and any input held for it (bridge thread, or stop())."""
        self._boot_wait, self._held = None, b""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc is not None:
            proc.wait(timeout=5)
        if self._vm_fd >= 0:
            os.close(self._vm_fd)
            self._vm_fd = -1

    # ---- the bridge ------------------------------------------------------------------------
    def _bridge(self) -> None:
        while not self._stop.is_set():
            fds = [self._wake_r] + ([self._vm_fd] if self._vm_fd >= 0 else [])
            if self._boot_wait is None:  # a booting board reads no input: it stays queued
                fds.append(self._client_fd)
            try:
                ready, _, _ = select.select(fds, [], [], 0.2)
            except (OSError, ValueError):
                return
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
                self._apply_run_changes()
                continue
            if self._boot_wait is not None:
                self._boot_step(self._vm_fd in ready)
                continue
            if self._vm_fd < 0:  # held in reset or dead: input goes nowhere, as on a board
                if self._client_fd in ready:
                    try:
                        os.read(self._client_fd, 4096)
                    except OSError:
                        pass
                continue
            if self._vm_fd in ready:
                try:
                    data = os.read(self._vm_fd, 4096)
                except OSError:
                    data = b""
                if data:
                    self._from_vm(data)
                else:
                    self._reset(raw=False)  # the VM exited: reboot like a reset board
                    continue
            if self._client_fd in ready:
                try:
                    data = os.read(self._client_fd, 4096)
                except OSError:
                    continue
                self._from_client(data)

    def _apply_run_changes(self) -> None:
        """A RUN pulse is a hard reset: the VM dies on the falling edge and boots, with its
        banner and friendly REPL, on the rising edge (bridge thread only)."""
        with self._run_lock:
            changes, self._run_changes = self._run_changes, []
        for level in changes:
            if level == self._run_level:
                continue
            self._run_level = level
            if level == 0:
                self._kill_vm()
            else:
                self.reboots += 1
                self._boot(raw=False)

    def _to_client(self, data: bytes) -> None:
        try:
            os.write(self._client_fd, data)
        except OSError:
            pass

    def _from_vm(self, data: bytes) -> None:
        self._to_client(data)
        self._tail = (self._tail + data)[-64:]
        if self._tail.endswith(RAW_PROMPT) or self._tail.endswith(b"\x04>"):
            self._raw, self._raw_empty = True, True
            self._pasted_code_runs = False
        elif self._tail.endswith(b">>> "):
            self._raw = self._raw_empty = self._pasted_code_runs = False

    def _from_client(self, data: bytes) -> None:
        out = bytearray()
        for i, b in enumerate(data):
            if self._raw and self._paste_state == 3:
                out.append(b)
                if b == 0x04:
                    self._paste_state = 0
                    self._pasted_code_runs = True
                continue
            if b == 0x03 and self._pasted_code_runs and self._interrupt_vm():
                continue
            if self._raw and self._raw_empty and b == 0x04:
                self._write_vm(bytes(out))
                self._to_client(b"OK\r\n")
                self._reset(raw=True)
                self._held = data[i + 1:]  # the rebooting board takes these once booted
                return
            if self._raw and self._raw_empty and b == 0x05:
                self._paste_state = 1
            elif self._paste_state == 1 and b == ord("A"):
                self._paste_state = 2
            elif self._paste_state == 2 and b == 0x01:
                self._paste_state = 3
                self._raw_empty = False
            else:
                self._paste_state = 0
                if b == 0x02:
                    self._raw = False
                if b not in (0x01, 0x03):
                    self._raw_empty = False
            out.append(b)
        self._write_vm(bytes(out))

    def _interrupt_vm(self) -> bool:
        """Ctrl-C while raw-paste code runs. The unix port leaves its tty's ISIG off then, so
        the byte would reach the program's stdin instead of interrupting it, which no board
        does; deliver it as the SIGINT the tty would have sent."""
        try:
            isig = termios.tcgetattr(self._vm_fd)[3] & termios.ISIG
        except (OSError, termios.error):
            return False
        if isig or self._proc is None:
            return False
        now = time.monotonic()
        if now - self._last_sigint >= 0.05:  # "\x03\x03" is one interrupt, not two
            self._last_sigint = now
            try:
                os.kill(self._proc.pid, signal.SIGINT)
            except ProcessLookupError:
                return False
        return True

    def _write_vm(self, data: bytes) -> None:
        while data and self._vm_fd >= 0:
            try:
                n = os.write(self._vm_fd, data)
            except OSError:
                return
            data = data[n:]

    def _reset(self, raw: bool) -> None:
        """Restart the VM fresh; in raw mode come back at the raw REPL prompt as a board does."""
        self._kill_vm()
        self.reboots += 1
        if raw:
            self._to_client(b"MPY: soft reboot\r\n")
        self._boot(raw)
