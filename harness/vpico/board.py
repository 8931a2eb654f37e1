"""The virtual Pico's serial side: the Node board process (board.mjs, rp2040js running a UF2)
and the pty that mpremote, pyserial and the harness open like a USB Pico's port.

The Node process's stdin/stdout are the USB-CDC bytes, its stderr one-line events
("vpico: boot (RUN pin)"). A bridge thread copies pty <-> Node without blocking either way:
what one side has not read yet waits in memory, so no byte is lost in either direction (the
board's own USB reads pace its input, board.mjs). The port keeps its name for the bench's life,
also across resets (a USB Pico re-enumerates; a client reopens it).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

from harness.children import die_with_parent, stop_child

HERE = Path(__file__).resolve().parent
MIN_NODE = 18
ENV_NODE = "TSFRIG_NODE"  # the node executable (default: `node` on PATH)
ENV_BOOTROM = "TSFRIG_VPICO_BOOTROM"  # the RP2040 bootrom (16 KiB) the emulator runs
BOOT_TIMEOUT_S = 20.0


class VPicoError(Exception):
    """The virtual Pico could not be brought up (a bench fault): the message says why and
    what to do."""


def node_executable() -> str:
    """The Node to run board.mjs with: Node >= 18 with rp2040js installed beside board.mjs."""
    node = os.environ.get(ENV_NODE) or shutil.which("node")
    if not node:
        raise VPicoError(f"vpico needs Node >= {MIN_NODE}: none on PATH; install Node.js "
                         f"(or set {ENV_NODE})")
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise VPicoError(f"vpico: {node} --version failed ({e}); install Node >= {MIN_NODE}") \
            from None
    m = re.match(r"v(\d+)\.", out)
    if not m or int(m.group(1)) < MIN_NODE:
        raise VPicoError(f"vpico needs Node >= {MIN_NODE}, {node} is {out or 'unknown'}; "
                         "install a newer Node.js")
    if not (HERE / "node_modules" / "rp2040js" / "package.json").is_file():
        raise VPicoError("vpico: rp2040js is not installed; run `make vpico` (npm ci in "
                         "harness/vpico)")
    return node


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
                 control: socket.socket) -> None:
        """control: the board's end of the clock's socket pair (fd 3 in board.mjs)."""
        self.image, self.wire_port, self.drop_dir = image, wire_port, drop_dir
        self.control = control
        self.proc: subprocess.Popen | None = None
        self.port = ""
        self.events: list[tuple[float, str]] = []  # (monotonic s, event line) from board.mjs
        self._event = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._master = self._slave = -1
        self.started_at = 0.0

    def start(self) -> NodeBoard:
        node, rom = node_executable(), bootrom_path()
        if not self.image.is_file():
            raise VPicoError(f"firmware.image {self.image} does not exist; give an RPI_PICO "
                             ".uf2 (firmware.image or --firmware)")
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # kept open so the master never sees a hang-up
        self.port = os.ttyname(self._slave)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [node, str(HERE / "board.mjs"), "--uf2", str(self.image), "--bootrom", str(rom),
             "--wire", str(self.wire_port), "--drop", str(self.drop_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=self._in_child, pass_fds=(self.control.fileno(), 3), cwd=HERE)
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
        for fd in (self._master, self._slave):
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
            with self._event:
                self.events.append((time.monotonic(), line))
                self._event.notify_all()
        with self._event:
            self._event.notify_all()

    def _bridge(self) -> None:
        """pty -> Node stdin and Node stdout -> pty, each side's backlog kept in memory."""
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        to_node, to_client = bytearray(), bytearray()
        node_in, node_out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        os.set_blocking(node_in, False)
        os.set_blocking(self._master, False)
        while not self._stop.is_set():
            rd = [self._master, node_out]
            wr = ([node_in] if to_node else []) + ([self._master] if to_client else [])
            try:
                r, w, _ = select.select(rd, wr, [], 0.2)
                if self._master in r:
                    try:
                        to_node += os.read(self._master, 65536)
                    except BlockingIOError:
                        pass
                if node_out in r:
                    data = os.read(node_out, 65536)
                    if not data:
                        return  # the board process is gone
                    to_client += data
                if node_in in w and to_node:
                    del to_node[: os.write(node_in, to_node)]
                if self._master in w and to_client:
                    try:
                        del to_client[: os.write(self._master, to_client)]
                    except BlockingIOError:
                        pass
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # e.g. EIO while no client has the pty open
