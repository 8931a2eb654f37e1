"""rig_config.yaml validation: every problem is one line naming the file, the line, the key
and the fix; `tsfrig run` turns it into exit code 2 before touching any bench."""

import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent

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


def load_text(tmp_path: Path, text: str):
    path = tmp_path / "rig.yaml"
    path.write_text(text)
    return load_config(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    msg = str(e.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    return msg


def test_shipped_config_is_the_simulated_bench():
    rig = load_config(REPO / "rig_config.yaml")
    assert [t.kind for t in rig.targets][0] == "sim"
    t = rig.targets[0]
    assert (t.wiring.stimulus_pi_gpio, t.wiring.ack_pi_gpio) == (17, 27)
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
