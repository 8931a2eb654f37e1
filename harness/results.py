"""results.json: what ran, on what, and every sample, written as the run goes so that
nothing measured is lost when a later test or the bench fails."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import secrets
import socket
import sys
from importlib import metadata
from pathlib import Path

import harness

SCHEMA_PATH = Path(__file__).with_name("results_schema.json")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_dir(base: Path) -> Path:
    """reports/<run-id>/ with reports/latest pointing at it."""
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    run_dir = base / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    latest = base / "latest"
    tmp = base / f".latest-{run_id}"
    tmp.symlink_to(run_id)
    os.replace(tmp, latest)
    return run_dir


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "absent"


class Results:
    """Accumulates one run's results and rewrites results.json after every test."""

    def __init__(self, run_dir: Path, config_path: str, compare: dict | None = None) -> None:
        self.run_dir = run_dir
        self.doc: dict = {
            "schema_version": 1,
            "run_id": run_dir.name,
            "started": _now(),
            "finished": _now(),
            "duration_s": 0.0,
            "verdict": "pass",
            "rig": {
                "config_path": config_path,
                "host": {
                    "hostname": socket.gethostname(),
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "tsfrig": harness.__version__,
                    "pigpio_client": _version("pigpio"),
                    "mpremote": _version("mpremote"),
                },
                "compare": compare or {},
            },
            "targets": [],
            "tests": [],
        }
        self._t0 = dt.datetime.now(dt.UTC)

    def add_target(self, info: dict) -> None:
        names = [t["name"] for t in self.doc["targets"]]
        if info["name"] in names:
            self.doc["targets"][names.index(info["name"])] = info
        else:
            self.doc["targets"].append(info)
        self.write()

    def add_test(self, entry: dict) -> None:
        self.doc["tests"].append(entry)
        if entry["outcome"] == "failed" and self.doc["verdict"] == "pass":
            self.doc["verdict"] = "fail"
        if entry["outcome"] == "error":
            self.doc["verdict"] = "error"
        self.write()

    def bench_fault(self, message: str) -> None:
        """The bench could not be brought up: the run ends as an error, not a pass."""
        self.doc["verdict"] = "error"
        self.doc["bench_fault"] = message
        self.write()

    def write(self) -> Path:
        self.doc["finished"] = _now()
        self.doc["duration_s"] = (dt.datetime.now(dt.UTC) - self._t0).total_seconds()
        path = self.run_dir / "results.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.doc, indent=1))
        os.replace(tmp, path)
        return path


def validate(doc: dict) -> None:
    """Raise jsonschema.ValidationError when doc does not match the published schema."""
    import jsonschema

    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
