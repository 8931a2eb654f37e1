"""rig_config.yaml numbers and pins: absurd, non-finite or negative values and pins past any
board or outside pigpio's bank are one line naming the sane range; the edges load."""

import pytest

from tests.unit.configs import SERIAL, SIM


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
def test_nan_infinite_and_negative_budgets_and_thresholds(tmp_path, section, key, error_of):
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
                                                                too_small, too_big, sane, error_of):
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
def test_absurd_serial_settings_name_the_sane_range(tmp_path, line, key, bad, sane, error_of):
    target = SERIAL_ONE_TARGET
    if "serial:" in line:
        target = target.replace("    serial: {port: /dev/ttyACM0}\n", "")
    msg = error_of(tmp_path, "version: 1\ntargets:\n" + target + line % bad + "\n")
    assert f": {key}: expected a" in msg and sane in msg and ", got " in msg, msg


def test_a_board_pin_past_any_board_is_an_error(tmp_path, error_of):
    msg = error_of(tmp_path, SIM.replace("board_pin: 2}", "board_pin: 100000}"))
    assert msg == ("rig.yaml:6: targets[0].wiring.stimulus.board_pin: expected an integer "
                   "from 0 to 1023, got 100000")


def test_wake_timeout_must_be_shorter_than_the_device_timeout(tmp_path, error_of):
    msg = error_of(tmp_path, SIM + "    budgets: {wake_timeout_ms: 20000, device_timeout_s: 10}\n")
    assert msg.startswith("rig.yaml:8: targets[0].budgets.wake_timeout_ms: wake_timeout_ms "
                          "(20000 ms) must be shorter than device_timeout_s (10 s)"), msg


def test_sane_settings_at_the_range_edges_load(tmp_path, load_text):
    t = load_text(tmp_path, SIM + "    irq_latency_us: 1000000\n    budgets: {wake_timeout_ms: 1, "
                  "device_timeout_s: 600, latency_us: {p50: 1, max: 10000000}}\n").targets[0]
    assert (t.irq_latency_us, t.budgets.wake_timeout_ms, t.budgets.device_timeout_s) == \
        (1000000, 1.0, 600.0)


def test_defaults_must_be_a_mapping(tmp_path, error_of):
    msg = error_of(tmp_path, SIM.replace("targets:", "defaults: [irq_kinds]\ntargets:"))
    assert msg == ("rig.yaml:2: defaults: expected a mapping of target keys merged under every "
                   "target (e.g. irq_kinds: [hard]), got a list")
    msg = error_of(tmp_path, SIM.replace("targets:", "defaults:\n  irq_kind: [hard]\ntargets:"))
    assert msg == "rig.yaml:3: defaults.irq_kind: unknown key; did you mean 'irq_kinds'?"


def test_pi_gpio_outside_pigpio_bank_1(tmp_path, load_text, error_of):
    assert error_of(tmp_path, SIM.replace("pi_gpio: 27", "pi_gpio: 40")) == (
        "rig.yaml:7: targets[0].wiring.ack.pi_gpio: the ack wire's Pi GPIO 40 is outside 0-31: "
        "pigpio callbacks and notifications only cover bank 1 (GPIO 0-31); wire it to a GPIO "
        "0-31")
    reset = SIM + "      reset: {pi_gpio: 32, board_pin: RUN}\n"
    assert error_of(tmp_path, reset).startswith(
        "rig.yaml:8: targets[0].wiring.reset.pi_gpio: the reset wire's Pi GPIO 32 is outside")
    ok = SIM.replace("pi_gpio: 17", "pi_gpio: 0").replace("pi_gpio: 27", "pi_gpio: 31")
    assert load_text(tmp_path, ok).targets[0].wiring.ack.pi_gpio == 31


def test_one_board_pin_spelled_two_ways_on_two_wires(tmp_path, load_text, error_of):
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
