"""Put a firmware image on a board and check the board then runs it.

A target's `flash.method` names a flasher (harness/config/registry.py), one module each
holding its spec, its checks and its flash (flash/rp2_uf2.py, esptool.py, dfu_util.py,
command.py): `flash(job) -> serial port`, the board's port once it is back with the new
image. This module is what they share (the job, entering the bootloader, running a tool
within a deadline, waiting for the port) and the flash-then-verify. Every failure is one
FlashError line naming the step and the fix; a flash failure is a bench fault (exit 2), never
a firmware verdict.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.registry import FLASH, names, spec
from harness.shipped import DEVICE_SCRIPTS
from harness.tools import run_tool
from harness.verdict import BenchFault

BOOTLOADER_CODE = "import machine; machine.bootloader()"
IDENTITY_SCRIPT = DEVICE_SCRIPTS / "tsf_identity.py"
ENV_RECORD = "TSFRIG_FLASH_RECORD"  # where image sha256 -> identity of past flashes is kept


class FlashError(BenchFault):
    """The image could not be put on the board, or the board does not run it."""


@dataclass(frozen=True)
class FlashJob:
    """What a flasher needs: the image, the board's port now, how to find it again."""

    image: Path
    port: str  # the board's serial port before flashing
    port_config: str  # serial.port as configured: a path or "auto"
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the method's own (FlashConfig's)
    timeout_s: float = 60.0
    baudrate: int = 115200


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---- steps shared by the methods -----------------------------------------------------------

def enter_bootloader(job: FlashJob) -> None:
    """Run machine.bootloader() on the board without waiting for an answer (the board leaves
    the bus), as `mpremote bootloader` does."""
    from harness.board.session import BoardSession, TargetError

    try:
        t = BoardSession(job.port, job.baudrate, timeout_s=min(job.timeout_s, 10.0))
    except TargetError as e:
        raise FlashError(f"flash: enter the bootloader: {e}") from None
    try:
        t.soft_reset()
        t.send(BOOTLOADER_CODE.encode() + b"\x04")
        time.sleep(0.1)  # let the bytes leave before the port closes
    except Exception as e:  # noqa: BLE001 - one line naming the step, whatever the link did
        raise FlashError(f"flash: enter the bootloader on {job.port}: {e}; put the board in "
                         "its bootloader by hand (BOOTSEL) and run again") from None
    finally:
        try:
            t.close()
        except Exception:  # noqa: BLE001 - the board is leaving: its port may be gone
            pass


def wait_for_port(job: FlashJob, deadline: float) -> str:
    """The board's serial port once it is back: found by USB ids for `auto`, else the
    configured path, and answering a soft reset."""
    from harness.board.session import BoardSession, find_port

    last = ""
    while True:
        try:
            port = find_port(job.vid, job.pid, job.serial_number) \
                if job.port_config == "auto" else job.port_config
            if os.path.exists(port):
                t = BoardSession(port, job.baudrate, timeout_s=2.0)
                try:
                    t.soft_reset()
                    return port
                finally:
                    t.close()
            last = f"{port} does not exist"
        except Exception as e:  # noqa: BLE001 - keep trying until the deadline
            last = str(e)
        if time.monotonic() >= deadline:
            raise FlashError(f"flash: wait for the board's serial port to come back: {last}; "
                             "check the image boots MicroPython with USB serial, or raise "
                             "flash.timeout_s") from None
        time.sleep(0.1)  # polling for a device node that is not there yet


def run_command(argv: list[str], step: str, timeout_s: float, fix: str) -> None:
    run_tool(argv, f"flash: {step}", timeout_s, fix, FlashError,
             "check the board is connected, or raise flash.timeout_s")


# ---- flash and verify --------------------------------------------------------------------------

def read_identity(port: str, baudrate: int = 115200, timeout_s: float = 10.0) -> dict:
    """The board's identity (device_scripts/tsf_identity.py), run without uploading."""
    from harness.board.session import BoardSession

    try:
        t = BoardSession(port, baudrate, timeout_s=timeout_s)
        try:
            t.soft_reset()
            out = t.exec(IDENTITY_SCRIPT.read_text() + "\nimport json\n"
                         "print(json.dumps(identity()))\n")
        finally:
            t.close()
        ident = json.loads(out.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001 - one line naming the step
        raise FlashError(f"flash: read the board's identity on {port}: {e}") from None
    ident.pop("irq_dropped", None)  # a counter, not the build
    return ident


def _record_path() -> Path:
    env = os.environ.get(ENV_RECORD)
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tsfrig" / "flashed.json"


def _load_record() -> dict:
    try:
        return json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_record(image_sha: str, ident: dict) -> None:
    rec = _load_record()
    rec[image_sha] = ident
    p = _record_path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1, sort_keys=True))
        os.replace(tmp, p)
    except OSError:
        pass  # only a memory of past flashes: a re-flash of the same image may then fail


def flash_and_verify(method: str, job: FlashJob) -> tuple[str, dict]:
    """Flash job.image with `method`, then check the board runs it: its identity must change,
    unless this image is known (from an earlier flash) to report exactly that identity.
    Returns the board's port and its identity after flashing."""
    if not job.image.is_file():
        raise FlashError(f"flash: image {job.image} does not exist; fix firmware.image or "
                         "--firmware")
    if method not in names(FLASH):
        raise FlashError(f"flash: unknown method {method!r}; use one of "
                         f"{', '.join(names(FLASH))}")
    image_sha = sha256(job.image)
    before = read_identity(job.port, job.baudrate)
    port = spec(FLASH, method).flash(job)
    after = read_identity(port, job.baudrate)
    if after == before and _load_record().get(image_sha) != after:
        raise FlashError(f"flash reported success but the board still runs "
                         f"{after.get('sys_version') or after}")
    _save_record(image_sha, after)
    return port, after
