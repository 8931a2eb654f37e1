"""A GPIO backend is one module plus one registry line: this module is a whole backend (its
rig and its spec), registered from here with nothing else changed, and the config, the
connection and the results' host record all take it."""

from typing import Any

import pytest

from harness.config import load_config
from harness.config.registry import GPIO, register, unregister
from harness.config.specs import GpioSpec, Section
from harness.gpio import connect_gpio
from harness.reports.results import Results


class ToyRig:
    """Stands in for a daemon's client: remembers how it was connected."""

    def __init__(self, host: str, port: int, wiring: Any, speed: int = 1) -> None:
        self.host, self.port, self.wiring, self.speed = host, port, wiring, speed


def _options(section: Section) -> dict[str, Any]:
    return {"speed": section.integer("speed", 1, 9)} if "speed" in section else {}


SPEC = GpioSpec(rig=ToyRig, daemon="toyd", client="pytest", start="toyd", default_port=7777,
                gpios=(0, 99), gpios_why="toyd has 100 lines", pis=(9,),
                option_keys=frozenset({"speed"}), options=_options)

RIG = """\
version: 1
targets:
  - name: toy
    kind: sim
    gpio: {{backend: toy{extra}}}
    wiring:
      stimulus: {{pi_gpio: 70, board_pin: 2}}
      ack: {{board_pin: 3, pi_gpio: 99}}
"""


@pytest.fixture
def toy():
    register(GPIO, "toy", f"{__name__}:SPEC")
    yield
    unregister(GPIO, "toy")


def load(tmp_path, extra=""):
    (tmp_path / "rig.yaml").write_text(RIG.format(extra=extra))
    return load_config(tmp_path / "rig.yaml").targets[0]


def test_the_config_takes_the_toy_its_keys_and_its_lines(toy, tmp_path):
    t = load(tmp_path, ", speed: 3")
    assert (t.gpio.backend, t.gpio.port, t.gpio.options) == ("toy", 7777, {"speed": 3})
    assert t.wiring.ack.pi_gpio == 99  # its own GPIO range, not another backend's


def test_the_toys_own_check_fails_as_one_line(toy, tmp_path):
    with pytest.raises(Exception) as e:
        load(tmp_path, ", speed: 12")
    assert str(e.value).startswith("rig.yaml:5: targets[0].gpio.speed: expected an integer 1-9")


def test_connect_gpio_builds_the_toys_rig(toy, tmp_path):
    t = load(tmp_path, ", speed: 2")
    rig = connect_gpio(t.gpio.backend, "toy.local", t.gpio.port, t.wiring, **t.gpio.options)
    assert isinstance(rig, ToyRig) and (rig.host, rig.port, rig.speed) == ("toy.local", 7777, 2)


def test_results_record_the_toys_client(toy, tmp_path):
    host = Results(tmp_path, "rig.yaml").doc["rig"]["host"]
    assert "toy_client" in host


def test_without_the_registry_line_the_config_refuses_it(tmp_path):
    with pytest.raises(Exception) as e:
        load(tmp_path)
    assert "targets[0].gpio.backend: expected one of pigpio | rgpio, got 'toy'" in str(e.value)
