"""The virtual board: a real MicroPython VM behind a pty that mpremote, pyserial and
MicroPython's own tools/pyboard.py open like a USB serial device.

The unix port already speaks the friendly REPL, raw REPL and raw-paste mode over a tty.
The bridge adds what a bare-metal board does and the unix port doesn't (what a client's
bytes go through is harness/sim/client_port.py's, the VM process harness/sim/vm.py's):

- Soft reset: Ctrl-D in the raw REPL with an empty buffer, `SystemExit`/`sys.exit()` (also
  `machine.soft_reset()`) and Ctrl-D at the friendly prompt restart the VM fresh, print
  `MPY: soft reboot` and come back in the REPL the board was in (the raw one after a raw
  REPL exit), as `shared/runtime/pyexec.c` does on a board.
- Hard reset: `machine.reset()` takes the serial port away (clients see the device vanish)
  and brings it back with a freshly booted board, as a USB board re-enumerates; a RUN-pin
  pulse (`set_run`) holds the VM in reset and reboots it with its banner.
- Power: switching it off (`power`) kills the VM and takes the port away until it is switched
  on; then the port comes back as after a hard reset and the board cold-boots.
- Bootloader: `machine.bootloader()` takes the port away as a hard reset does and presents a
  UF2 drop directory (INFO_UF2.TXT inside, as RPI-RP2's mass-storage volume); an executable
  image (first line `#!`) copied there becomes the board's firmware and the board boots it.
- A VM process that crashes (a signal: segfault, abort, killed) is a board that reset: the
  client is told in one line, then sees the boot banner.

Booting is a state of the bridge, not a wait inside it: a booting board takes no input (the
client's bytes stay queued and reach the VM once it is at its prompt), answers as soon as
it is booted however long that takes, and a VM that never boots leaves the bridge serving
RUN-pin resets and stop(). The bridge never blocks on either side: output for a client that
doesn't read waits in a bounded queue (then the VM waits, as a board whose host stops
reading), input for a VM that doesn't read waits in another.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import threading
import time
from pathlib import Path

from harness.sim.client_port import INFO_UF2, PORT_RECLAIM_S, RAW_PROMPT, ClientPort
from harness.sim.firmware import Firmware
from harness.sim.vm import VM, BoardError, read_all, signal_name

SOFT_REBOOT = b"MPY: soft reboot\r\n"
BOOT_TIMEOUT_S = 5.0  # start() gives up on a first boot this slow; a reboot this slow is noted
PORT_AWAY_S = 0.2     # a hard reset takes the port away at least this long (re-enumeration)
OUT_LIMIT = 1 << 16   # client output queued beyond this: stop reading the VM (back-pressure)


class VirtualBoard(ClientPort):
    """Owns the client-facing pty, the VM process and the bridge thread between them."""

    def __init__(self, firmware: Firmware, flash_dir: Path, env_extra: dict[str, str],
                 drop_dir: Path | None = None) -> None:
        self.firmware = firmware
        self.flash_dir = Path(flash_dir)
        # the UF2 volume machine.bootloader() presents (default: beside the flash directory)
        self.drop_dir = Path(drop_dir or self.flash_dir.parent / f"{self.flash_dir.name}-RPI-RP2")
        self._drop_seen: tuple[str, int, int] | None = None  # a copy: (name, size, mtime)
        self._in_bootloader = False
        self._image_dir: Path | None = None  # flashed images live here until stop()
        self.env_extra = dict(env_extra)
        self.reboots = 0
        self.resets: list[tuple[str, str]] = []  # (soft|hard|crash|run, why), oldest first
        self.port = ""
        self._vm: VM | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client_fd = self._client_slave = -1
        # what the bridge knows of the REPL from both sides of the wire
        self._raw = False          # VM is in the raw REPL
        self._raw_empty = False    # ... at its prompt with nothing typed
        self._paste_state = 0      # 1: saw \x05, 2: saw \x05A, 3: pasting until \x04
        self._pasted_code_runs = False  # raw-paste code submitted, its output not ended
        self._eofs_due = 0         # \x04 end markers the running raw program has yet to print
        self._hold_until = 0.0     # > 0: input waits for the VM's next prompt until then
        self._prompt_hold = False  # ... and only a prompt ends the wait (a line is running)
        self._later = b""          # client bytes read, held back until that prompt
        self._verbatim = 0         # VM bytes to pass uncooked (the raw-paste header) ...
        self._paste_hdr = b""      # ... as far as seen
        self._paste_window = 0     # > 0: the VM streams a paste; the bridge credits the client
        self._paste_rx = 0         # ... for the bytes it sent
        self._nl_prev = 0          # the last REPL input byte was this newline (\r or \n) ...
        self._nl_line = False      # ... typed at a friendly prompt
        self._last_cr = False      # the VM's last output byte was \r
        self._last_sigint = 0.0
        self._sigint_again_at = 0.0  # a Ctrl-C folded into the last: re-send if code still runs
        self._tail = b""
        self._to_vm = bytearray()  # client bytes the VM has yet to take
        self._out = bytearray()    # VM bytes the client has yet to take
        self._held = b""           # client bytes for the next VM, delivered once it is booted
        self._run_level = 1        # the RUN/EN pin: low holds the board in reset
        self._run_changes: list[int] = []
        self._run_lock = threading.Lock()
        self._powered = True
        self._power_changes: list[tuple[bool, threading.Event]] = []
        self._wake_r, self._wake_w = os.pipe()  # wakes the bridge for a RUN change
        self._boot_wait: bytes | None = None  # booting: the prompt the VM has yet to print
        self._boot_raw = False     # ... then enter the raw REPL (a soft reboot)
        self._boot_seen = b""      # ... its output so far
        self._boot_deadline = 0.0  # ... when to tell the client it is taking long
        self._boot_noted = False
        self._away_name = ""       # the port is gone (hard reset) and comes back as this
        self._away_until = 0.0
        self._reclaim_until = 0.0
        self._first_boot = threading.Event()
        self._first_boot_error = ""
        self._ready = threading.Event()  # booted, at its prompt, on its port

    @property
    def vm_pid(self) -> int | None:
        return self._vm.pid if self._vm else None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> VirtualBoard:
        """Open the pty and boot the board; a first boot that fails is a BoardError (a bench
        that can't bring its board up), later ones leave the board dead until a RUN reset."""
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self._adopt_port(*os.openpty())
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
        self._drop_port()
        if self._in_bootloader:
            shutil.rmtree(self.drop_dir, ignore_errors=True)
        if self._image_dir is not None:
            shutil.rmtree(self._image_dir, ignore_errors=True)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def set_run(self, level: int) -> None:
        """The RUN/EN pin changed (any thread): low holds the VM in reset, high boots it."""
        with self._run_lock:
            self._run_changes.append(1 if level else 0)
        try:
            os.write(self._wake_w, b"r")
        except OSError:
            pass

    def power(self, on: bool, timeout_s: float) -> str:
        """Switch the board's power (any thread): off kills the VM and takes its port away;
        on brings the port back (its old name unless a client still holds that) and
        cold-boots the board. Returns the port once the board is at its prompt (on)."""
        done = threading.Event()
        with self._run_lock:
            self._power_changes.append((on, done))
        try:
            os.write(self._wake_w, b"p")
        except OSError:
            raise BoardError("the virtual board is stopped") from None
        if not done.wait(timeout_s):
            raise BoardError(f"the bench did not switch the power within {timeout_s:g} s")
        if on and not self.wait_ready(timeout_s):
            raise BoardError(f"the board did not boot within {timeout_s:g} s of power-on")
        return self.port if on else ""

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the board is booted and its port is there (after a reset, say); the
        port's name is then `port` (a hard reset brings it back under the old name unless
        another program took that meanwhile, as a USB board can come back as another tty)."""
        return self._ready.wait(timeout_s)

    def __enter__(self) -> VirtualBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()




    # ---- the VM ----------------------------------------------------------------------------
    def _boot(self, raw: bool) -> None:
        """Start a fresh VM and enter the booting state; the bridge finishes the boot (its
        prompt, then the raw REPL's for a soft reboot) without blocking (bridge thread only)."""
        self._kill_vm()
        env = dict(os.environ, MICROPYPATH=self.firmware.micropypath(self.flash_dir),
                   **self.env_extra)
        try:
            self._vm = VM(self.firmware, self.flash_dir, env)
        except BoardError as e:
            self._boot_failed(str(e))
            return
        self._raw = self._raw_empty = self._pasted_code_runs = False
        self._paste_state = self._eofs_due = self._verbatim = self._paste_window = 0
        self._nl_prev = 0
        self._hold_until, self._prompt_hold = 0.0, False
        self._tail = b""
        self._boot_wait, self._boot_raw, self._boot_seen = b">>> ", raw, b""
        self._boot_deadline = time.monotonic() + BOOT_TIMEOUT_S
        self._boot_noted = False

    def _boot_step(self, data: bytes) -> None:
        """Take the booting VM's output; until its prompt client input waits in the pty, as a
        booting board takes none (a Ctrl-C now would kill the VM's own start-up)."""
        seen = (self._boot_seen + data)[-4096:]
        if not seen.endswith(self._boot_wait):
            self._boot_seen = seen
        elif self._boot_raw and self._boot_wait != RAW_PROMPT:
            self._boot_wait, self._boot_seen = RAW_PROMPT, b""
            try:
                os.write(self._vm.master, b"\x01")
            except OSError:
                pass
        else:
            self._boot_wait = None
            self._from_vm(RAW_PROMPT if self._boot_raw else seen)
            self._first_boot.set()
            self._ready.set()
            held, self._held = self._held, b""
            if held:
                self._from_client(held)

    def _boot_overdue(self) -> None:
        self._boot_noted = True  # no answer yet: say why, keep waiting
        self._note(f"{self.firmware.executable} has not reached its prompt within "
                   f"{BOOT_TIMEOUT_S:.0f} s; still waiting (a RUN-pin reset restarts "
                   f"it): {self._boot_seen[-200:]!r}")

    def _boot_failed(self, why: str) -> None:
        """The VM won't boot: the board stays dead, as one that crashes at start-up does,
        until a RUN-pin reset; the client gets one line saying so."""
        self._kill_vm()
        self._note(why)
        if not self._first_boot.is_set():
            self._first_boot_error = why
            self._first_boot.set()

    def _note(self, text: str) -> None:
        self._send(f"virtual board: {text}\r\n".encode())

    def _kill_vm(self) -> None:
        """The VM is gone with its boot and any input meant for it (bridge thread, or stop())."""
        self._ready.clear()
        self._boot_wait, self._held, self._later = None, b"", b""
        self._to_vm.clear()
        vm, self._vm = self._vm, None
        if vm is not None:
            vm.kill()

    def _vm_exited(self) -> None:
        """The VM process ended on its own: read its last words, keep the input it never
        read for the next VM, and reset as a board would for that cause."""
        vm = self._vm
        last = read_all(vm.master)
        vm.read_control()
        booting = self._boot_wait is not None
        if last:
            if booting:
                self._boot_seen = (self._boot_seen + last)[-4096:]
            else:
                self._from_vm(last)
        unread = vm.unread_input() + bytes(self._to_vm) + self._later
        self._vm = None
        rc = vm.kill()
        if booting:
            self._boot_failed(f"{self.firmware.executable} exited before reaching its prompt "
                              f"(a RUN-pin reset restarts it): {self._boot_seen[-200:]!r}")
            return
        if vm.hard_reset_requested or vm.bootloader_requested:
            self._hard_reset("machine.reset()", vm.bootloader_requested)
            return
        self.reboots += 1
        if rc < 0 and rc != -signal.SIGINT:
            # A crash: the board reset. (SIGINT is a Ctrl-C that reached a VM already on its
            # way out of a SystemExit: that exit is what happened.)
            why = signal_name(rc)
            self.resets.append(("crash", why))
            self._note(f"the MicroPython VM crashed ({why}); the board resets")
            raw = False
        else:
            self.resets.append(("soft", f"the VM exited (status {rc})"))
            self._send(SOFT_REBOOT)
            raw = self._raw
        self._boot(raw)
        self._held = unread

    def _hard_reset(self, why: str, bootloader: bool = False) -> None:
        """A hard reset: the VM dies, the port goes away and comes back with a booted board
        (into the bootloader: once an image is dropped on its volume)."""
        self._kill_vm()
        self.reboots += 1
        self.resets.append(("bootloader", "machine.bootloader()") if bootloader
                           else ("hard", why))
        self._away_name = self.port
        now = time.monotonic()
        self._away_until, self._reclaim_until = now + PORT_AWAY_S, now + PORT_RECLAIM_S
        self._drop_port()
        if bootloader:
            self._in_bootloader, self._drop_seen = True, None
            self.drop_dir.mkdir(parents=True, exist_ok=True)
            (self.drop_dir / INFO_UF2).write_text(
                "UF2 Bootloader v3.0\r\nModel: tsfrig virtual board\r\nBoard-ID: TSFRIG-VB\r\n")

    def _soft_reboot_raw(self) -> None:
        """Ctrl-D at an empty raw REPL: OK, the soft reboot banner, back in the raw REPL."""
        self._kill_vm()
        self.reboots += 1
        self.resets.append(("soft", "Ctrl-D"))
        self._send(b"OK\r\n" + SOFT_REBOOT)
        self._boot(raw=True)

    def _bridge(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            self._sigint_again(now)
            if self._later and self._vm is not None and self._takes_input(now):
                later, self._later = self._later, b""
                self._from_client(later)
            vm = self._vm
            rd, wr = [self._wake_r], []
            if vm is not None:
                rd.append(vm.pidfd)
                if vm.ctl >= 0:
                    rd.append(vm.ctl)
                if len(self._out) < OUT_LIMIT:
                    rd.append(vm.master)
                if self._to_vm and self._boot_wait is None:
                    wr.append(vm.master)
            if self._client_fd >= 0:
                if self._out:
                    wr.append(self._client_fd)
                if self._takes_input(now):
                    rd.append(self._client_fd)
            timeout = 0.01 if self._away_name and self._powered else 0.05 if \
                self._hold_until or self._in_bootloader or self._sigint_again_at else 0.2
            try:
                r, w, _ = select.select(rd, wr, [], timeout)
            except (OSError, ValueError):
                return
            if self._wake_r in r:
                os.read(self._wake_r, 64)
                self._apply_run_changes()
                self._apply_power_changes()
                continue
            if self._in_bootloader:
                self._drop_step()
                continue
            if self._away_name:
                self._port_step(time.monotonic())
                continue
            if vm is not None:
                self._serve_vm(vm, r, w)
            if self._client_fd >= 0 and self._client_fd in w:
                self._flush_out()
            if self._client_fd >= 0 and self._client_fd in r:
                try:
                    data = os.read(self._client_fd, 4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    continue
                if self._vm is not None and data:  # dead or held in reset: input goes nowhere
                    self._from_client(data)

    def _serve_vm(self, vm: VM, r: list[int], w: list[int]) -> None:
        if vm.master in r:
            data = read_all(vm.master)
            if data and self._boot_wait is not None:
                self._boot_step(data)
            elif data:
                self._from_vm(data)
        if self._vm is vm and vm.ctl in r:
            vm.read_control()
            if vm.hard_reset_requested or vm.bootloader_requested:
                self._from_vm(read_all(vm.master))
                self._hard_reset("machine.reset()", vm.bootloader_requested)
                return
        if self._vm is vm and vm.pidfd in r:
            self._vm_exited()
            return
        if self._vm is vm and vm.master in w:
            self._flush_to_vm()
        if self._vm is vm and self._boot_wait is not None and not self._boot_noted \
                and time.monotonic() > self._boot_deadline:
            self._boot_overdue()

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
                self.resets.append(("run", "RUN pin"))
                if not self._away_name:
                    self._boot(raw=False)

    def _apply_power_changes(self) -> None:
        """Power off: the VM dies and the port goes (a bootloader's volume too) until power
        on, when the port comes back and the board boots as from cold (bridge thread only)."""
        with self._run_lock:
            changes, self._power_changes = self._power_changes, []
        for on, done in changes:
            if on != self._powered:
                self._powered = on
                now = time.monotonic()
                if not on:
                    self._kill_vm()
                    if self._in_bootloader:
                        shutil.rmtree(self.drop_dir, ignore_errors=True)
                        self._in_bootloader = False
                    if not self._away_name:
                        self._away_name = self.port
                        self._drop_port()
                    self._away_until = self._reclaim_until = float("inf")
                else:
                    self.reboots += 1
                    self.resets.append(("power", "power cycle"))
                    self._away_until, self._reclaim_until = now, now + PORT_RECLAIM_S
            done.set()










