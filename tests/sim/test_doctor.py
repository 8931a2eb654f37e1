"""`tsfrig doctor` as a person runs it on a new bench: all ✓ and exit 0 on the shipped
(simulated) bench, with --json a document a script can read; a wrong board pin, a reset wire
to nowhere and a missing serial port are ✗ lines with their fix, the checks that need them
are skipped, exit 2; a config error is one ✗ line."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def lines_by_check(stdout: str) -> dict[str, str]:
    """'✓ raw REPL: answers ...' -> {'raw REPL': '✓ raw REPL: answers ...'}"""
    return {ln[2:].split(":", 1)[0]: ln for ln in stdout.splitlines() if ln[:1] in "✓✗-"}


def test_doctor_passes_the_shipped_bench_and_speaks_json(tsfrig):
    r = tsfrig("doctor", "--json", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    status = {c["check"]: c["status"] for c in doc["checks"]}
    assert doc["passed"] is True and doc["target"] == "sim"
    assert [c for c, s in status.items() if s == "fail"] == []
    for check in ("config", "bench", "GPIO daemon", "serial port", "raw REPL", "identity",
                  "profile", "wire stimulus", "wire ack", "wire reset", "power switch",
                  "clock drift"):
        assert status[check] == "pass", (check, doc)
    detail = {c["check"]: c["detail"] for c in doc["checks"]}
    assert "edge timestamps to 1 µs" in detail["GPIO daemon"]  # the sim's ticks are exact
    assert detail["wire stimulus"] == "Pi GPIO 17 -> board pin 2: 3/3 pulses"
    assert " ppm over " in detail["clock drift"]


def test_miswired_bench_names_each_broken_wire_with_its_fix(running_sim, tmp_path, tsfrig,
                                                            serial_target_yaml):
    """A real-bench config pointed at the sim: stimulus to the wrong board pin, the reset wire
    on a Pi GPIO the bench doesn't connect."""
    a = running_sim
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(serial_target_yaml(a.serial_port, a.gpio_host, a.gpio_port, 4, 3)
                   + "      reset: {pi_gpio: 23, board_pin: RUN}\n")
    r = tsfrig("doctor", "--config", str(cfg), timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    got = lines_by_check(r.stdout)
    assert got["raw REPL"].startswith("✓")
    assert got["wire stimulus"] == (
        "✗ wire stimulus: Pi GPIO 17 -> board pin 4: the board counted 0 of 3 pulses, and no "
        "more in a further 5 s, so the wire likely does not reach the pin (or the board takes "
        "no pin interrupts at all) — check the stimulus jumper, the shared ground and "
        "wiring.stimulus in the rig config")
    assert got["wire ack"].startswith("✓ wire ack: board pin 3 -> Pi GPIO 27")
    assert got["wire reset"].startswith("✗ wire reset: Pi GPIO 23 -> board RUN: the board did "
                                        "not reset") and "— check the reset jumper" in \
        got["wire reset"]
    assert got["clock drift"] == "- clock drift: skipped: needs wire stimulus"


def test_missing_serial_port_and_power_tool_say_what_to_do(running_sim, tmp_path, tsfrig,
                                                           serial_target_yaml):
    a = running_sim
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(serial_target_yaml("/dev/ttyACM97", a.gpio_host, a.gpio_port)
                   + "    power: {method: command, off: 'no-such-relay 0', "
                     "on: 'no-such-relay 1'}\n")
    r = tsfrig("doctor", "--config", str(cfg), timeout=60)
    assert r.returncode == 2
    got = lines_by_check(r.stdout)
    assert got["GPIO daemon"].startswith("✓")
    assert got["serial port"].startswith("✗ serial port: /dev/ttyACM97 does not exist — ")
    assert "USB serial device" in got["serial port"]  # the ones present, or that none is
    assert got["raw REPL"] == "- raw REPL: skipped: needs serial port"
    assert got["power switch"] == ("✗ power switch: power: command: no-such-relay not found — "
                                   "install it or fix power: in the rig config")


def test_board_that_contradicts_its_settings_fails_the_profile_check(tmp_path, tsfrig):
    """A virtual board emulating an esp32 (no hard IRQs, reset on EN) under the shipped
    settings (irq_kinds with hard, reset on RUN); its soft IRQs still time the clock check."""
    text = (REPO / "rig_config.yaml").read_text()
    kind = "    kind: sim                  # sim | serial\n"
    assert kind in text
    (tmp_path / "esp.yaml").write_text(text.replace(kind, kind + "    emulate: esp32\n"))
    r = tsfrig("doctor", "--config", str(tmp_path / "esp.yaml"), timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    got = lines_by_check(r.stdout)
    assert got["profile"].startswith("✗ profile: esp32 ")
    assert "irq_kinds lists hard, but on this board Pin.irq(hard=True) raises TypeError" \
        in got["profile"]
    assert got["clock drift"].startswith("✓ clock drift: board vs Pi ")
    assert [c for c, ln in got.items() if ln.startswith("✗")] == ["profile"]


def test_bad_config_is_one_failed_line(tmp_path, tsfrig):
    cfg = tmp_path / "rig.yaml"
    text = (REPO / "rig_config.yaml").read_text().replace("irq_wake: schedule",
                                                          "irq_wake: sometimes")
    cfg.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "sometimes" in ln)
    r = tsfrig("doctor", "--config", str(cfg), timeout=60)
    assert r.returncode == 2
    assert r.stdout.splitlines() == [
        f"✗ config: rig.yaml:{line}: targets[0].irq_wake: expected one of schedule | poll, "
        "got 'sometimes' — fix that key (see README, Config reference)"]
