"""rig_config.yaml validation: every problem is one line naming the file, the line, the key
and the fix; `tsfrig run` turns it into exit code 2 before touching any bench."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import ConfigError, load_config
from tests.unit.configs import SERIAL, SIM

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_is_the_simulated_bench():
    rig = load_config(REPO / "rig_config.yaml")
    assert [t.kind for t in rig.targets][0] == "sim"
    t = rig.targets[0]
    assert (t.wiring.stimulus.pi_gpio, t.wiring.ack.pi_gpio) == (17, 27)
    assert t.budgets.latency_us["p50"] <= t.budgets.latency_us["p99"]


def test_defaults_merge_under_targets_and_targets_win(tmp_path, load_text):
    text = SIM.replace("targets:", "defaults:\n  irq_kinds: [hard]\n"
                       "  budgets: {wake_timeout_ms: 50, device_timeout_s: 3}\ntargets:")
    text += "    budgets: {wake_timeout_ms: 80}\n"
    t = load_text(tmp_path, text).targets[0]
    assert t.irq_kinds == ("hard",)
    assert t.budgets.wake_timeout_ms == 80 and t.budgets.device_timeout_s == 3


def test_unknown_key_names_its_line_and_a_likely_fix(tmp_path, error_of):
    msg = error_of(tmp_path, SIM + "    second_waiters: raises\n")
    assert msg == ("rig.yaml:8: targets[0].second_waiters: unknown key; "
                   "did you mean 'second_waiter'?")


def test_wrong_type_names_key_line_and_value(tmp_path, error_of):
    msg = error_of(tmp_path, SIM.replace("pi_gpio: 17", "pi_gpio: seventeen"))
    assert msg.startswith("rig.yaml:6: targets[0].wiring.stimulus.pi_gpio: expected an integer")
    assert "'seventeen'" in msg


def test_enum_lists_the_choices(tmp_path, error_of):
    msg = error_of(tmp_path, SIM + "    second_waiter: sometimes\n")
    assert "rig.yaml:8: targets[0].second_waiter" in msg
    assert "second-wins | first-wins | both-wake | raises" in msg


def test_pin_wired_twice_within_a_target(tmp_path, error_of):
    msg = error_of(tmp_path, SIM.replace("pi_gpio: 27", "pi_gpio: 17"))
    assert msg.startswith("rig.yaml:7: targets[0].wiring.ack.pi_gpio: Pi GPIO 17 is already")
    msg = error_of(tmp_path, SIM.replace("board_pin: 3", "board_pin: 2"))
    assert "targets[0].wiring.ack.board_pin: board pin 2 is already wired" in msg


def test_pi_gpio_shared_by_two_real_targets_on_one_pigpiod(tmp_path, error_of):
    text = "version: 1\ntargets:\n" + SERIAL.format(name="a", port="/dev/ttyACM0", stim=17,
                                                    ack=27)
    text += SERIAL.format(name="b", port="/dev/ttyACM1", stim=22, ack=17)
    msg = error_of(tmp_path, text)
    assert msg.startswith("rig.yaml:16: targets[1].wiring.ack.pi_gpio: Pi GPIO 17 on bench-pi")
    assert "targets[0]" in msg


def test_serial_port_shared_by_two_targets(tmp_path, error_of):
    text = "version: 1\ntargets:\n" + SERIAL.format(name="a", port="/dev/ttyACM0", stim=17,
                                                    ack=27)
    text += SERIAL.format(name="b", port="/dev/ttyACM0", stim=22, ack=23)
    assert "targets[1].serial.port: /dev/ttyACM0 is already targets[0]" in \
        error_of(tmp_path, text)


def test_missing_sections(tmp_path, error_of):
    assert error_of(tmp_path, "version: 1\n") == \
        "rig.yaml:1: targets: missing; add it (see README, Config reference)"
    no_wiring = "\n".join(SIM.splitlines()[:4]) + "\n"
    assert "targets[0].wiring: missing" in error_of(tmp_path, no_wiring)
    no_ack = SIM.replace("      ack: {board_pin: 3, pi_gpio: 27}\n", "")
    assert "targets[0].wiring.ack: missing" in error_of(tmp_path, no_ack)
    serial_without_port = SIM.replace("kind: sim", "kind: serial")
    assert "targets[0].serial: missing" in error_of(tmp_path, serial_without_port)


def test_target_kind_specific_keys(tmp_path, error_of):
    text = SIM.replace("kind: sim", "kind: serial\n    serial: {port: /dev/ttyACM0}")
    text += "    irq_wake: poll\n"
    assert "targets[0].irq_wake: only for kind: sim; remove it" in error_of(tmp_path, text)
    text = SIM.replace("kind: sim", "kind: serial\n    serial: {port: auto}")
    assert "'auto' needs vid, pid or serial_number" in error_of(tmp_path, text)


def test_duplicate_names_and_keys(tmp_path, error_of):
    text = SIM + SIM.split("targets:\n")[1]
    assert "targets[1].name: 'sim' is also targets[0]" in error_of(tmp_path, text)
    text = SIM + "    kind: serial\n"
    assert error_of(tmp_path, text).startswith("rig.yaml:8: kind: duplicate key (first at line 4)")


def test_budgets_must_not_decrease_and_paths_must_exist(tmp_path, error_of):
    text = SIM + "    budgets:\n      latency_us: {p50: 500, p90: 100}\n"
    assert "p50 (500) > p90 (100)" in error_of(tmp_path, text)
    text = SIM + "    firmware: {overlay: no-such-dir}\n"
    msg = error_of(tmp_path, text)
    assert "targets[0].firmware.overlay: directory" in msg and "does not exist" in msg


def test_unreadable_and_invalid_files(tmp_path, error_of):
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


def test_file_that_is_not_utf8(tmp_path, error_of):
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


def test_recursive_alias_and_yaml_syntax_errors_are_one_line(tmp_path, load_text, error_of):
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


def test_top_level_must_be_a_mapping(tmp_path, error_of):
    assert error_of(tmp_path, "- version: 1\n- targets: []\n") == (
        "rig.yaml:1: (top level): the top level must be a mapping with version: and targets:, "
        "got a list; start from the shipped rig_config.yaml")
    assert "must be a mapping with version: and targets:, got 'hello'" in \
        error_of(tmp_path, "hello\n")


def test_yaml_booleans_are_not_numbers(tmp_path, error_of):
    assert error_of(tmp_path, SIM.replace("version: 1", "version: true")) == (
        "rig.yaml:1: version: unsupported version true (a YAML boolean); write version: 1")
    assert error_of(tmp_path, SIM.replace("version: 1", "version: 1.0")).endswith(
        "unsupported version 1.0; write version: 1")
    assert error_of(tmp_path, SIM + "    budgets: {wake_timeout_ms: true}\n") == (
        "rig.yaml:8: targets[0].budgets.wake_timeout_ms: expected a number from 1 to 60000 ms, "
        "got true (a YAML boolean)")
    assert "got false (a YAML boolean)" in error_of(tmp_path, SIM + "    irq_latency_us: no\n")


def test_known_issue_naming_no_test_is_one_line_error(tmp_path, error_of):
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
    from harness.suite.catalogue import suite_tests

    out = subprocess.run([sys.executable, "-m", "pytest", "tests/hil", "--collect-only", "-q",
                          "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True,
                         timeout=120).stdout
    collected = {re.sub(r"\[sim-(\w+)\]", r"[\1]", line.split("::")[-1])
                 for line in out.splitlines() if "::" in line}
    suite = suite_tests()
    accepted = {f"{n}[{k}]" for n in suite for k in IRQ_SOURCES + LOOP_SOURCES
                if not _unknown_test(f"{n}[{k}]", suite)}
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
