"""`tsfrig run -n N`: several simulated targets tested at once, one pytest-xdist worker each,
writing the one run a serial run writes (results.json, junit.xml, index.html, `latest`);
a broken target errs or fails alone; SIGTERM ends it as interrupted with nothing left."""

import errno
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from fixtures.parallel import target_of
from tests.faults import write_broken
from tests.faults.matrix import JUNIT, WIRING_AND_BUDGETS, Bench, on_progress, run_faulted

TWO_TESTS = "hard and (test_wake or test_auto_reset)"


def rig(tmp: Path, first: str = "a", first_firmware: str = "") -> Path:
    """Two simulated targets; the first optionally with its own firmware settings."""
    cfg = tmp / "rig.yaml"
    firmware = f"\n    firmware: {{{first_firmware}}}" if first_firmware else ""
    cfg.write_text(f"version: 1\ndefaults:\n  kind: sim\n{WIRING_AND_BUDGETS}\n"
                   f"targets:\n  - name: {first}{firmware}\n  - name: b\n")
    return cfg


def identity(doc: dict) -> list[tuple]:
    return [(t["name"], t["kind"], t["firmware"]["build_hash"], t["firmware"]["version"],
             bool(t["wiring_check"])) for t in doc["targets"]]


def test_parallel_run_is_the_serial_run(tmp_path):
    cfg = rig(tmp_path)
    serial = run_faulted(tmp_path / "serial", Bench(args=["--config", str(cfg)]), TWO_TESTS)
    par = run_faulted(tmp_path / "par", Bench(args=["--config", str(cfg), "-n", "2"]),
                      TWO_TESTS)
    assert (serial.code, par.code) == (0, 0), par.stderr[-3000:]
    assert par.leftover == [] and par.temp_left == []
    runs = [d for d in (tmp_path / "par" / "r").iterdir() if d.name != "latest"]
    assert len(runs) == 1 and (tmp_path / "par" / "r" / "latest").resolve() == runs[0]
    assert par.doc["verdict"] == serial.doc["verdict"] == "pass"
    assert list(par.outcomes().items()) == list(serial.outcomes().items())  # same order
    assert len(par.outcomes()) == 4
    assert identity(par.doc) == identity(serial.doc)
    assert [t["name"] for t in par.doc["targets"]] == ["a", "b"]
    assert par.junit == {name: JUNIT[o] for name, o in par.outcomes().items()}
    assert all(t["counts"]["wakes"] > 0 for t in par.doc["tests"])  # measurements came over
    junit = (runs[0] / "junit.xml").read_text()
    for target in ("a", "b"):  # each worker's firmware identity reached junit.xml
        assert f'name="{target}.firmware.build_hash"' in junit
    progress = [line for line in par.stderr.splitlines() if line.endswith("passed")]
    assert {line.split()[1] for line in progress} == {"[a]", "[b]"}
    # both benches were up at once: each worker traced its own, interleaved in one trace.log
    trace = (runs[0] / "trace.log").read_text().splitlines()
    workers = [line.split()[0] for line in trace if line.startswith("[gw")]
    assert {"[gw0]", "[gw1]"} <= set(workers)
    assert sum(a != b for a, b in zip(workers, workers[1:], strict=False)) > 2
    # one bench per worker, brought up once for its target's tests
    connects = sorted(line.split()[0] for line in trace if "connecting to pigpiod" in line)
    assert connects == ["[gw0]", "[gw1]"], connects


class ReadOnce:
    """A rig config that can be read once: a FIFO whose first reader gets the config and
    every later one a config that does not load (a second read would show)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text, self.reads = path, text, 0
        os.mkfifo(path)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            with open(self.path, "w") as f:  # blocks until a reader opens it
                if self.stop.is_set():
                    return
                f.write(self.text if self.reads == 0 else "version: 99\n")
                self.reads += 1
            while self._reader_open():  # one reader, one text: let it go first
                time.sleep(0.01)  # the kernel tells no waiter when a FIFO's reader leaves

    def _reader_open(self) -> bool:
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as e:
            if e.errno == errno.ENXIO:
                return False
            raise
        return True

    def close(self) -> None:
        self.stop.set()
        os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))  # wakes the writer's open
        self.thread.join(5)


def test_workers_get_the_config_the_run_loaded(tmp_path):
    """`tsfrig run -n 2` loads the rig config once: its workers get it from the controller
    (xdist's workerinput), not by reading the file again."""
    once = ReadOnce(tmp_path / "rig.fifo", rig(tmp_path).read_text())
    try:
        out = run_faulted(tmp_path, Bench(args=["--config", str(once.path), "-n", "2"]),
                          TWO_TESTS)
    finally:
        once.close()
    assert out.code == 0, out.stderr[-3000:]
    assert once.reads == 1
    assert len(out.outcomes()) == 4 and set(out.outcomes().values()) == {"passed"}


@pytest.mark.parametrize("broken, code, verdict, outcome", [
    ("bench", 2, "error", "error"),  # the bench can't start: errors, not a firmware verdict
    ("firmware", 1, "fail", "failed"),  # the build raises in wait(): a firmware failure
])
def test_parallel_broken_target_alone(tmp_path, broken, code, verdict, outcome):
    if broken == "bench":
        exe = tmp_path / "not-a-micropython"
        exe.write_text("#!/bin/sh\necho 'this firmware image is corrupt' >&2\nexit 1\n")
        exe.chmod(0o755)
        cfg = rig(tmp_path, "broken", f"executable: {exe}")
    else:
        overlay = write_broken("wait_raises_at_once", tmp_path / "overlay")
        cfg = rig(tmp_path, "broken", f"overlay: {overlay}")
    out = run_faulted(tmp_path, Bench(args=["--config", str(cfg), "-n", "2"]), TWO_TESTS)
    assert out.code == code, out.stderr[-3000:]
    assert out.leftover == [] and out.temp_left == []
    assert out.doc["verdict"] == verdict
    got = out.outcomes()
    assert {t: o for t, o in got.items() if "[b-" in t} == {
        "test_wake[b-hard]": "passed", "test_auto_reset[b-hard]": "passed"}
    assert {o for t, o in got.items() if "[broken-" in t} == {outcome}
    assert len(got) == 4 and out.junit == {t: JUNIT[o] for t, o in got.items()}
    if broken == "bench":
        assert set(out.doc["bench_faults"]) == {"broken"}
        assert "target broken: simulated bench did not start" in out.stderr


def test_sigterm_mid_parallel_run(tmp_path):
    bench = Bench(args=["--config", str(rig(tmp_path)), "-n", "2"])
    bench.on_line = on_progress(r"\bpassed$", lambda proc: proc.send_signal(signal.SIGTERM))
    out = run_faulted(tmp_path, bench, "hard")
    assert out.code == 143, out.stderr[-3000:]
    assert out.leftover == [], f"processes left: {out.leftover}"
    assert out.temp_left == []
    assert out.doc["verdict"] == "interrupted" and out.doc["interrupted"] == "SIGTERM"
    assert out.outcomes() and set(out.outcomes().values()) == {"passed"}
    assert len(out.outcomes()) < 20  # it stopped: 10 hard tests on each target
    assert out.junit == {t: "passed" for t in out.outcomes()}
    assert "interrupted by SIGTERM" in out.stderr and "Traceback" not in out.stderr
    assert 'id="verdict">INTERRUPTED<' in out.html


def test_sigkill_of_tsfrig_mid_parallel_run_leaves_nothing(tmp_path):
    """SIGKILL of tsfrig itself: nothing can be said, so the run stays incomplete (never a
    pass), and its workers and their benches still go (each is told its parent died)."""
    bench = Bench(args=["--config", str(rig(tmp_path)), "-n", "2"])
    bench.on_line = on_progress(r"\bpassed$", lambda proc: proc.send_signal(signal.SIGKILL))
    out = run_faulted(tmp_path, bench, "hard")
    assert out.code == -9, out.stderr[-3000:]
    assert out.leftover == [], f"processes left: {out.leftover}"
    assert out.doc["verdict"] == "incomplete"


def children(pid: int) -> list[int]:
    """Live child processes of pid (tsfrig's: its xdist workers)."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "stat").read_text().rsplit(")", 1)[1].split()[1] \
                    == str(pid):
                found.append(int(d.name))
        except OSError:
            continue  # gone meanwhile
    return found


def test_worker_killed_is_a_bench_fault(tmp_path):
    """A worker that dies (SIGKILL) is the host's fault: xdist calls its test failed, the
    verdict is error (exit 2), and the dead worker's bench goes with it."""
    bench = Bench(args=["--config", str(rig(tmp_path)), "-n", "2"])
    bench.on_line = on_progress(r"\bpassed$", lambda proc: os.kill(children(proc.pid)[0],
                                                                   signal.SIGKILL))
    out = run_faulted(tmp_path, bench, "hard and (test_wake or test_auto_reset or test_cancel)")
    assert out.code == 2, out.stderr[-3000:]
    assert out.leftover == [], f"processes left: {out.leftover}"
    assert out.doc["verdict"] == "error"
    lost = [t for t in out.doc["tests"] if t["outcome"] != "passed"]
    assert [t["outcome"] for t in lost] == ["error"], lost
    assert lost[0]["message"].startswith("the test worker died while running this test")
    assert lost[0]["target"] in ("a", "b") and "@" not in lost[0]["nodeid"]
    # the controller never imported the suite: the scenario is read from the test's file
    assert lost[0]["scenario"] in ("wake", "auto_reset", "cancellation"), lost[0]


def test_target_of_names_the_target_in_a_test_id():
    names = ["sim", "sim-2", "bench"]
    assert target_of("t.py::test_wake[sim-hard]", names) == "sim"
    assert target_of("t.py::test_wake[sim-2-hard]", names) == "sim-2"
    assert target_of("t.py::test_wake[sim-2-hard]@bench", names) == "bench"
    assert target_of("t.py::test_other", names) is None


def test_bad_worker_count_is_one_line(tsfrig):
    r = tsfrig("run", "-n", "two", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "'two' is not a number of workers" in r.stderr.strip().splitlines()[-1]


def test_parallel_selection_with_no_tests_is_exit_5(tmp_path, tsfrig):
    reports = tmp_path / "reports"
    r = tsfrig("run", "--config", str(rig(tmp_path)), "--report-dir", str(reports),
               "--parallel", "-k", "no_such_scenario", timeout=120)
    assert r.returncode == 5, r.stdout[-1000:] + r.stderr[-1000:]
    assert list(reports.iterdir()) == []  # no run dir, no `latest`
