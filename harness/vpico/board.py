"""The virtual Pico's serial side: the Node board process (board.mjs, rp2040js running a UF2)
and the pty that mpremote, pyserial and the harness open like a USB Pico's port.

The Node process's stdin carries the host's serial bytes in frames stamped with the Pi's
clock when the bridge read them (SERIAL_HEADER), so the board reads them no earlier than
that: after every edge and tick the host had seen before writing them. Its stdout is the
board's serial bytes as they come, its stderr one-line events
("vpico: boot (RUN pin)"). A bridge thread copies pty <-> Node without blocking either way:
what one side has not read yet waits in memory, so no byte is lost in either direction (the
board's own USB reads pace its input, board.mjs). When the chip resets (machine.reset(), the
RUN pin, the bootloader) the port goes away, as a USB Pico's does, and comes back under its old
name (unless a client still holds that) once the new chip's USB is up.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from harness.children import die_with_parent, stop_child
from harness.sim.client_port import reopen_pty
from harness.vpico.node import VPicoError, board_dir, node_executable

ENV_BOOTROM = "TSFRIG_VPICO_BOOTROM"  # the RP2040 bootrom (16 KiB) the emulator runs
BOOT_TIMEOUT_S = 20.0
SERIAL_HEADER = struct.Struct("<cxHII")  # b"S", stamp µs (high 16, low 32 bits), length
PORT_AWAY_S = 0.2  # a reset takes the port away at least this long (re-enumeration)
PORT_RECLAIM_S = 3.0  # ... and brings it back under its old name if that is free by then
# board.mjs events that take the USB device away, and the one that brings it back
GONE = ("held in reset", "boot (machine.reset())", "bootloader (")
BACK = "usb connected"


def bootrom_path() -> Path:
    """The RP2040 bootrom image, which the project can't ship: the user names it."""
    path = os.environ.get(ENV_BOOTROM)
    if not path:
        raise VPicoError(f"vpico needs the RP2040 bootrom (16 KiB, B1 or later): set "
                         f"{ENV_BOOTROM}=/path/to/bootrom.bin")
    if not Path(path).is_file():
        raise VPicoError(f"{ENV_BOOTROM}={path} does not exist; give the RP2040 bootrom image")
    return Path(path)


class NodeBoard:
    """Runs board.mjs and bridges its serial bytes to a pty."""

    def __init__(self, image: Path, wire_port: int, drop_dir: Path,
                 control: socket.socket, stamp: Callable[[], int]) -> None:
        """control: the board's end of the clock's socket pair (fd 3 in board.mjs); stamp:
        the Pi's clock in µs (the horizon), for the serial bytes the host writes."""
        self.image, self.wire_port, self.drop_dir = image, wire_port, drop_dir
        self.control, self.stamp = control, stamp
        self.uid = "0" * 16  # the flash chip's unique ID, hex (machine.unique_id())
        self.proc: subprocess.Popen | None = None
        self.port = ""
        self.events: list[tuple[float, str]] = []  # (monotonic s, event line) from board.mjs
        self._event = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._master = self._slave = -1
        self._drop_requested = False
        self._away_since = 0.0  # the port is gone since (monotonic s); 0: it is there
        self._usb_up = False
        self.started_at = 0.0

    def start(self) -> NodeBoard:
        node, where, rom = node_executable(), board_dir(), bootrom_path()
        if not self.image.is_file():
            raise VPicoError(f"firmware.image {self.image} does not exist; give an RPI_PICO "
                             ".uf2 (firmware.image or --firmware)")
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # kept open so the master never sees a hang-up
        self.port = os.ttyname(self._slave)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [node, str(where / "board.mjs"), "--uf2", str(self.image), "--bootrom", str(rom),
             "--wire", str(self.wire_port), "--drop", str(self.drop_dir),
             "--uid", self.uid],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=self._in_child, pass_fds=(self.control.fileno(), 3), cwd=where)
        self.control.close()  # the child has it
        for fn in (self._bridge, self._read_events):
            t = threading.Thread(target=fn, daemon=True, name=f"vpico-{fn.__name__}")
            t.start()
            self._threads.append(t)
        return self

    def _in_child(self) -> None:
        """In the board process before exec: die with us, the control socket on fd 3."""
        die_with_parent()
        os.dup2(self.control.fileno(), 3)

    def wait_event(self, pattern: str, timeout_s: float, since: int = 0) -> str | None:
        """The first event line from index `since` on that contains pattern; None if the board
        process exits or the time runs out first."""
        deadline = time.monotonic() + timeout_s
        with self._event:
            while True:
                for _, line in self.events[since:]:
                    if pattern in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc is None or self.proc.poll() is not None:
                    return None
                self._event.wait(min(left, 0.2))

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the board's USB is up and its port is there (after a reset, say)."""
        deadline = time.monotonic() + timeout_s
        while not (self._usb_up and not self._away_since and not self._drop_requested):
            if time.monotonic() >= deadline or self.proc is None or self.proc.poll() is not None:
                return False
            time.sleep(0.02)  # polling two flags the bridge and event threads set
        return True

    def last_error(self) -> str:
        return self.events[-1][1] if self.events else "no output"

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None:
            stop_child(self.proc)
        for t in self._threads:
            t.join(timeout=3)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr) if self.proc else ():
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        for fd in (self._master, self._slave):  # the bridge thread has stopped
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        self.proc = None

    # ---- threads --------------------------------------------------------------------------
    def _read_events(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if os.environ.get("TSFRIG_VPICO_LOG"):
                print(line, file=sys.stderr, flush=True)
            if any(g in line for g in GONE):
                self._usb_up = False
                self._drop_port()
            elif BACK in line:
                self._usb_up = True
            with self._event:
                self.events.append((time.monotonic(), line))
                self._event.notify_all()
        with self._event:
            self._event.notify_all()

    def _drop_port(self) -> None:
        """The USB device vanishes (any thread): the bridge closes the port, so clients'
        handles on it fail from then on (the bridge thread alone owns its fds)."""
        self._drop_requested = True

    def _close_port(self) -> None:
        """Closing the master hangs up every client; our own handle on the slave keeps the
        pty's number from being taken by another program until the port comes back."""
        if self._master >= 0:
            os.close(self._master)
        self._master = -1
        self._away_since = time.monotonic()

    def _port_back(self) -> None:
        """Once the new chip's USB is up: the port under its old name as soon as that is free
        (a client still holding the old device keeps it busy), past PORT_RECLAIM_S any name."""
        away = time.monotonic() - self._away_since
        if not self._usb_up or away < PORT_AWAY_S:
            return
        if self._slave >= 0:  # free the old number just before taking it again
            os.close(self._slave)
            self._slave = -1
        walk = int(self.port.rsplit("/", 1)[-1]) + 2 if self.port[-1:].isdigit() else 64
        found = reopen_pty(self.port, away >= PORT_RECLAIM_S, min(walk, 4096))
        if found is not None:
            self._master, self._slave = found
            tty.setraw(self._slave)
            os.set_blocking(self._master, False)
            self.port = os.ttyname(self._slave)
            self._away_since = 0.0

    def _bridge(self) -> None:
        """pty -> Node stdin and Node stdout -> pty, each side's backlog kept in memory
        (output made while the port is away is lost, as a USB device's is)."""
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        to_node, to_client = bytearray(), bytearray()
        node_in, node_out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(node_in, False)
        os.set_blocking(self._master, False)
        while not self._stop.is_set():
            if self._drop_requested:
                self._drop_requested = False
                self._close_port()
            if self._away_since:
                self._port_back()
                to_client.clear()
            master = self._master
            rd = [node_out] + ([master] if master >= 0 else [])
            wr = ([node_in] if to_node else []) + \
                ([master] if to_client and master >= 0 else [])
            try:
                r, w, _ = select.select(rd, wr, [], 0.05)
                if master in r:
                    try:
                        data = os.read(master, 65536)
                    except BlockingIOError:
                        data = b""
                    if data:
                        us = self.stamp()
                        to_node += SERIAL_HEADER.pack(b"S", us >> 32, us & 0xFFFFFFFF,
                                                      len(data)) + data
                if node_out in r:
                    data = os.read(node_out, 65536)
                    if not data:
                        return  # the board process is gone
                    if not self._away_since:
                        to_client += data
                if node_in in w and to_node:
                    del to_node[: os.write(node_in, to_node)]
                if master in w and to_client:
                    try:
                        del to_client[: os.write(master, to_client)]
                    except BlockingIOError:
                        pass
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # EIO from a port no client holds: try again
