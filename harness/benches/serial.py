"""kind: serial, a real bench: the board on a USB serial port, its wires on a Pi's GPIO
daemon, both already running; flashing firmware.image first when a flash method is set."""

from __future__ import annotations

from harness.benches import BenchAddress
from harness.config import RigConfig, TargetConfig
from harness.config.specs import KindSpec


class SerialProvider:
    """A real bench: the board on a serial port (by path, or found by USB ids) and a GPIO
    daemon on the Pi; nothing to start or stop."""

    def __init__(self, target: TargetConfig, rig: RigConfig) -> None:
        self.target = target
        self.image_sha256: str | None = None

    def start(self) -> BenchAddress:
        from harness.board.session import find_port

        s, g = self.target.serial, self.target.gpio
        port = s.port if s.port != "auto" else find_port(s.vid, s.pid, s.serial_number)
        image, fl = self.target.firmware.image, self.target.flash
        if image is not None and fl is not None:  # flash it and check the board runs it
            from harness.flash import FlashJob, flash_and_verify, sha256

            job = FlashJob(image, port, s.port, s.vid, s.pid, s.serial_number, fl.options,
                           fl.timeout_s, s.baudrate)
            port, _ = flash_and_verify(fl.method, job)
            self.image_sha256 = sha256(image)
        return BenchAddress(port, g.host, g.port)

    def stop(self) -> None:
        pass

    def identity(self) -> dict:
        image = self.target.firmware.image if self.image_sha256 else None
        return {"executable": None, "overlay": None, "build_hash": None,
                "irq_wake_model": None, "image": str(image) if image else None,
                "image_sha256": self.image_sha256}


SPEC = KindSpec(provider=SerialProvider, only_keys=frozenset({"serial", "flash", "firmware.image"}),
                required_keys=frozenset({"serial"}))
