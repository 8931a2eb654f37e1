"""Escalating recovery on the simulated bench: a board that swallows Ctrl-C can't be soft
reset; with a reset wire declared, the rig pulls RUN low, the VM restarts like a reset
board, and the suite goes on. Without one, the error says what to wire."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from harness.board.recovery import HARD, SOFT, recover
from harness.board.session import BoardSession, BoardStopped
from harness.config import load_config
from harness.gpio.pigpio_rig import PigpioRig
from harness.sim.bench import SimBench
from tests.mutants import WEDGE, write_wedge_on_cancel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def wired(tmp_path):
    target = load_config(REPO / "rig_config.yaml").targets[0]
    w = target.wiring
    assert w.reset is not None
    with SimBench(target, flash_dir=tmp_path) as bench:
        pi = PigpioRig(*bench.pigpio_address, w)
        t = BoardSession(bench.serial_port, timeout_s=2)
        try:
            yield bench, pi, t
        finally:
            t.close()
            pi.close()


def test_soft_reset_is_enough_for_a_busy_board(wired):
    bench, pi, t = wired
    t.soft_reset()
    t.start("while True:\n    pass\n")
    assert recover(t, pi) == SOFT
    assert t.exec("print(6 * 7)").strip() == "42"


def test_wedged_board_needs_the_reset_wire(wired):
    bench, pi, t = wired
    t.soft_reset()
    t.start(WEDGE)
    no_reset_wire = copy.copy(pi)
    no_reset_wire.reset_gpio = None
    with pytest.raises(BoardStopped, match="declare wiring.reset"):
        recover(t, no_reset_wire)
    reboots = bench.board.reboots
    assert recover(t, pi) == HARD
    assert bench.board.reboots > reboots
    assert t.exec("print(6 * 7)").strip() == "42"
    assert pi.pi.read(pi.reset_gpio) == 1  # released: the board's pull-up holds RUN high


def test_suite_goes_on_after_a_board_wedges_mid_run(tmp_path):
    """Firmware that hangs (swallowing Ctrl-C) when a waiter is cancelled: a board that came
    up healthy and then hangs is the firmware's failure, recovered by the reset wire, and
    the next scenario still runs and passes."""
    overlay = write_wedge_on_cancel(tmp_path)
    cfg = (REPO / "rig_config.yaml").read_text().replace("device_timeout_s: 10",
                                                           "device_timeout_s: 2")
    (tmp_path / "rig.yaml").write_text(cfg)
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config",
                        str(tmp_path / "rig.yaml"), "--overlay", str(overlay),
                        "--report-dir", str(tmp_path / "r"), "-k",
                        "hard and (cancellation or test_wake)"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    import json

    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    got = {t["scenario"]: t for t in doc["tests"]}
    assert r.returncode == 1, r.stdout[-2000:]
    assert got["cancellation"]["outcome"] == "failed"
    assert got["cancellation"]["message"].startswith("board stopped answering")
    assert got["cancellation"]["message"].endswith(f"{HARD} got it back")
    assert got["wake"]["outcome"] == "passed"


