"""results.json documents built here for the compare and trend tests (no bench needed), and the
checks on what `tsfrig compare` printed. A module, not fixtures: the tests' own helpers
(latency_doc) and fixtures build on these plain functions."""

import json
import subprocess
from pathlib import Path

from harness.reports.results import validate

VERSION = "3.4.0; MicroPython v1.24.0 on 2024-10-25"
WAKE_FAIL = "pulse 1: IRQ at +4749 µs, no wake within 200 ms"


def scenario(name: str, outcome: str = "passed", message: str = "", **extra) -> dict:
    return {"nodeid": f"tests/hil/test_flag.py::test_{name}[sim-hard]", "target": "sim",
            "scenario": name, "irq_kind": "hard", "outcome": outcome, "message": message,
            **extra}


def run_doc(run_id: str, build_hash: str | None = "aaaa1111", verdict: str = "pass") -> dict:
    """A complete, passing run of four scenarios on one sim target."""
    fw = {"implementation": "micropython", "version": VERSION, "build_id": "linux standard",
          "asyncio": "frozen", "executable": "/usr/bin/micropython", "overlay": None}
    if build_hash:
        fw["build_hash"] = build_hash
    samples = [float(100 + i % 37) for i in range(100)]
    return {
        "schema_version": 1, "run_id": run_id, "started": "2025-01-01T00:00:00+00:00",
        "finished": "2025-01-01T00:01:00+00:00", "duration_s": 60.0, "verdict": verdict,
        "rig": {"config_path": "rig_config.yaml",
                "host": {"hostname": "ci", "python": "3.11", "platform": "linux",
                         "tsfrig": "0"}},
        "targets": [{"name": "sim", "kind": "sim", "wiring": {}, "firmware": fw}],
        "tests": [scenario("wake"), scenario("auto_reset"),
                  scenario("second_waiter", details={"second_waiter_observed": "second-wins"}),
                  scenario("latency", latency={"irq_to_wake_us": samples,
                                               "edge_to_ack_us": samples})],
    }


def write_run(path: Path, doc: dict, check_schema: bool = True) -> Path:
    if check_schema:
        validate(doc)  # the documents here are what a real run writes
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps(doc))
    return path


def scenario_of(doc: dict, name: str) -> dict:
    return next(t for t in doc["tests"] if t["scenario"] == name)


def lines(r: subprocess.CompletedProcess) -> list[str]:
    return r.stdout.strip().splitlines()


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
