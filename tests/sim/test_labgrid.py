"""kind: labgrid against a real lab on loopback: a real labgrid-coordinator, a real
labgrid-exporter serving a simulated bench's pty through ser2net (RawSerialPort) and its
GPIO daemon (NetworkService), and real `tsfrig run`s through the place: the suite passes
and the place is free after it, a place someone else holds ends the run with exit 2 naming
them, two runs on one place take turns, and SIGTERM or SIGKILL of a run frees the place.

labgrid lives in its own environment (`make labgrid`, as `make test` does); a machine
without it or without ser2net fails these tests, it never skips them."""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config import ConfigError, load_config
from tests.sim.lab import (
    LG_BIN,
    PLACE,
    RIG,
    Lab,
    missing_tools,
    running_lab,
    start_run,
    tagged,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
LEAN = "test_wake and hard"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if missing_tools():
        pytest.fail(missing_tools())
    with running_lab(tmp_path_factory.mktemp("lab")) as the_lab:
        yield the_lab


def test_suite_through_the_place(lab: Lab, tmp_path: Path) -> None:
    run = start_run(lab, tmp_path / "r")  # the whole suite
    code = run.finish(400)
    assert code == 0, run.said()[-3000:]
    assert lab.holder() == "None", "the place is released before tsfrig exits"
    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    target = doc["targets"][0]
    assert (target["kind"], target["place"]) == ("labgrid", PLACE)
    outcomes = {t["outcome"] for t in doc["tests"]}
    assert doc["verdict"] == "pass" and outcomes == {"passed"} and len(doc["tests"]) >= 30, \
        [(t["nodeid"], t["outcome"]) for t in doc["tests"]]
    times = run.trace_times()
    assert times["acquired"] < times["releasing"], times


def test_place_held_by_another_user(lab: Lab, tmp_path: Path) -> None:
    other = {"LG_USERNAME": "ci", "LG_HOSTNAME": "host-2"}
    assert lab.client("-p", PLACE, "acquire", **other).returncode == 0
    try:
        run = start_run(lab, tmp_path / "now", "-k", LEAN)  # --lg-wait 0: no waiting at all
        assert run.finish(60) == 2, run.said()
        assert f"place {PLACE} is acquired by ci@host-2: wait longer" in run.said()
        assert "waiting" not in run.said(), run.said()
        t0 = time.monotonic()
        run = start_run(lab, tmp_path / "r", "-k", LEAN, "--lg-wait", "1")
        code = run.finish(60)
        said = run.said()
        assert code == 2, said
        assert f"tsfrig: waiting for place {PLACE} (acquired by ci@host-2)" in said
        assert said.count("waiting for place") == 1, said  # said once, not once per poll
        assert re.search(rf"bench fault .*place {PLACE} is acquired by ci@host-2", said), said
        assert time.monotonic() - t0 >= 1.0
        assert lab.holder() == "host-2/ci", "tsfrig never takes or frees someone else's place"
        # SIGTERM while it waits: it stops waiting, and nothing is left to take the place later
        run = start_run(lab, tmp_path / "term", "-k", LEAN, "--lg-wait", "60")
        assert run.wait_for("waiting for place", 60), run.said()
        run.proc.send_signal(signal.SIGTERM)
        assert run.finish(30) == 143, run.said()
        assert not [c for _, c in tagged(lab.tag) if "lab_hold" in c]
        assert lab.holder() == "host-2/ci"
    finally:
        lab.client("-p", PLACE, "release", **other)


def test_two_runs_on_one_place_take_turns(lab: Lab, tmp_path: Path) -> None:
    """Both runs start while someone else holds the place, so both must wait; when it comes
    free they race for it through the coordinator, and one runs while the other waits."""
    other = {"LG_USERNAME": "ci", "LG_HOSTNAME": "host-2"}
    assert lab.client("-p", PLACE, "acquire", **other).returncode == 0
    runs = [start_run(lab, tmp_path / name, "-k", LEAN, "--lg-wait", "120") for name in "ab"]
    try:
        for run in runs:
            assert run.wait_for("acquired by ci@host-2", 60), run.said()
    finally:
        lab.client("-p", PLACE, "release", **other)
    codes = [run.finish() for run in runs]
    assert codes == [0, 0], "".join(run.said()[-2000:] for run in runs)
    first, second = sorted(runs, key=lambda run: run.trace_times()["acquired"])
    a, b = first.trace_times(), second.trace_times()
    # the first run closed the board before it let the place go; the second got it after
    assert a["acquired"] < a["releasing"] < b["acquired"] < b["releasing"], (a, b)
    me = (f"{os.environ.get('LG_USERNAME') or getpass.getuser()}@"
          f"{os.environ.get('LG_HOSTNAME') or socket.gethostname()}")
    assert f"tsfrig: waiting for place {PLACE} (acquired by {me})" in second.said(), \
        second.said()
    log = lab.coordinator_log.read_text()
    events = re.findall(rf"^{PLACE}: place (acquired|released)", log, re.M)
    assert events.count("acquired") >= 3, log  # ci@host-2's, then each run's
    assert "acquired acquired" not in " ".join(events), events  # never held twice at once
    assert lab.holder() == "None"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_releases_the_place(lab: Lab, tmp_path: Path, sig: signal.Signals) -> None:
    run = start_run(lab, tmp_path / "r", "-k", "test_wake")  # one test per set source
    assert run.wait_for(" passed", 60), run.said()  # the first done: the run holds the place
    assert lab.holder() != "None"
    if sig == signal.SIGTERM:
        run.proc.send_signal(sig)
    else:  # tsfrig and every process of its group, as a cancelled CI job is killed
        os.killpg(run.proc.pid, sig)
    code = run.finish(60)
    if sig == signal.SIGTERM:  # unwound: released before tsfrig exits
        assert code == 143, run.said()
        assert lab.holder() == "None"
    else:  # the holder process sees tsfrig gone and releases on its own
        assert code == -signal.SIGKILL
        assert wait_until(lambda: lab.holder() == "None", 40, every_s=0.5)
    assert wait_until(lambda: not [c for _, c in tagged(lab.tag) if "lab_hold" in c], 10)


def test_config_and_options_say_what_is_wrong(tmp_path: Path, tsfrig) -> None:
    """No lab needed: a labgrid target without a place, a place on a sim target, --lg-place
    without a labgrid target, a bad --lg-wait, no labgrid-client on PATH, no coordinator."""
    rig = tmp_path / "rig.yaml"
    rig.write_text(RIG.format(place=PLACE).replace(f"    place: {PLACE}\n", ""))
    with pytest.raises(ConfigError, match=r"rig.yaml:3: targets\[0\].place: missing; a labgrid"):
        load_config(rig)
    rig.write_text(RIG.format(place=PLACE).replace("kind: labgrid", "kind: sim"))
    with pytest.raises(ConfigError, match=r"rig.yaml:5: targets\[0\].place: only for kind: "
                                          "labgrid; remove it"):
        load_config(rig)
    rig.write_text(RIG.format(place=PLACE).replace("    irq_kinds:", "    gpio: {host: pi-1}\n"
                                                                     "    irq_kinds:"))
    with pytest.raises(ConfigError, match=r"rig.yaml:6: targets\[0\].gpio: a labgrid target's "
                                          "GPIO daemon is its place's NetworkService"):
        load_config(rig)
    r = tsfrig("run", "--lg-place", PLACE, "--report-dir", str(tmp_path / "r"), timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == ("tsfrig: --lg-place: rig_config.yaml has no kind: labgrid "
                                "target; add one (README, A shared lab) or pick one with "
                                "--target"), r.stderr
    r = tsfrig("run", "--lg-wait", "-3", timeout=60)
    assert r.returncode == 2 and "'-3' is not a number of seconds >= 0" in r.stderr, r.stderr
    rig.write_text(RIG.format(place=PLACE))
    env = {**os.environ, "PATH": "/nonexistent"}
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(rig),
                        "-k", LEAN, "--report-dir", str(tmp_path / "r")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "bench fault (not a firmware verdict): target lab: labgrid-client is not on PATH: " \
           "install labgrid 26.0.1" in r.stderr, r.stderr
    env = {**os.environ, "PATH": f"{LG_BIN}{os.pathsep}{os.environ['PATH']}",
           "LG_COORDINATOR": "127.0.0.1:1"}  # nothing listens there
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(rig),
                        "-k", LEAN, "--report-dir", str(tmp_path / "r")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert f"target lab: place {PLACE} could not be acquired from the coordinator " \
           "127.0.0.1:1: " in r.stderr and "check LG_COORDINATOR" in r.stderr, r.stderr


def test_doctor_through_the_place(lab: Lab) -> None:
    """`tsfrig doctor` on a labgrid target checks the bench the place names, then frees it."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "doctor", "--config", str(lab.rig), "--json"],
        cwd=REPO, env=lab.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    status = {c["check"]: c["status"] for c in doc["checks"]}
    assert doc["passed"] and status["raw REPL"] == "pass" and status["wire ack"] == "pass", status
    assert lab.holder() == "None", "doctor releases the place it acquired"


def test_parallel_run_with_a_place_and_a_sim(lab: Lab, tmp_path: Path) -> None:
    """`-n 2` with a labgrid target beside a simulated one: the place is acquired and freed
    by the worker that tests it, and the run is the one merged run."""
    rig = tmp_path / "rig.yaml"
    sim = lab.rig.read_text().split("targets:\n", 1)[1].replace(
        "name: lab\n    kind: labgrid\n    place: bench-3", "name: sim\n    kind: sim")
    rig.write_text(lab.rig.read_text() + sim)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--config", str(rig), "--report-dir",
         str(tmp_path / "r"), "-k", LEAN, "-n", "2"],
        cwd=REPO, env=lab.env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    assert [t["name"] for t in doc["targets"]] == ["lab", "sim"]
    assert {t["target"] for t in doc["tests"]} == {"lab", "sim"}
    assert doc["verdict"] == "pass"
    assert lab.holder() == "None", "the worker frees the place it acquired"
