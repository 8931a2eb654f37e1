"""One MicroPython VM process of the virtual board (harness/sim/board.py): started on a pty
that is its controlling terminal (so Ctrl-C is SIGINT), with a control pipe for the resets
it asks for and a pidfd that says when it has exited."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import termios
import tty
from pathlib import Path

from harness.children import die_with_parent
from harness.sim.firmware import Firmware

ENV_CTL_FD = "TSFRIG_BOARD_CTL_FD"  # machine.reset() writes b"H" here: a hard reset


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


def read_all(fd: int) -> bytes:
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


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class VM:
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
        return read_all(self.slave)

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
