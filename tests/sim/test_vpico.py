"""The virtual Pico (harness/vpico): the real rp2 firmware on rp2040js, driven through its pty
and the unmodified pigpio client. Needs an RPI_PICO image and the RP2040 bootrom, named by
TSFRIG_VPICO_UF2 and TSFRIG_VPICO_BOOTROM; skipped (saying which) without them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pigpio
import pytest
import serial

from harness.config import Budgets, FirmwareConfig, GpioConfig, TargetConfig, Wire, Wiring
from harness.vpico.bench import ENV_UF2, VPicoBench
from harness.vpico.board import ENV_BOOTROM, VPicoError
from harness.vpico.node import board_dir

REPO = Path(__file__).resolve().parents[2]
MPREMOTE = str(Path(sys.executable).with_name("mpremote"))


def _missing() -> str:
    for env in (ENV_UF2, ENV_BOOTROM):
        if not os.environ.get(env) or not Path(os.environ[env]).is_file():
            return f"set {env} to run the virtual Pico's tests"
    if not _has_rp2040js():
        return "run `make vpico` to install rp2040js"
    return ""


def _has_rp2040js() -> bool:
    """Beside board.mjs (make vpico) or in the user's cache (tsfrig vpico-setup)."""
    try:
        board_dir()
    except VPicoError:
        return False
    return True


needs_vpico = pytest.mark.skipif(bool(_missing()), reason=_missing() or "ready")


def target(image: str | None = None) -> TargetConfig:
    wiring = Wiring(Wire(17, 2), Wire(27, 3), Wire(22, "RUN"))
    return TargetConfig(name="vpico", kind="vpico", wiring=wiring, budgets=Budgets(),
                        gpio=GpioConfig("pigpio", port=8888),
                        firmware=FirmwareConfig(image=Path(image) if image else None))


@pytest.fixture
def bench():
    b = VPicoBench(target()).start()
    yield b
    proc = b.board.proc
    b.stop()
    assert proc.poll() is not None  # the Node process is gone with the bench


def mpremote(port: str, *args: str, timeout: float = 60) -> str:
    r = subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def wait_for(bench: VPicoBench, event: str, since: int) -> None:
    assert bench.board.wait_event(event, 20, since) is not None, bench.board.events[since:]
    if event == "usb connected":
        assert bench.board.wait_ready(10), "the port did not come back"


@needs_vpico
def test_mpremote_runs_code_and_files_persist_across_resets(bench, tmp_path):
    import hashlib

    port = bench.serial_port
    assert mpremote(port, "exec", "import sys; print(sys.platform)").strip() == "rp2"
    uid = mpremote(port, "exec", "import machine; print(machine.unique_id().hex())").strip()
    assert uid == hashlib.sha256(b"vpico").hexdigest()[:16]  # the target's own, every run
    big = tmp_path / "big.py"
    big.write_text(f"x = {'A' * 5000!r}\nprint(len(x))\n")  # past the 512-byte CDC buffer
    mpremote(port, "fs", "cp", str(big), ":big.py")
    # machine.reset(): the chip is re-created, the flash (littlefs) is kept
    since = len(bench.board.events)
    with serial.Serial(port, 115200, timeout=1) as s:
        s.write(b"\x03\x03import machine; machine.reset()\r")
        wait_for(bench, "boot (machine.reset())", since)
    wait_for(bench, "usb connected", since)
    assert mpremote(port, "exec", "import big").strip() == "5000"
    # the RUN pin, driven by the Pi through pigpio
    pi = pigpio.pi("127.0.0.1", bench.pi.port)
    try:
        since = len(bench.board.events)
        pi.write(22, 0)
        pi.write(22, 1)
        wait_for(bench, "boot (RUN pin)", since)
        wait_for(bench, "usb connected", since)
    finally:
        pi.stop()
    assert "big.py" in mpremote(port, "fs", "ls")


BOARD_TIMER = """
from machine import Pin
import time, micropython, array
micropython.alloc_emergency_exception_buf(100)
t = array.array('i', [0] * 20)
n = [0]
ack = Pin(3, Pin.OUT, value=0)
def isr(p):
    i = n[0]
    if i < 20:
        t[i] = time.ticks_us()
    n[0] = i + 1
    ack.value(not ack.value())  # reads the output back, as on silicon
Pin(2, Pin.IN).irq(isr, Pin.IRQ_RISING, hard=True)
print('armed')
"""


@needs_vpico
def test_edges_are_applied_and_stamped_in_emulated_time(bench):
    """A waveform's gaps are emulated µs on the board whatever the host's load, and the board's
    ack edges reach the Pi stamped with the board's own clock: one timeline."""
    port = bench.serial_port
    pi = pigpio.pi("127.0.0.1", bench.pi.port)
    acks: list[int] = []
    done = threading.Event()

    def on_ack(gpio, level, tick):
        acks.append(tick)
        if len(acks) == 20:
            done.set()

    cb = pi.callback(27, pigpio.EITHER_EDGE, on_ack)
    try:
        with serial.Serial(port, 115200, timeout=1) as s:
            s.write(b"\x03\x03\x05" + BOARD_TIMER.encode() + b"\x04")  # paste mode
            deadline = time.monotonic() + 20
            out = b""
            while b"armed" not in out and time.monotonic() < deadline:
                out += s.read(100)
            assert b"armed" in out, out
            pi.set_mode(17, pigpio.OUTPUT)
            m = 1 << 17
            pi.wave_clear()
            pi.wave_add_generic([pigpio.pulse(m, 0, 10), pigpio.pulse(0, m, 990)] * 20)
            wid = pi.wave_create()
            pi.wave_send_once(wid)
            assert done.wait(20), f"{len(acks)} acks"
            s.write(b"print(n[0], [time.ticks_diff(t[i+1], t[i]) for i in range(19)])\r")
            time.sleep(0.5)
            out = s.read(4000).decode()
    finally:
        cb.cancel()
        pi.stop()
    line = next(x for x in out.splitlines() if x.startswith("20 ["))
    gaps = [int(g) for g in line.split("[")[1].rstrip("]").split(",")]
    # the waveform's period in the board's µs: the ISR's own path varies by a few µs (the
    # first entry comes from another idle loop), the host's wall-clock jitter never shows
    assert sorted(gaps)[9] == 1000 and all(abs(g - 1000) <= 10 for g in gaps), gaps
    ack_gaps = [(b - a) & 0xFFFFFFFF for a, b in zip(acks, acks[1:], strict=False)]
    assert sorted(ack_gaps)[9] == 1000 and all(abs(g - 1000) <= 10 for g in ack_gaps), ack_gaps


@needs_vpico
def test_bootloader_takes_a_uf2_copied_to_its_volume(bench):
    """The rp2-uf2 flash method end to end: machine.bootloader(), the volume, the copy, the
    board back on its port running the image (another build when TSFRIG_VPICO_UF2_OTHER
    names one: then the board must report the other version)."""
    from harness.config.registry import FLASH, spec
    from harness.flash import FlashJob, flash_and_verify, read_identity

    other = os.environ.get("TSFRIG_VPICO_UF2_OTHER")
    image = Path(other or os.environ[ENV_UF2])
    job = FlashJob(image, bench.serial_port, bench.serial_port, None, None, None,
                   {"volume": str(bench.drop_dir)}, 60.0, 115200)
    before = read_identity(bench.serial_port)
    if other:
        port, ident = flash_and_verify("rp2-uf2", job)
        assert ident["sys_version"] != before["sys_version"]
    else:
        port = spec(FLASH, "rp2-uf2").flash(job)
    assert port == bench.serial_port
    assert any(f"flashed {image.name}" in e for _, e in bench.board.events)
    assert not bench.drop_dir.exists()  # the volume unmounted


def test_a_missing_node_is_one_line_naming_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("TSFRIG_NODE", str(tmp_path / "no-node"))
    monkeypatch.setenv(ENV_UF2, str(tmp_path / "x.uf2"))
    with pytest.raises(VPicoError, match="Node >= 18"):
        VPicoBench(target()).start()


@pytest.mark.skipif(shutil.which("node") is None, reason="no node on PATH")
def test_a_missing_bootrom_or_image_is_one_line_naming_the_setting(monkeypatch, tmp_path):
    if not _has_rp2040js():
        pytest.skip("run `make vpico` to install rp2040js")
    monkeypatch.delenv(ENV_BOOTROM, raising=False)
    monkeypatch.setenv(ENV_UF2, str(tmp_path / "x.uf2"))
    with pytest.raises(VPicoError, match=ENV_BOOTROM):
        VPicoBench(target()).start()
    monkeypatch.delenv(ENV_UF2)
    with pytest.raises(VPicoError, match="firmware.image"):
        VPicoBench(target())


@needs_vpico
def test_an_overlay_mutant_fails_on_the_real_rp2_firmware(tmp_path):
    """--overlay on a vpico: the mutant's asyncio goes in the board's filesystem root, ahead
    of the frozen one, and the suite calls the build broken (exit 1), naming the overlay."""
    import json

    from tests.mutants import write_overlay

    overlay = write_overlay("no_wake", tmp_path / "overlay")
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config",
                        str(REPO / "harness/vpico/rig_vpico.yaml"), "--target", "vpico",
                        "--overlay", str(overlay), "--report-dir", str(tmp_path / "r"),
                        "-k", "test_wake and hard"], capture_output=True, text=True,
                       timeout=300, cwd=REPO)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert "no wake within" in r.stdout + r.stderr  # the console line; paths on stdout
    doc = json.loads(next((tmp_path / "r").glob("*/results.json")).read_text())
    assert doc["targets"][0]["firmware"]["overlay"] == str(overlay.resolve())
    assert "v1." in doc["targets"][0]["firmware"]["version"]


def test_every_module_of_the_simulated_pi_that_reads_time_follows_the_emulator():
    """The vpico swaps the simulated Pi's `clock` for the emulator's in every module that
    reads it. When pigpiod's waveforms moved to their own module they kept wall time and
    `tsfrig run` on a vpico lost every stimulus edge (a bench fault on a good build); no
    image is needed to see the list is complete."""
    import ast

    import harness.sim
    from harness.vpico.bench import CLOCK_READERS

    readers = set()
    for f in Path(harness.sim.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "harness.sim" \
                    and any(a.name == "clock" for a in node.names):
                readers.add(f"harness.sim.{f.stem}")
    assert readers and readers == {m.__name__ for m in CLOCK_READERS}
