"""rig_config.yaml validation: every problem is one line naming the file, the line, the key
and the fix; `tsfrig run` turns it into exit code 2 before touching any bench."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]

SIM = """\
version: 1
targets:
  - name: sim
    kind: sim
    wiring:
      stimulus: {pi_gpio: 17, board_pin: 2}
      ack: {board_pin: 3, pi_gpio: 27}
"""

SERIAL = """\
  - name: {name}
    kind: serial
    serial: {{port: {port}}}
    pigpio: {{host: bench-pi, port: 8888}}
    wiring:
      stimulus: {{pi_gpio: {stim}, board_pin: GP2}}
      ack: {{board_pin: GP3, pi_gpio: {ack}}}
"""


def load_text(tmp_path: Path, text: str | bytes):
    path = tmp_path / "rig.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return load_config(path)


def error_of(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    msg = str(e.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    assert not re.search(r"<[^>]* at 0x|\{'|\['|_Node", msg), f"object repr in: {msg!r}"
    return msg


def test_shipped_config_is_the_simulated_bench():
    rig = load_config(REPO / "rig_config.yaml")
    assert [t.kind for t in rig.targets][0] == "sim"
    t = rig.targets[0]
    assert (t.wiring.stimulus.pi_gpio, t.wiring.ack.pi_gpio) == (17, 27)
    assert t.budgets.latency_us["p50"] <= t.budgets.latency_us["p99"]


def test_defaults_merge_under_targets_and_targets_win(tmp_path):
    text = SIM.replace("targets:", "defaults:\n  irq_kinds: [hard]\n"
                       "  budgets: {wake_timeout_ms: 50, device_timeout_s: 3}\ntargets:")
    text += "    budgets: {wake_timeout_ms: 80}\n"
    t = load_text(tmp_path, text).targets[0]
    assert t.irq_kinds == ("hard",)
    assert t.budgets.wake_timeout_ms == 80 and t.budgets.device_timeout_s == 3


def test_unknown_key_names_its_line_and_a_likely_fix(tmp_path):
    msg = error_of(tmp_path, SIM + "    second_waiters: raises\n")
    assert msg == ("rig.yaml:8: targets[0].second_waiters: unknown key; "
                   "did you mean 'second_waiter'?")


def test_wrong_type_names_key_line_and_value(tmp_path):
    msg = error_of(tmp_path, SIM.replace("pi_gpio: 17", "pi_gpio: seventeen"))
    assert msg.startswith("rig.yaml:6: targets[0].wiring.stimulus.pi_gpio: expected an integer")
    assert "'seventeen'" in msg


def test_enum_lists_the_choices(tmp_path):
    msg = error_of(tmp_path, SIM + "    second_waiter: sometimes\n")
    assert "rig.yaml:8: targets[0].second_waiter" in msg
    assert "second-wins | first-wins | both-wake | raises" in msg


def test_pin_wired_twice_within_a_target(tmp_path):
    msg = error_of(tmp_path, SIM.replace("pi_gpio: 27", "pi_gpio: 17"))
    assert msg.startswith("rig.yaml:7: targets[0].wiring.ack.pi_gpio: Pi GPIO 17 is already")
    msg = error_of(tmp_path, SIM.replace("board_pin: 3", "board_pin: 2"))
    assert "targets[0].wiring.ack.board_pin: board pin 2 is already wired" in msg


def test_pi_gpio_shared_by_two_real_targets_on_one_pigpiod(tmp_path):
    text = "version: 1\ntargets:\n" + SERIAL.format(name="a", port="/dev/ttyACM0", stim=17,
                                                    ack=27)
    text += SERIAL.format(name="b", port="/dev/ttyACM1", stim=22, ack=17)
    msg = error_of(tmp_path, text)
    assert msg.startswith("rig.yaml:16: targets[1].wiring.ack.pi_gpio: Pi GPIO 17 on bench-pi")
    assert "targets[0]" in msg


def test_serial_port_shared_by_two_targets(tmp_path):
    text = "version: 1\ntargets:\n" + SERIAL.format(name="a", port="/dev/ttyACM0", stim=17,
                                                    ack=27)
    text += SERIAL.format(name="b", port="/dev/ttyACM0", stim=22, ack=23)
    assert "targets[1].serial.port: /dev/ttyACM0 is already targets[0]" in \
        error_of(tmp_path, text)


def test_missing_sections(tmp_path):
    assert error_of(tmp_path, "version: 1\n") == \
        "rig.yaml:1: targets: missing; add it (see README, Config reference)"
    no_wiring = "\n".join(SIM.splitlines()[:4]) + "\n"
    assert "targets[0].wiring: missing" in error_of(tmp_path, no_wiring)
    no_ack = SIM.replace("      ack: {board_pin: 3, pi_gpio: 27}\n", "")
    assert "targets[0].wiring.ack: missing" in error_of(tmp_path, no_ack)
    serial_without_port = SIM.replace("kind: sim", "kind: serial")
    assert "targets[0].serial: missing" in error_of(tmp_path, serial_without_port)


def test_target_kind_specific_keys(tmp_path):
    text = SIM.replace("kind: sim", "kind: serial\n    serial: {port: /dev/ttyACM0}")
    text += "    irq_wake: poll\n"
    assert "targets[0].irq_wake: only for kind: sim; remove it" in error_of(tmp_path, text)
    text = SIM.replace("kind: sim", "kind: serial\n    serial: {port: auto}")
    assert "'auto' needs vid, pid or serial_number" in error_of(tmp_path, text)


def test_duplicate_names_and_keys(tmp_path):
    text = SIM + SIM.split("targets:\n")[1]
    assert "targets[1].name: 'sim' is also targets[0]" in error_of(tmp_path, text)
    text = SIM + "    kind: serial\n"
    assert error_of(tmp_path, text).startswith("rig.yaml:8: kind: duplicate key (first at line 4)")


def test_budgets_must_not_decrease_and_paths_must_exist(tmp_path):
    text = SIM + "    budgets:\n      latency_us: {p50: 500, p90: 100}\n"
    assert "p50 (500) > p90 (100)" in error_of(tmp_path, text)
    text = SIM + "    firmware: {overlay: no-such-dir}\n"
    msg = error_of(tmp_path, text)
    assert "targets[0].firmware.overlay: directory" in msg and "does not exist" in msg


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the rig config"):
        load_config(tmp_path / "absent.yaml")
    assert error_of(tmp_path, "targets: [\n").startswith("rig.yaml:2: invalid YAML")
    assert "empty config" in error_of(tmp_path, "")


def test_tsfrig_run_bad_config_is_exit_2_and_one_line(tmp_path):
    bad = tmp_path / "rig.yaml"
    bad.write_text(SIM + "    irq_kind: [hard]\n")
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(bad),
                        "--report-dir", str(tmp_path / "reports")],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == ("tsfrig: rig.yaml:8: targets[0].irq_kind: unknown key; "
                                "did you mean 'irq_kinds'?")
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--target", "nope",
                        "--report-dir", str(tmp_path / "reports")],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no target named 'nope' (known: sim)" in r.stderr


def test_file_that_is_not_utf8(tmp_path):
    assert error_of(tmp_path, b"\xff\xfe" + SIM.encode()) == (
        "rig.yaml:1: the file is UTF-16 (it starts with a UTF-16 byte-order mark), not UTF-8; "
        "save it as UTF-8")
    latin1 = SIM.replace("name: sim", "name: caf\xe9").encode("latin-1")
    assert error_of(tmp_path, latin1) == (
        "rig.yaml:3: targets[0].name: byte 0xe9 (column 14) is not valid UTF-8; "
        "save the file as UTF-8")
    bad = tmp_path / "rig.yaml"  # and `tsfrig run` prints it as its one line, exit 2
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(bad),
                        "--report-dir", str(tmp_path / "reports")],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "tsfrig: rig.yaml:3: targets[0].name: byte 0xe9 (column 14) " \
        "is not valid UTF-8; save the file as UTF-8"


def test_recursive_alias_and_yaml_syntax_errors_are_one_line(tmp_path):
    assert error_of(tmp_path, "a: &x [*x]\n") == (
        "rig.yaml:1: a[0]: recursive alias: the anchored value contains itself "
        "(*alias inside its own &anchor); write the value out")
    assert error_of(tmp_path, SIM + "    irq_kinds: &k [hard, *k]\n").startswith(
        "rig.yaml:8: targets[0].irq_kinds[1]: recursive alias")
    assert "nested too deeply" in error_of(tmp_path, "[" * 5000 + "]" * 5000)
    assert error_of(tmp_path, SIM + "---\nversion: 1\n").startswith(
        "rig.yaml:8: invalid YAML: expected a single document in the stream (line 1) but "
        "found another document")
    assert error_of(tmp_path, SIM.replace("name: sim", "name: s\x01im")) == (
        "rig.yaml:3: targets[0].name: character U+0001 is not allowed in YAML; remove it")
    assert error_of(tmp_path, SIM + "    irq_latency_us: !foo 3\n") == (
        "rig.yaml:8: targets[0].irq_latency_us: unknown YAML tag !foo; remove it")
    assert error_of(tmp_path, SIM + "    irq_latency_us: 2024-13-45\n") == (
        "rig.yaml:8: targets[0].irq_latency_us: '2024-13-45' is not a valid YAML timestamp; "
        "fix it, or quote it if it is text")
    # an alias that is not recursive is still just a shared value
    text = SIM.replace("budgets:", "") + "    budgets: &b {wake_timeout_ms: 50}\n"
    assert load_text(tmp_path, text).targets[0].budgets.wake_timeout_ms == 50


def test_top_level_must_be_a_mapping(tmp_path):
    assert error_of(tmp_path, "- version: 1\n- targets: []\n") == (
        "rig.yaml:1: (top level): the top level must be a mapping with version: and targets:, "
        "got a list; start from the shipped rig_config.yaml")
    assert "must be a mapping with version: and targets:, got 'hello'" in \
        error_of(tmp_path, "hello\n")


def test_yaml_booleans_are_not_numbers(tmp_path):
    assert error_of(tmp_path, SIM.replace("version: 1", "version: true")) == (
        "rig.yaml:1: version: unsupported version true (a YAML boolean); write version: 1")
    assert error_of(tmp_path, SIM.replace("version: 1", "version: 1.0")).endswith(
        "unsupported version 1.0; write version: 1")
    assert error_of(tmp_path, SIM + "    budgets: {wake_timeout_ms: true}\n") == (
        "rig.yaml:8: targets[0].budgets.wake_timeout_ms: expected a number from 1 to 60000 ms, "
        "got true (a YAML boolean)")
    assert "got false (a YAML boolean)" in error_of(tmp_path, SIM + "    irq_latency_us: no\n")


@pytest.mark.parametrize("section, key", [
    ("    budgets: {latency_us: {p50: %s}}", "targets[0].budgets.latency_us.p50"),
    ("    budgets: {latency_us: {max: %s}}", "targets[0].budgets.latency_us.max"),
    ("    budgets: {wake_timeout_ms: %s}", "targets[0].budgets.wake_timeout_ms"),
    ("    budgets: {device_timeout_s: %s}", "targets[0].budgets.device_timeout_s"),
    ("    irq_latency_us: %s", "targets[0].irq_latency_us"),
    ("    irq_jitter_us: %s", "targets[0].irq_jitter_us"),
    ("compare: {alpha: %s}", "compare.alpha"),
    ("compare: {effect_floor_us: %s}", "compare.effect_floor_us"),
    ("compare: {min_effect_size: %s}", "compare.min_effect_size"),
])
def test_nan_infinite_and_negative_budgets_and_thresholds(tmp_path, section, key):
    for value in (".nan", ".inf", "-.inf", "-1"):
        msg = error_of(tmp_path, SIM + section % value + "\n")
        assert msg.startswith(f"rig.yaml:8: {key}: expected a"), msg
        assert msg.endswith(f", got {value}"), msg
    assert error_of(tmp_path, SIM + "    budgets: {wake_timeout_ms: .inf}\n") == (
        "rig.yaml:8: targets[0].budgets.wake_timeout_ms: expected a number from 1 to 60000 ms, "
        "got .inf")


SERIAL_ONE_TARGET = SERIAL.format(name="bench", port="/dev/ttyACM0", stim=17, ack=27)


@pytest.mark.parametrize("line, key, too_small, too_big, sane", [
    ("    budgets: {latency_us: {max: %s}}", "targets[0].budgets.latency_us.max",
     "0.5", "1.0e+12", "from 1 to 10000000 µs"),
    ("    budgets: {latency_us: {p50: %s}}", "targets[0].budgets.latency_us.p50",
     "0.000001", "20000000", "from 1 to 10000000 µs"),
    ("    budgets: {wake_timeout_ms: %s}", "targets[0].budgets.wake_timeout_ms",
     "0.000001", "86400000", "from 1 to 60000 ms"),
    ("    budgets: {device_timeout_s: %s}", "targets[0].budgets.device_timeout_s",
     "0.001", "1000000000", "from 1 to 600 s"),
    ("    irq_latency_us: %s", "targets[0].irq_latency_us", "-1", "1000000000000",
     "from 0 to 1000000 µs"),
    ("    irq_jitter_us: %s", "targets[0].irq_jitter_us", "-5", "5000000",
     "from 0 to 1000000 µs"),
    ("    power: {method: sim, off_s: %s}", "targets[0].power.off_s", "0.0001", "3600",
     "from 0.01 to 60 s"),
    ("    power: {method: sim, timeout_s: %s}", "targets[0].power.timeout_s", "0.01", "1.0e+6",
     "from 1 to 600 s"),
    ("compare: {effect_floor_us: %s}", "compare.effect_floor_us", "-1", "1.0e+9",
     "from 0 to 10000000 µs"),
])
def test_absurd_numbers_are_one_line_errors_with_the_sane_range(tmp_path, line, key,
                                                                too_small, too_big, sane):
    """A unit mix-up (a sub-microsecond timeout, a latency of days) is a config error naming
    the file, line, key and the range that makes sense, before any bench is touched."""
    for value in (too_small, too_big):
        msg = error_of(tmp_path, SIM + line % value + "\n")
        assert msg.startswith(f"rig.yaml:8: {key}: expected "), msg
        assert sane in msg and ", got " in msg, msg


@pytest.mark.parametrize("line, key, bad, sane", [
    ("    flash: {method: rp2-uf2, timeout_s: %s}", "targets[0].flash.timeout_s", "0.001",
     "from 1 to 3600 s"),
    ("    serial: {port: /dev/ttyACM0, baudrate: %s}", "targets[0].serial.baudrate", "10",
     "from 300 to 16000000 baud"),
    ("    serial: {port: /dev/ttyACM0, baudrate: %s}", "targets[0].serial.baudrate",
     "1000000000", "from 300 to 16000000 baud"),
])
def test_absurd_serial_settings_name_the_sane_range(tmp_path, line, key, bad, sane):
    target = SERIAL_ONE_TARGET
    if "serial:" in line:
        target = target.replace("    serial: {port: /dev/ttyACM0}\n", "")
    msg = error_of(tmp_path, "version: 1\ntargets:\n" + target + line % bad + "\n")
    assert f": {key}: expected a" in msg and sane in msg and ", got " in msg, msg


def test_a_board_pin_past_any_board_is_an_error(tmp_path):
    msg = error_of(tmp_path, SIM.replace("board_pin: 2}", "board_pin: 100000}"))
    assert msg == ("rig.yaml:6: targets[0].wiring.stimulus.board_pin: expected an integer "
                   "from 0 to 1023, got 100000")


def test_wake_timeout_must_be_shorter_than_the_device_timeout(tmp_path):
    msg = error_of(tmp_path, SIM + "    budgets: {wake_timeout_ms: 20000, device_timeout_s: 10}\n")
    assert msg.startswith("rig.yaml:8: targets[0].budgets.wake_timeout_ms: wake_timeout_ms "
                          "(20000 ms) must be shorter than device_timeout_s (10 s)"), msg


def test_sane_settings_at_the_range_edges_load(tmp_path):
    t = load_text(tmp_path, SIM + "    irq_latency_us: 1000000\n    budgets: {wake_timeout_ms: 1, "
                  "device_timeout_s: 600, latency_us: {p50: 1, max: 10000000}}\n").targets[0]
    assert (t.irq_latency_us, t.budgets.wake_timeout_ms, t.budgets.device_timeout_s) == \
        (1000000, 1.0, 600.0)


def test_defaults_must_be_a_mapping(tmp_path):
    msg = error_of(tmp_path, SIM.replace("targets:", "defaults: [irq_kinds]\ntargets:"))
    assert msg == ("rig.yaml:2: defaults: expected a mapping of target keys merged under every "
                   "target (e.g. irq_kinds: [hard]), got a list")
    msg = error_of(tmp_path, SIM.replace("targets:", "defaults:\n  irq_kind: [hard]\ntargets:"))
    assert msg == "rig.yaml:3: defaults.irq_kind: unknown key; did you mean 'irq_kinds'?"


def test_pi_gpio_outside_pigpio_bank_1(tmp_path):
    assert error_of(tmp_path, SIM.replace("pi_gpio: 27", "pi_gpio: 40")) == (
        "rig.yaml:7: targets[0].wiring.ack.pi_gpio: the ack wire's Pi GPIO 40 is outside 0-31: "
        "pigpio callbacks and notifications only cover bank 1 (GPIO 0-31); wire it to a GPIO "
        "0-31")
    reset = SIM + "      reset: {pi_gpio: 32, board_pin: RUN}\n"
    assert error_of(tmp_path, reset).startswith(
        "rig.yaml:8: targets[0].wiring.reset.pi_gpio: the reset wire's Pi GPIO 32 is outside")
    ok = SIM.replace("pi_gpio: 17", "pi_gpio: 0").replace("pi_gpio: 27", "pi_gpio: 31")
    assert load_text(tmp_path, ok).targets[0].wiring.ack.pi_gpio == 31


def test_one_board_pin_spelled_two_ways_on_two_wires(tmp_path):
    msg = error_of(tmp_path, SIM.replace("board_pin: 3", 'board_pin: "GP2"'))
    assert msg == ("rig.yaml:7: targets[0].wiring.ack.board_pin: board pin 'GP2' is already "
                   "wired to the stimulus (targets[0].wiring.stimulus.board_pin 2 is the same "
                   "pin: n, 'n' and 'GPn' name one pin); use another pin")
    for ack in ("gp2", '"2"'):
        assert "already wired to the stimulus" in \
            error_of(tmp_path, SIM.replace("board_pin: 3", f"board_pin: {ack}"))
    # other names compare as written; the reset wire (RUN/EN) only clashes if equal
    ok = SIM.replace("board_pin: 3", "board_pin: X2") + \
        "      reset: {pi_gpio: 22, board_pin: GP2}\n"
    w = load_text(tmp_path, ok).targets[0].wiring
    assert (w.stimulus.board_pin, w.ack.board_pin, w.reset.board_pin) == (2, "X2", "GP2")
    clash = SIM + "      reset: {pi_gpio: 22, board_pin: 3}\n"
    assert error_of(tmp_path, clash) == (
        "rig.yaml:8: targets[0].wiring.reset.board_pin: board pin 3 is already wired to the "
        "ack; use the board's RUN/EN pin")


def test_usb_ids_are_shown_in_hex(tmp_path):
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


def test_flash_and_firmware_image_for_serial_targets(tmp_path):
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


def test_rgpio_backend_defaults_to_port_8889_and_takes_a_sense_line(tmp_path):
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
def test_gpio_address_and_sense_line_errors(tmp_path, extra, wiring, expected):
    msg = error_of(tmp_path, SIM.replace("    kind: sim\n", "    kind: sim\n" + extra) + wiring)
    assert msg.startswith(expected), msg


def test_known_issue_naming_no_test_is_one_line_error(tmp_path):
    msg = error_of(tmp_path, SIM + '    known_issues: {"test_wakes[hard]": flaky}\n')
    assert msg == ("rig.yaml:8: targets[0].known_issues: 'test_wakes[hard]' names no test of "
                   "the suite (did you mean test_wake?)")
    msg = error_of(tmp_path, SIM + '    known_issues: {"test_wake[loop]": flaky}\n')
    assert "test_wake runs with hard, soft, thread, not 'loop'" in msg
    msg = error_of(tmp_path, SIM + '    known_issues: {"test_wake": flaky}\n')
    assert "is not 'test_name[kind]'" in msg


def test_known_issue_keys_are_exactly_the_suites_tests(tmp_path):
    """The config's check and the suite agree: every collected test is a valid key, and a
    key the check accepts is a collected test."""
    from harness.board.sources import IRQ_SOURCES, LOOP_SOURCES
    from harness.config.targets import _unknown_test
    from harness.suite.catalogue import SUITE

    out = subprocess.run([sys.executable, "-m", "pytest", "tests/hil", "--collect-only", "-q",
                          "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True,
                         timeout=120).stdout
    collected = {re.sub(r"\[sim-(\w+)\]", r"[\1]", line.split("::")[-1])
                 for line in out.splitlines() if "::" in line}
    accepted = {f"{n}[{k}]" for n in SUITE for k in IRQ_SOURCES + LOOP_SOURCES
                if not _unknown_test(f"{n}[{k}]")}
    assert collected == accepted


def test_every_accepted_key_is_in_the_readme_config_reference():
    from harness.config.loader import TOP_KEYS
    from harness.config.registry import FLASH, GPIO, POWER, specs
    from harness.config.targets import SUBKEYS, target_keys

    readme = (REPO / "README.md").read_text()
    ref = readme.split("## Config reference")[1].split("\n## ")[0]
    first_cells = [ln.split("|")[1] for ln in ref.splitlines() if ln.startswith("| `")]
    named = " ".join(re.findall(r"`([^`]+)`", " ".join(first_cells)))  # the key column
    keys = TOP_KEYS | target_keys() | {k for ks in SUBKEYS.values() for k in ks} \
        | {k for g in specs(GPIO).values() for k in g.option_keys} \
        | {k for p in specs(POWER).values() for k in (*p.needs, *p.keys)} \
        | {k for f in specs(FLASH).values() for k in f.keys}
    missing = sorted(k for k in keys if not re.search(rf"(^|[\s.{{]){k}\b", named))
    assert not missing, f"not in README's config reference: {missing}"
