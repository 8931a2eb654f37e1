"""One simulated bench: the simulated Pi (speaking pigpiod's and rgpiod's protocols on the
same GPIOs) and the virtual board, wired per config.

`tsfrig sim` runs it in the foreground and prints where to connect; the pytest plugin
runs the same thing as a child process, so the harness above it cannot tell a
simulated bench from a real one.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from harness.benches.sim import announce
from harness.board.ports import PROFILES
from harness.config import TargetConfig
from harness.sim.board import VirtualBoard
from harness.sim.firmware import Firmware, find_executable
from harness.sim.pigpiod import SimPi
from harness.sim.power import PowerServer
from harness.sim.priority import raise_priority
from harness.sim.rgpiod import SimRgpiod
from harness.sim.tempdirs import owned_temp_dir, sweep_orphaned_temp
from harness.sim.wire import ENV_WIRE

ENV_DROP_DIR = "TSFRIG_SIM_UF2_DIR"  # where machine.bootloader() presents its UF2 volume


class PortInUse(OSError):
    """A simulated daemon's port is taken by another process: which daemon, which port."""

    def __init__(self, daemon: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{daemon} port {port} is already in use")
        self.daemon, self.port = daemon, port


def emulation_env(port: str | None) -> dict[str, str]:
    """What the virtual board's machine and os modules read to act as another port (the
    target's `emulate:`): its names, hard IRQs, _thread and schedule queue depth."""
    if not port:
        return {}
    p = PROFILES[port]
    return {"TSFRIG_EMULATE": port, "TSFRIG_EMULATE_SYSNAME": p.platforms[0],
            "TSFRIG_EMULATE_MACHINE": p.machine,
            "TSFRIG_EMULATE_HARD": "1" if "hard" in p.irq_kinds else "0",
            "TSFRIG_EMULATE_THREAD": "1" if "thread" in p.irq_kinds else "0",
            "TSFRIG_EMULATE_SCHED_DEPTH": str(p.sched_depth)}


def board_pin_number(pin: int | str) -> int:
    """The virtual board numbers its pins; accept 2 or "GP2"."""
    if isinstance(pin, int):
        return pin
    digits = "".join(ch for ch in pin if ch.isdigit())
    if not digits:
        raise ValueError(f"virtual board pin {pin!r}: use a number or a name like 'GP2'")
    return int(digits)


class SimBench:
    """Starts and stops the simulated Pi and the virtual board as one unit."""

    def __init__(self, target: TargetConfig, flash_dir: Path | None = None,
                 pigpio_port: int = 0, rgpio_port: int = 0) -> None:
        w = target.wiring
        self.target = target
        self.wiring = [
            (w.stimulus.pi_gpio, board_pin_number(w.stimulus.board_pin), "to_board"),
            (w.ack.pi_gpio, board_pin_number(w.ack.board_pin), "from_board"),
        ]
        if w.reset is not None:  # to the board's RUN pin, not a machine.Pin
            self.wiring.append((w.reset.pi_gpio, -1, "reset"))
        if w.stimulus_sense is not None:  # a Pi input jumpered to the stimulus wire
            self.wiring.append((w.stimulus_sense, w.stimulus.pi_gpio, "sense"))
        exe = find_executable(target.firmware.executable)
        self.firmware = Firmware(exe, target.firmware.overlay)
        self._own_flash = flash_dir is None
        self.flash_dir = Path(flash_dir) if flash_dir else None  # made by start() if None
        self._ports = {"pigpio": pigpio_port, "rgpio": rgpio_port}  # 0: any free one
        self.pi = SimPi(wiring=self.wiring, port=pigpio_port, on_reset_line=self._run_pin)
        self.rgpiod = SimRgpiod(self.pi, port=rgpio_port)
        self.board: VirtualBoard | None = None
        self.power: PowerServer | None = None  # the board's power switch, for other processes

    def start(self) -> SimBench:
        """Bring up the daemons and the board; on any failure stop what did start and remove
        the flash directory made here, so a failed start leaves nothing behind."""
        try:
            if self._own_flash:
                sweep_orphaned_temp()
                self.flash_dir = owned_temp_dir(f"{self.target.name}-flash")
            _listening("pigpio", self.pi.start, self._ports["pigpio"])
            _listening("rgpio", self.rgpiod.start, self._ports["rgpio"])
            env = {
                ENV_WIRE: f"127.0.0.1:{self.pi.wire_port}",
                "TSFRIG_IRQ_WAKE": self.target.irq_wake,
                "TSFRIG_IRQ_LATENCY_US": str(self.target.irq_latency_us),
                "TSFRIG_IRQ_JITTER_US": str(self.target.irq_jitter_us),
                **emulation_env(self.target.emulate),
            }
            drop = os.environ.get(ENV_DROP_DIR)
            self.board = VirtualBoard(self.firmware, self.flash_dir, env,
                                      Path(drop) if drop else
                                      self.flash_dir.parent / f"{self.target.name}-RPI-RP2")
            self.board.start()
            self.power = PowerServer(self.board)
        except BaseException:
            self.stop()
            raise
        return self

    def _run_pin(self, level: int) -> None:
        if self.board is not None:
            self.board.set_run(level)

    @property
    def serial_port(self) -> str:
        assert self.board is not None
        return self.board.port

    @property
    def pigpio_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.pi.port

    @property
    def gpio_addresses(self) -> dict[str, tuple[str, int]]:
        """Each GPIO backend's daemon (harness.gpio.GPIO_BACKENDS) on this simulated Pi."""
        return {"pigpio": self.pigpio_address, "rgpio": ("127.0.0.1", self.rgpiod.port)}

    def stop(self) -> None:
        if self.power is not None:
            self.power.stop()
            self.power = None
        if self.board is not None:
            self.board.stop()
            self.board = None
        self.rgpiod.stop()
        self.pi.stop()
        if self._own_flash and self.flash_dir is not None:
            shutil.rmtree(self.flash_dir, ignore_errors=True)

    def __enter__(self) -> SimBench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listening(daemon: str, start, port: int) -> None:
    """Start a simulated daemon; a port someone else holds is PortInUse, naming it."""
    try:
        start()
    except OSError as e:
        if e.errno == errno.EADDRINUSE and port:
            raise PortInUse(daemon, port) from None
        raise


def serve(target: TargetConfig, pigpio_port: int = 0, flash_dir: Path | None = None,
          rgpio_port: int = 0) -> int:
    """Run one bench until Ctrl-C or SIGTERM; print the addresses a person connects to."""
    stop = threading.Event()
    why: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        why.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    priority = raise_priority()
    with SimBench(target, flash_dir=flash_dir, pigpio_port=pigpio_port,
                  rgpio_port=rgpio_port) as bench:
        fw = bench.firmware
        announce(bench.serial_port, bench.gpio_addresses,
                 f"{fw.executable}" + (f" + overlay {fw.overlay}" if fw.overlay else ""),
                 sys.stdout, power=bench.power.path if bench.power else "", priority=priority)
        while not stop.wait(0.5):
            pass
    # on stdout with the addresses, whichever signal it was: whoever reads them learns it went
    print(f"stopped ({why[0] if why else 'stop'}): every process of the bench ended",
          file=sys.stdout, flush=True)
    return 0
