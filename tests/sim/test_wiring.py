"""The real-bench code path (kind: serial) against a running `tsfrig sim`, as a person would
point it at a Pi and a USB board: a correct wiring runs the suite; a wrong wire is a bench
fault named by the wire (exit 2, identity still written), not a page of lost wake-ups."""

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.board.session import BoardSession
from harness.board.wiring import check_stimulus
from harness.config import load_config
from harness.gpio import connect_gpio
from harness.sim.bench import SimBench

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_serial_target(serial_target_yaml):
    """`tsfrig run -k K` on a serial target pointed at the running sim, its stimulus and ack
    wires on these board pins: (the process, its results.json)."""
    def run(tmp_path: Path, sim, stim_pin: int, ack_pin: int, k: str):
        cfg = tmp_path / "bench.yaml"
        cfg.write_text(serial_target_yaml(sim.serial_port, sim.gpio_host, sim.gpio_port,
                                          stim_pin, ack_pin))
        r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(cfg),
                            "--report-dir", str(tmp_path / "r"), "-k", k],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
        doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
        return r, doc
    return run


def test_correct_wiring_runs_the_suite_over_the_serial_path(running_sim, tmp_path,
                                                            run_serial_target):
    r, doc = run_serial_target(tmp_path, running_sim, 2, 3, "test_wake and hard")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    t = doc["targets"][0]
    assert t["kind"] == "serial" and t["wiring_check"] == {"stimulus": "3/3 pulses",
                                                           "ack": "4/4 edges"}
    assert [x["outcome"] for x in doc["tests"]] == ["passed"]


def test_miswired_stimulus_is_a_bench_fault_named_by_the_wire(running_sim, tmp_path,
                                                              run_serial_target):
    r, doc = run_serial_target(tmp_path, running_sim, 4, 3, "test_wake and hard")
    assert r.returncode == 2
    assert ("wiring self-test: Pi GPIO 17 -> board pin 4: the board counted 0 of 3 pulses"
            in r.stdout + r.stderr)
    assert doc["targets"][0]["firmware"]["implementation"] == "micropython"  # not lost
    # every test of the target is an error (not measured), none a failure or a pass
    assert [t["outcome"] for t in doc["tests"]] == ["error"] and doc["verdict"] == "error"
    assert "wiring self-test" in doc["tests"][0]["message"]
    assert doc["bench_fault"].endswith("wiring.stimulus in the rig config")
    said = [ln for ln in r.stderr.splitlines() if "wiring self-test" in ln]
    assert said and said[0].startswith("tsfrig: bench fault (not a firmware verdict)")
    assert "BENCH FAULT" in (tmp_path / "r" / "latest" / "index.html").read_text()


def test_miswired_ack_is_a_bench_fault_named_by_the_wire(running_sim, tmp_path, run_serial_target):
    r, _ = run_serial_target(tmp_path, running_sim, 2, 5, "test_wake and hard")
    assert r.returncode == 2
    assert "wiring self-test: board pin 5 -> Pi GPIO 27: the Pi saw 0 of 4 edges" \
        in r.stdout + r.stderr


def test_a_board_whose_interrupts_come_seconds_late_is_not_called_a_loose_jumper():
    """Injected IRQ latency past the self-test's deadline (3 s, beyond what a config may
    set): the pulses all arrive late, so the wire is fine and the self-test says the board's
    interrupts are late instead of pointing at the jumper and the ground."""
    target = dataclasses.replace(load_config(REPO / "rig_config.yaml").targets[0],
                                 irq_latency_us=3_000_000)
    with tempfile.TemporaryDirectory() as flash, \
            SimBench(target, flash_dir=Path(flash)) as bench:
        rig = connect_gpio("pigpio", *bench.gpio_addresses["pigpio"], target.wiring)
        board = BoardSession(bench.serial_port)
        try:
            board.soft_reset()
            board.upload()
            said = check_stimulus(board, rig, target.wiring)
        finally:
            board.close()
            rig.close()
    assert said.startswith("3/3 pulses, ") and "the board takes its interrupts late" in said
