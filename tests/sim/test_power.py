"""Power as recovery's last step: a wedged simulated board whose RUN pin does nothing comes
back from a power cycle (the port goes away and returns, the VM cold-boots) and the verdict
names that step; the command, sysfs and uhubctl switches run for real; `power:` errors are
one config line."""

import json
import os
import threading
import time
from pathlib import Path

import pytest

from harness.benches.sim import SimProvider
from harness.board.recovery import recover_after_fault
from harness.board.session import BoardSession, BoardStopped
from harness.config import ConfigError, PowerConfig, Wire, Wiring, load_config
from harness.gpio.pigpio_rig import PigpioRig
from harness.power import PowerError, PowerJob, power_cycle, switch_for
from harness.sim.bench import SimBench
from harness.sim.power import switch
from harness.verdict import classify, evidence_from
from tests.mutants import WEDGE, write_wedge_on_cancel

REPO = Path(__file__).resolve().parents[2]


def test_power_cycle_gets_back_a_board_the_run_pin_cannot(tmp_path):
    rig = load_config(REPO / "rig_config.yaml")
    target = rig.targets[0]
    sim = SimProvider(target, rig)
    addr = sim.start()
    w = target.wiring
    pi = PigpioRig(addr.gpio_host, addr.gpio_port,  # GPIO 23 goes nowhere on this bench
                  Wiring(w.stimulus, w.ack, Wire(23, "RUN")))
    t = BoardSession(addr.serial_port, timeout_s=2)
    try:
        t.soft_reset()
        t.exec("survives_a_soft_reset_only = 1")
        t.start("print('wedged')\n" + WEDGE)
        wait_for_output(t, b"wedged")  # Ctrl-C before the loop's try would just stop it
        hung = BoardStopped("board stopped answering",
                            recovery=recover_after_fault(t, pi, switch_for(target, addr)))
        assert hung.recovery.step == "power cycle (sim)", hung.recovery
        verdict = classify(evidence_from(hung))
        assert verdict.outcome == "failed"  # a board that hung is the firmware's
        assert verdict.cause.endswith("power cycle (sim) got it back")
        assert t.port == addr.serial_port  # nothing held the old device: same name
        assert t.exec("print('survives_a_soft_reset_only' in globals())").strip() == "False"
        assert t.exec("print(6 * 7)").strip() == "42"
    finally:
        t.close()
        pi.close()
        sim.stop()


def test_sim_power_takes_the_port_away_and_cold_boots(tmp_path):
    """Off: the VM dies and the device node goes. On: the same name comes back once nobody
    holds it (else another, as a USB board can re-enumerate), with a freshly booted board."""
    target = load_config(REPO / "rig_config.yaml").targets[0]
    with SimBench(target, flash_dir=tmp_path) as bench:
        board, port = bench.board, bench.serial_port
        vm = board.vm_pid
        assert switch(bench.power.path, False, 5) is None
        assert not os.path.exists(port) and board.vm_pid is None
        assert switch(bench.power.path, True, 5) == port
        assert board.vm_pid not in (None, vm) and board.resets[-1] == ("power", "power cycle")
        held = os.open(port, os.O_RDWR | os.O_NOCTTY)  # a client that never lets go
        try:
            switch(bench.power.path, False, 5)
            again = switch(bench.power.path, True, 5)
            assert again not in (None, port) and os.path.exists(again)
        finally:
            os.close(held)
        t = BoardSession(again, timeout_s=2)
        try:
            t.soft_reset()
            assert t.exec("print(6 * 7)").strip() == "42"
        finally:
            t.close()


def wait_for_output(t: BoardSession, marker: bytes, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    seen = b""
    while marker not in seen:
        assert time.monotonic() < deadline, f"the board never printed {marker!r}: {seen!r}"
        seen += t.serial.read(64)  # pyserial's own 50 ms timeout paces this loop


def test_a_run_without_a_reset_wire_is_rescued_by_the_power_switch(tmp_path, tsfrig):
    """The suite through `tsfrig run`: a sim target's default power switch is recovery's
    step after the soft reset, and the failure message names it."""
    cfg = (REPO / "rig_config.yaml").read_text().replace("device_timeout_s: 10",
                                                           "device_timeout_s: 2")
    cfg = "\n".join(ln for ln in cfg.splitlines() if "reset: {pi_gpio" not in ln)
    (tmp_path / "rig.yaml").write_text(cfg)
    r = tsfrig("run", "--config", str(tmp_path / "rig.yaml"), "--overlay",
               str(write_wedge_on_cancel(tmp_path)), "--report-dir", str(tmp_path / "r"),
               "-k", "hard and (cancellation or test_wake)", timeout=300)
    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    got = {t["scenario"]: t for t in doc["tests"]}
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert got["cancellation"]["message"].startswith("board stopped answering")
    assert got["cancellation"]["message"].endswith("power cycle (sim) got it back")
    assert got["wake"]["outcome"] == "passed"  # the next scenario ran on the powered board


def test_command_switch_runs_off_then_on(tmp_path):
    log = tmp_path / "switch.log"
    script = tmp_path / "switch.sh"
    script.write_text(f'#!/bin/sh\necho "$1 $2" >> {log}\n')
    script.chmod(0o755)
    cfg = PowerConfig("command", off_s=0.05, timeout_s=5,
                      options={"off": f"{script} off {{port}}", "on": f"{script} on {{port}}"})
    assert power_cycle(PowerJob(cfg, port="/dev/ttyACM0")) is None
    assert log.read_text().splitlines() == ["off /dev/ttyACM0", "on /dev/ttyACM0"]
    one = PowerConfig("command", timeout_s=5,
                      options={"cycle": f"{script} cycle {{serial_number}}"})
    power_cycle(PowerJob(one, serial_number="E66038B7"))
    assert log.read_text().splitlines()[-1] == "cycle E66038B7"


def test_command_switch_failure_is_one_line_naming_the_step(tmp_path):
    cfg = PowerConfig("command", timeout_s=5,
                      options={"off": "sh -c 'echo relay busy >&2; exit 3'", "on": "true"})
    with pytest.raises(PowerError) as e:
        power_cycle(PowerJob(cfg))
    assert str(e.value) == ("power: command off (sh): exit status 3: relay busy; check "
                            "power.off runs by hand")


def test_sysfs_switch_writes_1_then_0(tmp_path):
    """The `disable` file as a FIFO, so both writes are seen in order."""
    fifo = tmp_path / "disable"
    os.mkfifo(fifo)
    seen: list[str] = []

    def read_twice() -> None:
        for _ in range(2):
            with open(fifo) as f:
                seen.append(f.read())

    reader = threading.Thread(target=read_twice, daemon=True)
    reader.start()
    power_cycle(PowerJob(PowerConfig("sysfs", 0.01, 5, {"path": fifo})))
    reader.join(5)
    assert seen == ["1", "0"]


def test_missing_uhubctl_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a host without uhubctl
    cfg = PowerConfig("uhubctl", timeout_s=5, options={"location": "1-1.2", "port": "3"})
    with pytest.raises(PowerError, match=r"^power: uhubctl off \(uhubctl 1-1.2 port 3\): "
                                         r"uhubctl not found; install uhubctl"):
        power_cycle(PowerJob(cfg))


@pytest.mark.parametrize("power, error", [
    ("{method: uhubctl, port: 3}", "rig.yaml:5: targets[0].power.location: missing"),
    ("{method: uhubctl, location: 1-1, port: three}",
     "rig.yaml:5: targets[0].power.port: expected a hub port number like 3"),
    ("{method: sysfs, path: /tmp/x}", "rig.yaml:5: targets[0].power.path: expected the USB "
                                      "port's `disable` file"),
    ("{method: command, off: 'relay 0'}", "rig.yaml:5: targets[0].power: method command "
                                          "needs off: and on: templates"),
    ("{method: command, cycle: 'relay {pin}'}", "rig.yaml:5: targets[0].power.cycle: bad "
                                                "placeholder 'pin'"),
    ("{method: sim}", "rig.yaml:5: targets[0].power.method: sim switches only a simulated"),
    ("{method: sysfs, path: /x/disable, location: 1-1}",
     "rig.yaml:5: targets[0].power.location: not a key of method sysfs"),
])
def test_power_config_errors_name_the_line_and_key(tmp_path, power, error):
    (tmp_path / "rig.yaml").write_text(
        "version: 1\ntargets:\n  - name: pico\n    kind: serial\n"
        f"    power: {power}\n    serial: {{port: /dev/ttyACM0}}\n"
        "    wiring: {stimulus: {pi_gpio: 17, board_pin: 2}, ack: {board_pin: 3, pi_gpio: 27}}\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "rig.yaml")
    assert str(e.value).startswith(error), e.value
    assert "\n" not in str(e.value)
