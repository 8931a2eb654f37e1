"""The virtual board: a real MicroPython VM behind a pty that mpremote, pyserial and
MicroPython's own tools/pyboard.py open like a USB serial device.

The unix port already speaks the friendly REPL, raw REPL and raw-paste mode over a tty.
The bridge adds what a bare-metal board does and the unix port doesn't:

- Cooked output: the VM's lone `\\n` reaches the client as `\\r\\n`, as every bare-metal port
  sends it (`\\r\\n` the VM already sends stays as it is; the raw-paste window header and the
  raw REPL's `\\x04` framing pass untouched).
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
- Input is never lost across a restart: bytes the old VM did not read (the bridge keeps its
  own handle on each VM's pty, so they survive the VM) and bytes sent while the new VM
  boots reach the new VM once it is at its prompt. After a raw-REPL program's end markers
  the bridge waits for the VM's next prompt (or its exit) before passing input on, so a
  Ctrl-C meant for the next command can't hit a VM that is exiting. Likewise after a line
  (or Ctrl-A) typed at the friendly prompt: the unix port flushes its tty's input as it
  switches mode to run the line, and a board's UART loses nothing that way.
- Ctrl-C while code runs reaches the VM as SIGINT -> KeyboardInterrupt because the VM's pty
  is its controlling terminal with ISIG on (the unix REPL turns ISIG off only while it
  reads a line).

Booting is a state of the bridge, not a wait inside it: a booting board takes no input (the
client's bytes stay queued and reach the VM once it is at its prompt), answers as soon as
it is booted however long that takes, and a VM that never boots leaves the bridge serving
RUN-pin resets and stop(). The bridge never blocks on either side: output for a client that
doesn't read waits in a bounded queue (then the VM waits, as a board whose host stops
reading), input for a VM that doesn't read waits in another.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import subprocess
import termios
import threading
import time
import tty
from pathlib import Path

from harness.children import die_with_parent
from harness.sim.firmware import Firmware
from harness.sim.tempdirs import owned_temp_dir

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
RAW_PROMPT = RAW_BANNER + b">"
SOFT_REBOOT = b"MPY: soft reboot\r\n"
BOOT_TIMEOUT_S = 5.0  # start() gives up on a first boot this slow; a reboot this slow is noted
END_HOLD_S = 0.5      # after a raw program's end markers, input waits this long for the prompt
LINE_HOLD_S = 1.0     # after a line (or Ctrl-A) at the friendly prompt, input waits this long
PORT_AWAY_S = 0.2     # a hard reset takes the port away at least this long (re-enumeration)
PORT_RECLAIM_S = 3.0  # ... and brings it back under its old name if that is free by then
SIGINT_FOLD_S = 0.05  # Ctrl-Cs this close together reach the VM as one SIGINT ...
SIGINT_RETRY_S = 0.3  # ... unless its program still runs this long after: then a second
OUT_LIMIT = 1 << 16   # client output queued beyond this: stop reading the VM (back-pressure)
ENV_CTL_FD = "TSFRIG_BOARD_CTL_FD"  # machine.reset() writes b"H" here: a hard reset
INFO_UF2 = "INFO_UF2.TXT"  # what a UF2 bootloader's volume holds (the flasher looks for it)


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


def _read_all(fd: int) -> bytes:
    """Whatever a non-blocking fd has now."""
    out = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return out
        except OSError:
            return out
        if not data:
            return out
        out += data


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class _VM:
    """One VM process and the bridge's handles on it: its pty master, the bridge's own
    handle on the pty slave (input the VM never read survives the VM), a pidfd that is
    readable once the process has exited, and the read end of its control pipe."""

    def __init__(self, firmware: Firmware, cwd: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        _raw_with_isig(slave)
        ctl_r, ctl_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [str(firmware.executable)], stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                env={**env, ENV_CTL_FD: str(ctl_w)}, preexec_fn=_make_controlling_tty,
                close_fds=True, pass_fds=(ctl_w,))
        except OSError as e:
            for fd in (master, slave, ctl_r, ctl_w):
                os.close(fd)
            raise BoardError(f"cannot start {firmware.executable}: {e}") from None
        os.close(ctl_w)
        # The bridge's own handle on the slave: its own open file, so that being non-blocking
        # doesn't make the VM's stdin non-blocking too.
        self.slave = os.open(os.ttyname(slave), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        os.close(slave)
        self.master, self.ctl = master, ctl_r
        self.pidfd = os.pidfd_open(self.proc.pid)
        for fd in (master, ctl_r):
            os.set_blocking(fd, False)
        self.hard_reset_requested = False
        self.bootloader_requested = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def isig(self) -> bool:
        try:
            return bool(termios.tcgetattr(self.slave)[3] & termios.ISIG)
        except (OSError, termios.error):
            return True

    def read_control(self) -> None:
        """Take the VM's requests; at end of file (the VM closed its end, or exited) stop
        listening."""
        while self.ctl >= 0:
            try:
                data = os.read(self.ctl, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                os.close(self.ctl)
                self.ctl = -1
                return
            if b"H" in data:
                self.hard_reset_requested = True
            if b"B" in data:
                self.bootloader_requested = True

    def unread_input(self) -> bytes:
        """Client bytes the VM never read (they wait in its pty's input queue)."""
        return _read_all(self.slave)

    def kill(self) -> int:
        """Kill its process group (if still running), reap it, close every handle; its exit
        status (negative: killed by that signal)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # unkillable (uninterruptible sleep): let it be
            rc = -signal.SIGKILL
        for fd in (self.master, self.slave, self.ctl, self.pidfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = self.slave = self.ctl = self.pidfd = -1
        return rc


class VirtualBoard:
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
        self._vm: _VM | None = None
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

    # ---- the client's port -----------------------------------------------------------------
    def _adopt_port(self, master: int, slave: int) -> None:
        tty.setraw(slave)  # kept open so the master never sees a hang-up
        os.set_blocking(master, False)
        self._client_fd, self._client_slave = master, slave
        self.port = os.ttyname(slave)

    def _drop_port(self) -> None:
        """The device vanishes: clients' handles on it fail from now on."""
        for fd in (self._client_fd, self._client_slave):
            if fd >= 0:
                os.close(fd)
        self._client_fd = self._client_slave = -1
        self._out.clear()

    def _port_step(self, now: float) -> None:
        """While the port is away: once the minimum time is up, bring it back under its old
        name as soon as that is free (a client still holding the old device keeps it busy,
        as with a USB board); past the reclaim time take whatever name comes."""
        if now < self._away_until:
            return
        give_up = now >= self._reclaim_until
        tried: list[tuple[int, int]] = []
        found = None
        try:
            for _ in range(64):  # ptys take the lowest free number: walk up to the old one
                m, s = os.openpty()
                if os.ttyname(s) == self._away_name or give_up:
                    found = (m, s)
                    break
                tried.append((m, s))
        except OSError:
            pass
        for m, s in tried:
            os.close(m)
            os.close(s)
        if found is None:
            return
        self._away_name = ""
        self._adopt_port(*found)
        if self._run_level:
            self._boot(raw=False)

    # ---- the VM ----------------------------------------------------------------------------
    def _boot(self, raw: bool) -> None:
        """Start a fresh VM and enter the booting state; the bridge finishes the boot (its
        prompt, then the raw REPL's for a soft reboot) without blocking (bridge thread only)."""
        self._kill_vm()
        env = dict(os.environ, MICROPYPATH=self.firmware.micropypath(self.flash_dir),
                   **self.env_extra)
        try:
            self._vm = _VM(self.firmware, self.flash_dir, env)
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
        last = _read_all(vm.master)
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
            why = _signal_name(rc)
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

    def _drop_step(self) -> None:
        """In the bootloader: an image copied to the volume (its size and mtime unchanged
        since the last look: the copy is complete) becomes the firmware; the volume goes,
        the board boots it and its port comes back."""
        try:
            files = [f for f in self.drop_dir.iterdir() if f.name != INFO_UF2 and f.is_file()]
        except OSError:
            files = []
        if not files:
            return
        f = files[0]
        st = f.stat()
        seen = (f.name, st.st_size, st.st_mtime_ns)
        if seen != self._drop_seen or not st.st_size:
            self._drop_seen = seen
            return
        data = f.read_bytes()
        shutil.rmtree(self.drop_dir, ignore_errors=True)  # the volume unmounts
        self._in_bootloader = False
        if data.startswith(b"#!"):  # else not an image for this board: the old one boots
            if self._image_dir is None:
                self._image_dir = owned_temp_dir("vb-images")  # swept if we are SIGKILLed
            image = self._image_dir / f"image-{self.reboots}"
            image.write_bytes(data)
            image.chmod(0o755)
            self.firmware = Firmware(image, self.firmware.overlay)
        now = time.monotonic()
        self._away_until, self._reclaim_until = now, now + PORT_RECLAIM_S

    def _soft_reboot_raw(self) -> None:
        """Ctrl-D at an empty raw REPL: OK, the soft reboot banner, back in the raw REPL."""
        self._kill_vm()
        self.reboots += 1
        self.resets.append(("soft", "Ctrl-D"))
        self._send(b"OK\r\n" + SOFT_REBOOT)
        self._boot(raw=True)

    # ---- the bridge ------------------------------------------------------------------------
    def _takes_input(self, now: float) -> bool:
        if self._hold_until and now >= self._hold_until:
            self._hold_until = 0.0  # no prompt came: the program's own \x04s, pass input on
            self._prompt_hold = False
        return self._vm is None or (self._boot_wait is None and not self._hold_until)

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

    def _serve_vm(self, vm: _VM, r: list[int], w: list[int]) -> None:
        if vm.master in r:
            data = _read_all(vm.master)
            if data and self._boot_wait is not None:
                self._boot_step(data)
            elif data:
                self._from_vm(data)
        if self._vm is vm and vm.ctl in r:
            vm.read_control()
            if vm.hard_reset_requested or vm.bootloader_requested:
                self._from_vm(_read_all(vm.master))
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

    # ---- output: VM -> client ----------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self._client_fd < 0 or not data:
            return
        self._out += data
        self._flush_out()

    def _flush_out(self) -> None:
        while self._out:
            try:
                n = os.write(self._client_fd, self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._out.clear()
                return
            del self._out[:n]

    def _cook(self, data: bytes) -> bytes:
        """A lone \\n becomes \\r\\n, as a bare-metal port's cooked stdout sends it (a \\r\\n
        the VM sends itself stays one)."""
        if not data:
            return data
        lead = b""
        if self._last_cr and data[:1] == b"\n":
            lead, data = b"\n", data[1:]
        self._last_cr = data.endswith(b"\r")
        return lead + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def _from_vm(self, data: bytes) -> None:
        if self._hold_until and not self._prompt_hold:
            self._hold_until = 0.0  # the VM spoke again: its prompt or more output
        head = b""
        if self._verbatim:  # the raw-paste header: binary, passed as it is
            head, data = data[:self._verbatim], data[self._verbatim:]
            self._verbatim -= len(head)
            self._paste_hdr += head
            if self._paste_hdr[:2] == b"R\x00":  # no raw-paste here: the client falls back
                head, data = b"R\x00", self._paste_hdr[2:] + data
                self._verbatim = self._paste_state = self._eofs_due = 0
            elif not self._verbatim and self._paste_hdr[:2] == b"R\x01":
                self._paste_window = self._paste_hdr[2] | self._paste_hdr[3] << 8
            self._last_cr = False
        if self._paste_window:  # the VM's own flow-control credits: the bridge gives them
            end = data.find(b"\x04")
            if end < 0:
                data = data.replace(b"\x01", b"")
            else:  # the paste ended (or the VM cut it short)
                data = data[:end].replace(b"\x01", b"") + data[end:]
                self._paste_window = 0
        ended_here = False
        if self._eofs_due:
            for i, b in enumerate(data):
                if b == 0x04:
                    self._eofs_due -= 1
                    if not self._eofs_due:
                        ended_here = i == len(data) - 1
                        break
        self._send(head + self._cook(data))
        self._tail = (self._tail + head + data)[-64:]
        if self._tail.endswith(RAW_PROMPT) or self._tail.endswith(b"\x04>"):
            self._raw, self._raw_empty = True, True
            self._pasted_code_runs = False
            self._eofs_due = 0
            self._hold_until, self._prompt_hold = 0.0, False
        elif self._tail.endswith(b">>> "):
            self._raw = self._raw_empty = self._pasted_code_runs = False
            self._eofs_due = 0
            self._hold_until, self._prompt_hold = 0.0, False
        elif self._prompt_hold and self._tail.endswith(b"... "):  # the line goes on
            self._hold_until, self._prompt_hold = 0.0, False
        elif ended_here:  # the program ended: its prompt, or its exit, comes next
            self._hold_until = time.monotonic() + END_HOLD_S

    # ---- input: client -> VM -----------------------------------------------------------------
    def _passes(self, b: int, mode: str | None) -> bool:
        """Newlines in REPL input as a board takes them. The unix port's REPL input turns every
        \\n into \\r, so a client's \\r\\n would be two newlines where a board's lexer (raw
        REPL code) and line editor (friendly REPL lines and input(); \\n\\r too) see one: the
        second byte of such a pair is dropped. A program's own reads of sys.stdin are not
        touched (in the friendly REPL: the VM's line editor is not reading, its tty has ISIG
        on)."""
        prev, self._nl_prev = self._nl_prev, 0
        if b not in (0x0A, 0x0D):
            return True
        if prev == 0x0D and b == 0x0A or prev == 0x0A and b == 0x0D and self._nl_line:
            return False
        if mode is not None:
            self._nl_prev, self._nl_line = b, mode == "line"
        return True

    def _from_client(self, data: bytes) -> None:
        out = bytearray()
        line_editing = not self._raw and self._vm is not None and not self._vm.isig()
        for i, b in enumerate(data):
            if self._raw and self._paste_state == 3:
                if b == 0x04:
                    self._paste_state = 0
                    self._pasted_code_runs = True
                    self._nl_prev = 0
                    out.append(b)
                    continue
                self._paste_rx += 1  # credit the client as the VM would for every byte sent
                if self._paste_window and not self._paste_rx % self._paste_window:
                    self._send(b"\x01")
                if self._passes(b, "code"):
                    out.append(b)
                continue
            if b == 0x03 and self._pasted_code_runs and self._interrupt_vm():
                continue
            if self._raw and self._raw_empty and b == 0x04:
                self._soft_reboot_raw()
                self._held = data[i + 1:]  # the rebooting board takes these once booted
                return
            if self._raw:
                mode = "code" if not self._eofs_due and not self._pasted_code_runs else None
            else:
                mode = "line" if line_editing else None
            if not self._passes(b, mode):
                continue
            if self._raw and self._raw_empty and b == 0x05:
                self._paste_state = 1
            elif self._paste_state == 1 and b == ord("A"):
                self._paste_state = 2
            elif self._paste_state == 2 and b == 0x01:
                self._paste_state = 3
                self._raw_empty = False
                self._eofs_due = 3  # paste end acknowledged, then stdout's and stderr's ends
                self._verbatim = 5  # "R\x01", the 16-bit window size, the first credit
                self._paste_hdr, self._paste_window, self._paste_rx = b"", 0, 0
            else:
                self._paste_state = 0
                if b == 0x02:
                    self._raw = False
                elif self._raw and b == 0x03:
                    self._raw_empty = True  # the raw REPL clears its line
                elif self._raw and b == 0x04:  # a program submitted: OK, output, \x04, \x04
                    self._eofs_due = 2
                    self._raw_empty = False
                elif b != 0x01:
                    self._raw_empty = False
            out.append(b)
            if line_editing and b in (0x01, 0x0A, 0x0D):
                # The unix port flushes its tty's input (TCSAFLUSH) as it switches mode to run
                # a line or enter the raw REPL, which a board's UART never does: the rest
                # waits for its next prompt (else a Ctrl-A typed after a line is lost).
                self._later = data[i + 1:] + self._later
                self._hold_until, self._prompt_hold = time.monotonic() + LINE_HOLD_S, True
                break
        self._to_vm += out
        self._flush_to_vm()

    def _flush_to_vm(self) -> None:
        vm = self._vm
        while self._to_vm and vm is not None and self._boot_wait is None:
            try:
                n = os.write(vm.master, self._to_vm)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            del self._to_vm[:n]

    def _interrupt_vm(self) -> bool:
        """Ctrl-C while raw-paste code runs. The unix port leaves its tty's ISIG off then, so
        the byte would reach the program's stdin instead of interrupting it, which no board
        does; deliver it as the SIGINT the tty would have sent."""
        vm = self._vm
        if vm is None or vm.isig():
            return False
        now = time.monotonic()
        if now - self._last_sigint >= SIGINT_FOLD_S:  # "\x03\x03" is one interrupt, not two
            self._last_sigint = now
            try:
                os.kill(vm.pid, signal.SIGINT)
            except ProcessLookupError:
                return False
        else:  # a board would take this one too, if the first was lost (code not yet running)
            self._sigint_again_at = self._last_sigint + SIGINT_RETRY_S
        return True

    def _sigint_again(self, now: float) -> None:
        """A folded Ctrl-C whose program still runs long after the first: the VM got the
        first before its handler was in place, so this one is a real second interrupt."""
        if not self._sigint_again_at or now < self._sigint_again_at:
            return
        self._sigint_again_at = 0.0
        vm = self._vm
        if vm is not None and self._pasted_code_runs and not vm.isig():
            self._last_sigint = now
            with contextlib.suppress(ProcessLookupError):
                os.kill(vm.pid, signal.SIGINT)

