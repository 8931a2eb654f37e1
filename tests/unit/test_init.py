"""`tsfrig init` writes a rig config that loads, never over an existing one without --force;
`tsfrig --version` says which tsfrig it is."""

import subprocess
import sys

import pytest

import harness
from harness.config import load_config
from harness.config.registry import GPIO, spec


def tsfrig(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_init_writes_the_simulated_bench_and_keeps_an_existing_file(tmp_path):
    r = tsfrig(tmp_path, "init")
    assert r.returncode == 0, r.stderr
    cfg = load_config(tmp_path / "rig_config.yaml")
    assert [t.kind for t in cfg.targets] == ["sim"]
    (tmp_path / "rig_config.yaml").write_text("# mine\n")
    r = tsfrig(tmp_path, "init", "--board", "pico")
    assert r.returncode == 2
    assert r.stderr.strip() == ("tsfrig init: rig_config.yaml already exists; keep it, or "
                                "pass --force to replace it")
    assert (tmp_path / "rig_config.yaml").read_text() == "# mine\n"
    assert tsfrig(tmp_path, "init", "--board", "pico", "--force").returncode == 0
    assert load_config(tmp_path / "rig_config.yaml").targets[0].kind == "serial"


@pytest.mark.parametrize("board", ["pico", "esp32", "pyboard", "nucleo"])
@pytest.mark.parametrize("pi", [4, 5])
def test_init_for_a_board_on_a_pi_loads_with_that_pis_gpio_daemon(tmp_path, board, pi):
    out = tmp_path / f"{board}.yaml"
    r = tsfrig(tmp_path, "init", "--board", board, "--pi", str(pi), "--config", str(out))
    assert r.returncode == 0, r.stderr
    t = load_config(out).targets[0]
    gpio = spec(GPIO, t.gpio.backend)
    assert pi in gpio.pis and t.gpio.port == gpio.default_port
    assert (t.wiring.stimulus_sense is not None) == gpio.stimulus_sense
    assert "#" in out.read_text()  # commented, to start from


def test_version():
    r = tsfrig(".", "--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"tsfrig {harness.__version__}")
