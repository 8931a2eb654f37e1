"""Board profiles: the probe on the virtual board, plain and emulating each port; how the
config's keys and the probe's findings combine (resolve_profile); a run on an emulated esp32
whose hard-IRQ tests are "not supported by this port" and exit 0; a config the probe
contradicts, warned once in results.json, index.html and on the terminal; and compare not
counting an unsupported scenario as lost."""

import dataclasses
import functools
import json
from pathlib import Path

import pytest

from harness.board.ports import EMULATED, NO_HARD_ESP32, PROFILES, UNSUPPORTED
from harness.board.profiles import (
    BoardProbe,
    effective_target,
    probe_board,
    resolve_profile,
    skip_reason,
)
from harness.board.session import BoardSession
from harness.config import ConfigError, load_config
from harness.sim.bench import SimBench


@pytest.fixture(scope="module")
def tsfrig(tsfrig):
    """`tsfrig` with a 180 s deadline."""
    return functools.partial(tsfrig, timeout=180)

TARGET = """\
version: 1
targets:
  - name: {name}
    kind: {kind}
{extra}    wiring:
      stimulus: {{pi_gpio: 17, board_pin: 2}}
      ack: {{board_pin: 3, pi_gpio: 27}}
{reset}"""
SIM_BUDGETS = "    budgets: {latency_us: {p50: 3000, p90: 30000, p99: 100000, max: 500000}}\n"


def config(tmp_path: Path, extra: str = "", name: str = "sim", kind: str = "sim",
           file: str = "rig.yaml", reset: str = ""):
    path = tmp_path / file
    reset = f"      reset: {{pi_gpio: 22, board_pin: {reset}}}\n" if reset else ""
    path.write_text(TARGET.format(name=name, kind=kind, extra=extra, reset=reset))
    return load_config(path), path


# ---- the probe on the virtual board ---------------------------------------------------------

@pytest.mark.parametrize("emulate", [None, *EMULATED])
def test_probe_finds_what_each_profile_says(tmp_path, emulate):
    """The board, plain (unix) or emulating a port, answers the probe as that port would, so
    the profile the probe selects matches the board and no warning is said."""
    rig, _ = config(tmp_path, f"    emulate: {emulate}\n" if emulate else "")
    target = rig.targets[0]
    want = PROFILES[emulate or "unix"]
    with SimBench(target) as bench:
        t = BoardSession(bench.serial_port)
        try:
            t.soft_reset()
            t.upload()
            probe = probe_board(t, target.wiring.stimulus.board_pin)
            if emulate is None:  # with no pin to claim, the hard-IRQ question is not asked
                assert probe_board(t).hard_irq is None
        finally:
            t.close()
    assert probe.port == want.name
    assert probe.platform == "linux"  # sys.platform is the unix port's own, emulated or not
    assert probe.hard_irq is ("hard" in want.irq_kinds)
    if not probe.hard_irq:
        assert f"Pin.irq(hard=True) raises {probe.hard_irq_error}" == NO_HARD_ESP32
    assert probe.thread is ("thread" in want.irq_kinds)
    assert probe.sched_depth == want.sched_depth
    assert probe.asyncio == "asyncio" and probe.ticks_period and not probe.errors
    profile, warnings = resolve_profile(target, probe)
    assert (profile.name, profile.irq_kinds, profile.sched_depth) == \
        (want.name, want.irq_kinds, want.sched_depth)
    assert warnings == []
    assert profile.variant == (want.variant_of(want.machine))
    if emulate:
        assert want.machine in probe.machine and "emulating" in probe.machine
        for kind in want.unsupported:
            assert skip_reason(target, profile, kind).startswith(f"{UNSUPPORTED} ({want.name}:")


# ---- resolve_profile: precedence and warnings -------------------------------------------

def board(port: str, **kw) -> BoardProbe:
    """What the probe reports on a typical board of the port (the profile's own answers)."""
    p = PROFILES[port]
    fields = {"platform": p.platforms[0], "sysname": p.platforms[0], "machine": p.machine,
              "hard_irq": "hard" in p.irq_kinds,
              "hard_irq_error": "" if "hard" in p.irq_kinds else "TypeError: extra keyword "
                                                                "arguments given",
              "thread": "thread" in p.irq_kinds, "sched_depth": p.sched_depth,
              "ticks_period": 1 << 30, "asyncio": "asyncio"}
    return BoardProbe(**{**fields, **kw})


def test_profile_defaults_apply_where_the_config_is_silent(tmp_path):
    rig, _ = config(tmp_path, kind="serial", extra="    serial: {port: /dev/ttyACM0}\n")
    profile, warnings = resolve_profile(rig.targets[0], board("rp2"))
    assert warnings == []
    eff = effective_target(rig.targets[0], profile)
    assert eff.irq_kinds == ("hard", "soft", "thread")
    assert eff.budgets.latency_us == PROFILES["rp2"].latency_us
    assert (eff.second_waiter, profile.reset_pin, profile.variant) == \
        ("second-wins", "RUN", "rp2040")


def test_explicit_config_keys_win_over_the_profile(tmp_path):
    extra = ("    serial: {port: /dev/ttyACM0}\n    irq_kinds: [soft]\n"
             "    second_waiter: raises\n    budgets: {latency_us: {p50: 30, p90: 40}}\n")
    rig, _ = config(tmp_path, kind="serial", extra=extra)
    profile, warnings = resolve_profile(rig.targets[0], board("mimxrt"))
    assert warnings == []
    assert profile.irq_kinds == ("soft",) and profile.second_waiter == "raises"
    # per quantile: the config's where given, the profile's elsewhere, never decreasing
    assert profile.latency_us == {"p50": 30, "p90": 40, "p99": 50, "max": 200}
    assert skip_reason(rig.targets[0], profile, "hard") == \
        "sim does not run hard IRQs (irq_kinds in rig config)"


def test_probe_contradicting_config_or_profile_is_one_line_each(tmp_path):
    extra = ("    serial: {port: /dev/ttyUSB0}\n    profile: rp2\n    irq_kinds: [hard, soft]\n"
             "    flash: {method: esptool, chip: esp32}\n")
    rig, _ = config(tmp_path, kind="serial", extra=extra)
    s3 = board("esp32", machine="Generic ESP32S3 module with ESP32-S3", sched_depth=4)
    profile, warnings = resolve_profile(rig.targets[0], s3)
    assert profile.name == "rp2"  # an explicit profile: wins, with a warning
    assert all("\n" not in w for w in warnings)
    text = " | ".join(warnings)
    assert "profile: rp2 is set, but the board reports esp32" in text
    assert "irq_kinds lists hard, but on this board Pin.irq(hard=True) raises TypeError" in text
    assert "schedule queue holds 4 on this board, the rp2 profile says 8" in text
    assert profile.sched_depth == 4  # the board's own, measured
    rig2, _ = config(tmp_path, kind="serial", file="esp.yaml",
                     extra="    serial: {port: /dev/ttyUSB0}\n"
                           "    flash: {method: esptool, chip: esp32}\n")
    profile, warnings = resolve_profile(rig2.targets[0], s3)
    assert (profile.name, profile.variant) == ("esp32", "esp32s3")
    assert warnings == ["the schedule queue holds 4 on this board, the esp32 profile says 8: "
                        "the board's is used",
                        "flash.chip is esp32, but the board is an esp32s3 (Generic ESP32S3 "
                        "module with ESP32-S3): esptool would write at the wrong offset; set "
                        "flash.chip: esp32s3"]


def test_a_board_beyond_its_profile_and_an_unknown_port_are_said(tmp_path):
    rig, _ = config(tmp_path, kind="serial", extra="    serial: {port: /dev/ttyACM0}\n")
    t = rig.targets[0]
    _, warnings = resolve_profile(t, board("stm32", thread=True))  # a THREAD build
    assert warnings == ["the probe found thread IRQs possible on stm32, whose profile has "
                        "none: add thread to irq_kinds to test them"]
    _, warnings = resolve_profile(t, board("rp2", thread=False))
    assert warnings == ["the rp2 profile runs thread, but on this board no _thread module: its "
                        "thread tests will fail; set irq_kinds without it if this build lacks it"]
    _, warnings = resolve_profile(t, board("esp32", hard_irq=True, asyncio="uasyncio"))
    assert warnings == ["the probe found hard IRQs possible on esp32, whose profile has none: "
                        "add hard to irq_kinds to test them",
                        "the board has only uasyncio: the suite imports asyncio, every scenario "
                        "will fail"]
    rig, _ = config(tmp_path, kind="serial", file="en.yaml", reset="EN",
                    extra="    serial: {port: /dev/ttyACM0}\n")
    _, warnings = resolve_profile(rig.targets[0], board("samd"))
    assert warnings == ["wiring.reset.board_pin is 'EN', but samd boards reset on RESET: "
                        "check the wire"]
    other = dataclasses.replace(board("rp2"), platform="renesas-ra", sysname="renesas-ra",
                                machine="EK-RA6M2 with RA6M2")
    profile, warnings = resolve_profile(t, other)
    assert profile.name == "generic" and len(warnings) == 1
    assert warnings[0].startswith("no profile for the board's port renesas-ra (EK-RA6M2")


@pytest.mark.parametrize(("extra", "words"), [
    ("    profile: esp33\n", "rig.yaml:5: targets[0].profile: expected one of auto | rp2"),
    ("    emulate: unix\n", "rig.yaml:5: targets[0].emulate: expected one of rp2 | esp32"),
])
def test_bad_profile_or_emulate_is_one_line(tmp_path, extra, words):
    with pytest.raises(ConfigError) as e:
        config(tmp_path, extra)
    assert str(e.value).startswith(words) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"targets\[0\].emulate: only for kind: sim"):
        config(tmp_path, "    serial: {port: /dev/ttyACM0}\n    emulate: esp32\n",
               kind="serial")


# ---- runs on the simulated bench ----------------------------------------------------------

def results(run_root: Path) -> tuple[dict, str]:
    run = next(p for p in run_root.iterdir() if (p / "results.json").exists())
    return json.loads((run / "results.json").read_text()), (run / "index.html").read_text()


def test_emulated_esp32_skips_hard_as_unsupported_and_compare_passes(tmp_path, tsfrig):
    """The hard-IRQ tests of an esp32 are skipped as the port's, the others run on soft pin
    IRQs (stress included), the run exits 0, and compare against a plain board that passed
    the hard ones finds nothing lost."""
    _, esp = config(tmp_path, f"    emulate: esp32\n{SIM_BUDGETS}", file="esp.yaml")
    r = tsfrig("run", "--config", str(esp), "--report-dir", str(tmp_path / "new"),
               "-k", "test_wake or test_second_waiter or (test_stress and thread)")
    assert r.returncode == 0, r.stderr[-2000:]
    doc, _ = results(tmp_path / "new")
    outcomes = {(t["scenario"], t["irq_kind"]): (t["outcome"], t["message"]) for t in doc["tests"]}
    why = f"Skipped: {UNSUPPORTED} (esp32: {NO_HARD_ESP32})"
    assert outcomes == {("wake", "hard"): ("skipped", why),
                        ("second_waiter", "hard"): ("skipped", why),
                        ("second_waiter", "soft"): ("passed", ""),
                        ("wake", "soft"): ("passed", ""), ("wake", "thread"): ("passed", ""),
                        # every pin IRQ is soft there: edges a full queue drops are the port's
                        ("stress", "thread"): ("passed", "")}
    target = doc["targets"][0]
    assert target["profile"]["name"] == "esp32" and target["profile"]["emulated_by_sim"] == "esp32"
    assert target["probe"]["hard_irq"] is False and target["profile_warnings"] == []

    _, plain = config(tmp_path, SIM_BUDGETS, file="plain.yaml")
    r = tsfrig("run", "--config", str(plain), "--report-dir", str(tmp_path / "base"),
               "-k", "test_wake")
    assert r.returncode == 0, r.stderr[-2000:]
    base_run = next((tmp_path / "base").glob("2*"))
    new_run = next((tmp_path / "new").glob("2*"))
    r = tsfrig("compare", str(base_run), str(new_run))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "INCOMPLETE" not in r.stdout and "REGRESSION" not in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "compare: PASS: 2 scenarios measured, " \
                                                "0 regressions"


def test_config_contradicted_by_the_probe_is_warned_in_every_artefact(tmp_path, tsfrig):
    _, path = config(tmp_path, f"    emulate: samd\n    irq_kinds: [hard, soft, thread]\n"
                               f"{SIM_BUDGETS}")
    r = tsfrig("run", "--config", str(path), "--report-dir", str(tmp_path / "r"),
               "-k", "test_wake and soft")
    assert r.returncode == 0, r.stderr[-2000:]
    doc, html = results(tmp_path / "r")
    warning = ("irq_kinds lists thread, but on this board no _thread module: its thread tests "
               "will fail")
    assert doc["targets"][0]["profile_warnings"] == [warning]
    assert r.stderr.count(f"tsfrig: target sim: profile warning: {warning}") == 1
    assert 'id="profile-warnings"' in html and f"sim: {warning}" in html
