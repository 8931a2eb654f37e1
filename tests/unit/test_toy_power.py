"""A power method is one module plus one registry line: this module is a whole method (its
keys and checks, its switch, its doctor check and its spec), registered from here with
nothing else changed, and the config, a power cycle, recovery's switch and doctor's check all
take it."""

from typing import Any

import pytest

from harness.config import load_config
from harness.config.registry import POWER, register, unregister
from harness.config.specs import PowerSpec, Section
from harness.power import PowerJob, PowerSwitch, check_switch, power_cycle

SWITCHED: list[str] = []


def _check(s: Section) -> dict[str, Any]:
    return {"relay": s.integer("relay", 1, 8)}


def switch(job: PowerJob, on: bool) -> str | None:
    SWITCHED.append(f"relay {job.config.options['relay']} {'on' if on else 'off'} {job.port}")
    return "/dev/toy-back" if on else None


def ready(job: PowerJob) -> str:
    return "toy: the relay answers"


SPEC = PowerSpec(needs=("relay",), defaults={"off_s": 0.0}, check=_check, switch=switch,
                 ready=ready, describe=lambda c: f"toy relay {c.options['relay']}")

RIG = """\
version: 1
targets:
  - name: pico
    kind: serial
    power: {{method: toy, relay: {relay}{extra}}}
    serial: {{port: /dev/ttyACM0}}
    wiring: {{stimulus: {{pi_gpio: 17, board_pin: 2}}, ack: {{board_pin: 3, pi_gpio: 27}}}}
"""


@pytest.fixture
def toy():
    register(POWER, "toy", f"{__name__}:SPEC")
    SWITCHED.clear()
    yield
    unregister(POWER, "toy")


def load(tmp_path, extra="", relay=3):
    (tmp_path / "rig.yaml").write_text(RIG.format(extra=extra, relay=relay))
    return load_config(tmp_path / "rig.yaml").targets[0]


def test_the_config_takes_the_toy_its_keys_and_its_defaults(toy, tmp_path):
    power = load(tmp_path, ", timeout_s: 4").power
    assert (power.method, power.off_s, power.timeout_s) == ("toy", 0.0, 4.0)
    assert power.options == {"relay": 3}


def test_the_toys_own_check_fails_as_one_line(toy, tmp_path):
    with pytest.raises(Exception) as e:
        load(tmp_path, relay=9)
    assert str(e.value).startswith("rig.yaml:5: targets[0].power.relay: expected an integer "
                                   "1-8, got 9")


def test_a_key_the_toy_does_not_take_is_one_line(toy, tmp_path):
    with pytest.raises(Exception) as e:
        load(tmp_path, ", location: 1-1")
    assert str(e.value).startswith("rig.yaml:5: targets[0].power.location: not a key of "
                                   "method toy")


def test_recovery_cycles_through_the_toys_switch(toy, tmp_path):
    t = load(tmp_path)
    switch_ = PowerSwitch(t.power, t.serial)
    assert switch_.describe() == "toy relay 3"
    assert switch_.cycle("/dev/ttyACM0") == "/dev/toy-back"
    assert SWITCHED == ["relay 3 off /dev/ttyACM0", "relay 3 on /dev/ttyACM0"]
    assert power_cycle(PowerJob(t.power, "/dev/ttyACM1")) == "/dev/toy-back"


def test_doctor_asks_the_toy(toy, tmp_path):
    assert check_switch(PowerJob(load(tmp_path).power)) == "toy: the relay answers"
    assert SWITCHED == []  # doctor switches nothing


def test_without_the_registry_line_the_config_refuses_it(tmp_path):
    with pytest.raises(Exception) as e:
        load(tmp_path)
    assert str(e.value).startswith("rig.yaml:5: targets[0].power.relay: unknown key")
