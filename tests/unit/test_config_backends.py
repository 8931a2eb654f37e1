"""rig_config.yaml for real benches and GPIO backends: USB ids, flash methods and firmware
images of serial targets, the rgpio backend's address and sense line."""

import pytest

from tests.unit.configs import SERIAL, SIM


def test_usb_ids_are_shown_in_hex(tmp_path, load_text, error_of):
    def serial(ids: str) -> str:
        return SIM.replace("kind: sim", f"kind: serial\n    serial: {{port: auto, {ids}}}")
    assert error_of(tmp_path, serial("vid: 0x12e8a")) == (
        "rig.yaml:5: targets[0].serial.vid: expected a 16-bit USB id 0x0000-0xffff, got "
        "0x12e8a; write it in hex like 0x2e8a (unquoted)")
    assert "serial.pid: expected a 16-bit USB id 0x0000-0xffff, got '2e8a'" in \
        error_of(tmp_path, serial("vid: 0x2e8a, pid: 2e8a"))
    s = load_text(tmp_path, serial("vid: 0x2e8a, pid: 0x0005")).targets[0].serial
    assert (s.vid, s.pid) == (0x2E8A, 5)


SERIAL_ONE = "version: 1\ntargets:\n" + SERIAL.format(name="pico", port="/dev/ttyACM0",
                                                      stim=17, ack=27)


def test_flash_and_firmware_image_for_serial_targets(tmp_path, load_text, error_of):
    (tmp_path / "fw.uf2").write_bytes(b"UF2\n")
    ok = SERIAL_ONE + ("    firmware: {image: fw.uf2}\n"
                       "    flash: {method: rp2-uf2, volume: /media/*/RPI-RP2, timeout_s: 30}\n")
    t = load_text(tmp_path, ok).targets[0]
    assert t.firmware.image == tmp_path / "fw.uf2"
    assert (t.flash.method, t.flash.options, t.flash.timeout_s) == (
        "rp2-uf2", {"volume": "/media/*/RPI-RP2"}, 30.0)
    cases = [
        (SIM + "    flash: {method: rp2-uf2}\n",
         "rig.yaml:8: targets[0].flash: only for kind: serial; remove it"),
        (SIM + "    firmware: {image: fw.uf2}\n",
         "rig.yaml:8: targets[0].firmware.image: only for kind: serial; remove it"),
        (SERIAL_ONE + "    firmware: {overlay: .}\n",
         "rig.yaml:10: targets[0].firmware.overlay: only for kind: sim; remove it"),
        (SERIAL_ONE + "    flash: {method: picotool}\n",
         "rig.yaml:10: targets[0].flash.method: expected one of rp2-uf2 | esptool | dfu-util | "
         "command, got 'picotool'"),
        (SERIAL_ONE + "    flash: {method: esptool, chip: esp99}\n",
         "rig.yaml:10: targets[0].flash.chip: unknown chip 'esp99'"),
        (SERIAL_ONE + "    flash: {method: command}\n",
         "rig.yaml:10: targets[0].flash.command: missing; method: command needs a template"),
        (SERIAL_ONE + "    flash: {method: command, command: 'x {img}'}\n",
         "rig.yaml:10: targets[0].flash.command: bad placeholder 'img'"),
        (SERIAL_ONE + "    flash: {method: rp2-uf2, timeout_s: -1}\n",
         "rig.yaml:10: targets[0].flash.timeout_s:"),
        (SERIAL_ONE + "    flash: {method: rp2-uf2, speed: 3}\n",
         "rig.yaml:10: targets[0].flash"),
        (SERIAL_ONE + "    firmware: {image: missing.uf2}\n    flash: {method: rp2-uf2}\n",
         "rig.yaml:10: targets[0].firmware.image: "),
        (SERIAL_ONE + "    firmware: {image: fw.uf2}\n",
         "rig.yaml:10: targets[0].firmware.image: needs flash: {method: ...}"),
    ]
    for text, want in cases:
        msg = error_of(tmp_path, text)
        assert msg.startswith(want) and "\n" not in msg, (want, msg)


def test_rgpio_backend_defaults_to_port_8889_and_takes_a_sense_line(tmp_path, load_text):
    rgpio = SIM.replace("    kind: sim\n", "    kind: sim\n    gpio: {backend: rgpio}\n")
    t = load_text(tmp_path, rgpio + "      stimulus_sense: 23\n").targets[0]
    assert (t.gpio.backend, t.gpio.port, t.wiring.stimulus_sense) == ("rgpio", 8889, 23)
    t = load_text(tmp_path, SIM.replace(
        "    kind: sim\n", "    kind: sim\n    gpio: {backend: rgpio, host: pi5, port: 9000}\n")
    ).targets[0]
    assert (t.gpio.host, t.gpio.port, t.wiring.stimulus_sense) == ("pi5", 9000, None)
    assert load_text(tmp_path, SIM).targets[0].gpio.port == 8888
    t = load_text(tmp_path, SIM.replace(
        "    kind: sim\n", "    kind: sim\n    gpio: {backend: rgpio, chip: 4}\n")).targets[0]
    assert t.gpio.options == {"chip": 4}
    # rgpio's lines are its gpiochip's (0-53 on a Pi 5), not pigpio's bank 1
    t = load_text(tmp_path, rgpio.replace("pi_gpio: 27", "pi_gpio: 40")).targets[0]
    assert t.wiring.ack.pi_gpio == 40


@pytest.mark.parametrize("extra, wiring, expected", [
    ("", "      stimulus_sense: 23\n",
     "rig.yaml:8: targets[0].wiring.stimulus_sense: only for gpio.backend: rgpio"),
    ("    gpio: {backend: rgpio}\n", "      stimulus_sense: 27\n",
     "rig.yaml:9: targets[0].wiring.stimulus_sense: Pi GPIO 27 is already the ack wire"),
    ("    gpio: {backend: rgpio}\n    pigpio: {host: pi5}\n", "",
     "rig.yaml:6: targets[0].pigpio: is for gpio.backend pigpio; write the rgpio daemon's "
     "address as gpio: {host: ..., port: ...}"),
    ("    gpio: {host: pi}\n    pigpio: {host: pi}\n", "",
     "rig.yaml:6: targets[0].pigpio: the daemon's address is already in gpio: host/port"),
    ("    gpio: {chip: 4}\n", "",
     "rig.yaml:5: targets[0].gpio.chip: only for gpio.backend rgpio (pigpio does not take it)"),
    ("    gpio: {backend: rgpio, chip: -1}\n", "", "rig.yaml:5: targets[0].gpio.chip: "),
])
def test_gpio_address_and_sense_line_errors(tmp_path, extra, wiring, expected, error_of):
    msg = error_of(tmp_path, SIM.replace("    kind: sim\n", "    kind: sim\n" + extra) + wiring)
    assert msg.startswith(expected), msg
