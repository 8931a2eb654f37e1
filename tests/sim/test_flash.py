"""Flashing: the rp2-uf2 path end to end on a simulated bench (machine.bootloader(), the UF2
volume, the board booting the copied image), the check that the board runs the new image,
and the command lines of the methods that need hardware."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import load_config
from harness.flash import FlashError, FlashJob
from harness.flash.command import command_argv
from harness.flash.dfu_util import dfu_command
from harness.flash.esptool import esptool_command
from harness.sim.bench import ENV_DROP_DIR
from harness.sim.firmware import find_executable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim(tmp_path, monkeypatch, shipped_sim):
    """`tsfrig sim` whose bootloader volume is tmp_path/bench-RPI-RP2."""
    monkeypatch.setenv(ENV_DROP_DIR, str(tmp_path / "bench-RPI-RP2"))
    with shipped_sim() as address:
        yield address


def launcher(path: Path, *args: str) -> Path:
    """A sim "image": a script that execs the real build (with `args`: another build)."""
    path.write_text(f'#!/bin/sh\nexec {find_executable()} {" ".join(args)} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def run_flashing(serial_target_yaml):
    """`tsfrig run` on a serial target at the sim that flashes image first (rp2-uf2):
    (the process, its results.json)."""
    def run(tmp_path: Path, addr, image: Path):
        cfg = tmp_path / "bench.yaml"
        cfg.write_text(serial_target_yaml(addr.serial_port, addr.gpio_host, addr.gpio_port)
                       + f"    firmware: {{image: {image}}}\n"
                       f"    flash: {{method: rp2-uf2, volume: {tmp_path}/*-RPI-RP2, "
                       "timeout_s: 15}\n")
        env = {**os.environ, "TSFRIG_FLASH_RECORD": str(tmp_path / "flashed.json")}
        r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(cfg),
                            "--report-dir", str(tmp_path / "r"), "-k", "test_wake and hard"],
                           cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
        doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
        return r, doc
    return run


def test_rp2_uf2_flashes_the_image_and_the_suite_runs_on_it(sim, tmp_path, run_flashing):
    image = launcher(tmp_path / "new.uf2", "-O1")  # a build whose identity differs
    r, doc = run_flashing(tmp_path, sim, image)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    fw = doc["targets"][0]["firmware"]
    assert fw["image"] == str(image)
    assert fw["image_sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert [t["outcome"] for t in doc["tests"]] == ["passed"]
    flashed = json.loads((tmp_path / "flashed.json").read_text())  # the identity after
    assert flashed[fw["image_sha256"]]["opt_level"] == 1  # the board runs the new build
    assert not (tmp_path / "bench-RPI-RP2").exists()  # the volume went with the reboot


def test_a_board_that_keeps_its_old_build_is_a_bench_fault(sim, tmp_path, run_flashing):
    image = launcher(tmp_path / "same.uf2")  # boots, but reports the build that ran before
    r, doc = run_flashing(tmp_path, sim, image)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    lines = [ln for ln in (r.stdout + r.stderr).splitlines()
             if re.search(r"flash reported success but the board still runs \S+; MicroPython ", ln)]
    assert lines and doc["verdict"] == "error", r.stdout[-2000:] + r.stderr[-2000:]


def job(**options) -> FlashJob:
    return FlashJob(Path("/img/fw.bin"), "/dev/ttyUSB0", "auto", serial_number="ab12",
                    options=options)


@pytest.mark.parametrize(("chip", "offset"), [("esp32", "0x1000"), ("esp32s2", "0x1000"),
                                              ("esp32s3", "0x0"), ("esp32c3", "0x0"),
                                              ("esp32c6", "0x0"), ("esp32h2", "0x0"),
                                              ("esp32c5", "0x2000"), ("esp32p4", "0x2000")])
def test_esptool_writes_at_the_chips_offset(chip, offset):
    assert esptool_command(job(chip=chip)) == [
        sys.executable, "-m", "esptool", "--port", "/dev/ttyUSB0", "write-flash", offset,
        "/img/fw.bin"]


def test_esptool_unknown_chip_is_one_line():
    with pytest.raises(FlashError, match=r"^flash: esptool: unknown flash.chip 'esp99'; use"):
        esptool_command(job(chip="esp99"))


def test_dfu_util_command():
    assert dfu_command(job()) == ["dfu-util", "-a", "0", "-D", "/img/fw.bin"]


def test_command_template_fills_image_port_and_serial_number():
    argv = command_argv(job(command="picotool load -x {image} --ser {serial_number} # {port}"))
    assert argv == ["/bin/sh", "-c",
                    "picotool load -x /img/fw.bin --ser ab12 # /dev/ttyUSB0"]
    with pytest.raises(FlashError, match="bad placeholder"):
        command_argv(job(command="x {nope}"))


def test_firmware_option_is_the_image_of_serial_targets_that_flash(tmp_path, serial_target_yaml):
    from harness.config import with_firmware

    image = tmp_path / "fw.uf2"
    image.write_bytes(b"UF2\n")
    cfg = tmp_path / "rig.yaml"
    base = serial_target_yaml("/dev/ttyACM0", "127.0.0.1", 8888)
    cfg.write_text(base + "    flash: {method: rp2-uf2}\n"
                   + base.split("targets:\n")[1].replace("name: bench", "name: other")
                   .replace("port: 8888", "port: 8889").replace("ttyACM0", "ttyACM1"))
    rig = with_firmware(load_config(cfg), image)
    assert [t.firmware.image for t in rig.targets] == [image, None]
