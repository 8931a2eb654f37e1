"""One virtual-Pico bench: the simulated Pi (pigpiod's and rgpiod's protocols, harness/sim)
wired to a virtual Pico (rp2040js running the real rp2 firmware, board.py/board.mjs).

The Pi is the sim's own SimPi: the same protocol code, the same board wire (wire.py). Only
the far end of the wire differs: the Node board applies each edge when its emulated clock
reaches the edge's tick and stamps the board's own edges in emulated time. Both clocks count
CLOCK_MONOTONIC microseconds and the emulator never runs ahead of the host (board.mjs), so an
edge's tick is the emulated instant it happened on either side.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness.benches.sim import announce
from harness.config import TargetConfig
from harness.sim import pigpiod, pigpiod_protocol, rgpiod, wire
from harness.sim.bench import ENV_DROP_DIR, board_pin_number
from harness.sim.pigpiod import SimPi
from harness.sim.rgpiod import SimRgpiod
from harness.vpico.board import BOOT_TIMEOUT_S, NodeBoard, VPicoError
from harness.vpico.clock import CTRL, REPORT, EmulatedClock, unpack

# every module of the simulated Pi that reads time through its `clock` (a waveform, an edge's
# tick, a settle timer): all of them follow the emulator while a vpico runs, or the Pi's
# waveforms run on wall time and never reach the board (tests/sim/test_vpico.py holds the list)
CLOCK_READERS = (pigpiod, pigpiod_protocol, rgpiod)

RUN_PIN = 255  # the wire's pin number for the RUN line (wire.mjs)
ENV_UF2 = "TSFRIG_VPICO_UF2"  # the image when the target names none (tests, people)


def image_for(target: TargetConfig) -> Path:
    """The UF2 to run: firmware.image, else $TSFRIG_VPICO_UF2."""
    if target.firmware.image is not None:
        return Path(target.firmware.image)
    env = os.environ.get(ENV_UF2)
    if env:
        return Path(env)
    raise VPicoError(f"target {target.name}: a vpico needs an RPI_PICO .uf2: set "
                     f"firmware.image, pass --firmware IMAGE.uf2 or set {ENV_UF2}")


class VPi(SimPi):
    """The simulated Pi with a waveform engine for a board on stamped time: a waveform's edges
    all go down the wire at once, stamped (under the GPIO lock, so no grant of the horizon can
    come between them), and the board applies each at its tick. Playing them out in wall time
    instead would cost a host round trip per edge. The wave stays busy until the board's time
    has reached its end, as pigpio's does until the last edge is out. (A halted wave has
    already reached the board in full.)"""

    def _play(self, pulses: list[tuple[int, int, int]]) -> None:
        with self.lock:
            due = pigpiod.clock.now_us() + 50
            for on, off, delay in pulses:
                for g in range(32):
                    if on & (1 << g):
                        self._set_level(g, 1, due)
                    elif off & (1 << g):
                        self._set_level(g, 0, due)
                due += delay
            self._wave_due = due
        while pigpiod.clock.now_us() < due and not self._wave_stop.wait(0.001):
            pass


class VPicoBench:
    """Starts and stops the simulated Pi and the virtual Pico as one unit."""

    def __init__(self, target: TargetConfig, pigpio_port: int = 0, rgpio_port: int = 0,
                 drop_dir: Path | None = None) -> None:
        w = target.wiring
        self.target = target
        if target.gpio.backend != "pigpio":  # rgpio's client maps kernel timestamps to host
            # wall time, which the emulated clock does not follow (it slows with a busy board)
            raise VPicoError(f"target {target.name}: a vpico is driven through gpio.backend "
                             f"pigpio only, not {target.gpio.backend}; remove gpio.backend")
        self.image = image_for(target)
        wiring = [(w.stimulus.pi_gpio, board_pin_number(w.stimulus.board_pin), "to_board"),
                  (w.ack.pi_gpio, board_pin_number(w.ack.board_pin), "from_board")]
        if w.reset is not None:
            wiring.append((w.reset.pi_gpio, -1, "reset"))
        if w.stimulus_sense is not None:
            wiring.append((w.stimulus_sense, w.stimulus.pi_gpio, "sense"))
        self._tmp = Path(tempfile.mkdtemp(prefix=f"tsfrig-{target.name}-"))
        env_drop = os.environ.get(ENV_DROP_DIR)  # as the sim board's: a volume flash.volume finds
        self.drop_dir = drop_dir or (Path(env_drop) if env_drop else self._tmp / "RPI-RP2")
        self._ctrl, self._board_ctrl = socket.socketpair()  # board.mjs's clock reports
        self.pi = VPi(wiring=wiring, port=pigpio_port, on_reset_line=self._run_pin)
        self.rgpiod = SimRgpiod(self.pi, port=rgpio_port)
        self.clock = EmulatedClock(time.monotonic_ns() // 1000, self.pi._send_board,
                                   self.pi.lock)
        self._clocks = [m.clock for m in CLOCK_READERS]
        for m in CLOCK_READERS:
            m.clock = self.clock  # the Pi's time is the emulator's
        self.board: NodeBoard | None = None
        self.boot_s = 0.0  # wall time from starting the board process to its USB serial

    def start(self) -> VPicoBench:
        self.pi.start()
        try:
            self.rgpiod.start()
            self.board = NodeBoard(self.image, self.pi.wire_port, self.drop_dir,
                                   self._board_ctrl, self.clock.grant)
            # a board's own ID, the same for the target every run (several vpicos differ)
            self.board.uid = hashlib.sha256(self.target.name.encode()).hexdigest()[:16]
            self.board.start()
            self.clock.start()
            threading.Thread(target=self._read_reports, daemon=True,
                             name="vpico-reports").start()
            if self.board.wait_event("usb connected", BOOT_TIMEOUT_S) is None:
                raise VPicoError(f"the virtual Pico did not bring up its USB serial within "
                                 f"{BOOT_TIMEOUT_S:g} s: {self.board.last_error()}")
            self.boot_s = time.monotonic() - self.board.started_at
            if self.target.firmware.overlay:
                install_overlay(self.board.port, Path(self.target.firmware.overlay))
        except BaseException:
            self.stop()
            raise
        return self

    def _read_reports(self) -> None:
        """The emulator's clock as board.mjs reports it: the horizon may follow."""
        buf = b""
        while True:
            try:
                data = self._ctrl.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= CTRL.size:
                kind, us = unpack(buf[:CTRL.size])
                buf = buf[CTRL.size:]
                if kind == REPORT:
                    self.clock.board_reported(us)
                    self.clock.grant()  # at once: a busy board waits for no timer

    def _run_pin(self, level: int) -> None:
        """The Pi drove the RUN line: the board.mjs end holds or releases the chip at the
        edge's tick, like any other edge."""
        self.pi._send_board(wire.encode(wire.EDGE, RUN_PIN, level, self.clock.tick()))

    @property
    def serial_port(self) -> str:
        assert self.board is not None
        return self.board.port

    @property
    def gpio_addresses(self) -> dict[str, tuple[str, int]]:
        return {"pigpio": ("127.0.0.1", self.pi.port), "rgpio": ("127.0.0.1", self.rgpiod.port)}

    def stop(self) -> None:
        if self.board is not None:
            self.board.stop()
            self.board = None
        self.rgpiod.stop()
        self.pi.stop()
        self.clock.stop()
        self._ctrl.close()
        self._board_ctrl.close()
        for m, c in zip(CLOCK_READERS, self._clocks, strict=True):
            m.clock = c
        import shutil

        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> VPicoBench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def install_overlay(port: str, overlay: Path) -> list[str]:
    """Put the overlay's modules in the board's filesystem root, ahead of the frozen ones on
    rp2 (sys.path is ['', '.frozen', '/lib']); they stay there for the bench's life, as in
    flash. Returns the paths written."""
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    files = sorted(f for f in overlay.rglob("*") if f.is_file() and f.suffix in (".py", ".mpy"))
    if not files:
        raise VPicoError(f"overlay {overlay} has no .py or .mpy modules; give the directory "
                         "that holds the replacement modules (e.g. an asyncio/ package)")
    t = SerialTransport(port, 115200, timeout=2.0)
    written = []
    try:
        t.enter_raw_repl(soft_reset=True, timeout_overall=20)
        for d in sorted({f.parent.relative_to(overlay) for f in files} - {Path(".")}):
            for part in [*reversed(d.parents[:-1]), d]:
                try:
                    t.fs_mkdir(part.as_posix())
                except TransportError:
                    pass  # already there
        for f in files:
            dest = f.relative_to(overlay).as_posix()
            t.fs_writefile(dest, f.read_bytes())
            written.append(dest)
        t.exit_raw_repl()
    except TransportError as e:
        raise VPicoError(f"could not put the overlay {overlay} on the virtual Pico: {e}") \
            from None
    finally:
        t.close()
    return written


def serve(target: TargetConfig, pigpio_port: int = 0, rgpio_port: int = 0) -> int:
    """Run one vpico bench until Ctrl-C or SIGTERM; print where to connect (as `tsfrig sim`)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with VPicoBench(target, pigpio_port=pigpio_port, rgpio_port=rgpio_port) as bench:
        ov = target.firmware.overlay
        announce(bench.serial_port, bench.gpio_addresses, f"{bench.image} (rp2040js)"
                 + (f" + overlay {ov}" if ov else ""), sys.stdout)
        print(f"uf2-drop: {bench.drop_dir}", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            if bench.board is None or bench.board.proc is None or \
                    bench.board.proc.poll() is not None:
                print(f"the virtual Pico's board process exited: "
                      f"{bench.board.last_error() if bench.board else ''}", file=sys.stderr)
                return 2
    print("stopped", file=sys.stderr, flush=True)
    return 0


def serve_or_die(target: TargetConfig, pigpio_port: int = 0, rgpio_port: int = 0) -> int:
    """`tsfrig sim` for a vpico target: a bench that can't start is one line and exit 2."""
    try:
        return serve(target, pigpio_port=pigpio_port, rgpio_port=rgpio_port)
    except VPicoError as e:
        print(f"tsfrig: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"tsfrig: cannot start the vpico bench: {e} (is the port busy? try "
              "--pigpio-port 0 --rgpio-port 0)", file=sys.stderr)
        return 2
