"""results.json: what ran, on what, and every sample, written as the run goes so that
nothing measured is lost when a later test or the bench fails."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import socket
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import harness
from harness.benches import BenchAddress, BenchProvider
from harness.config import TargetConfig
from harness.config.registry import GPIO, specs

SCHEMA_PATH = Path(__file__).with_name("results_schema.json")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_dir(base: Path) -> Path:
    """reports/<run-id>/ (`latest` moves only once the run has results: point_latest)."""
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    run_dir = base / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def name_by_build(run_dir: Path) -> Path:
    """Once a run knows what it measured: reports/<date>-<time>-<build>-<id>/, so a listing
    of runs reads as a list of builds (results.json's run_id follows)."""
    path = run_dir / "results.json"
    doc = json.loads(path.read_text())
    if not doc["targets"]:
        return run_dir
    release, _, commit = firmware_label(doc["targets"][0]["firmware"], overlay=False) \
        .partition(" (")
    build = re.sub(r"[^A-Za-z0-9.]+", "-", release if release.startswith("v")
                   else f"{release}-{commit.rstrip(')')}").strip("-")
    date, clock, token = run_dir.name.split("-")[:3]
    named = run_dir.with_name(f"{date}-{clock}-{build}-{token}")
    doc["run_id"] = named.name
    write_atomic(path, json.dumps(doc, indent=1))  # a full disk: the old name and id stay
    os.rename(run_dir, named)
    return named


def write_atomic(path: Path, text: str) -> None:
    """path holds the old text or the new, never a part; a failed write (a full disk)
    leaves no temp file behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:  # said of the file the caller asked for, not of the temp file
        _discard(tmp)
        raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    """Remove a temp file if there is one (on a read-only disk there is none to remove)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def fallback_path(run_id: str) -> Path:
    """Where results.json goes when the run directory can't take it (a full disk): TMPDIR,
    named after the run."""
    return Path(tempfile.gettempdir()) / f"tsfrig-{run_id}-results.json"


def mark_interrupted(run_dir: Path, signal_name: str) -> None:
    """A signal came while the finished run's files were written: results.json says
    `interrupted` by it, as a run cut short does (junit.xml and index.html follow it)."""
    path = run_dir / "results.json"
    doc = json.loads(path.read_text())
    if doc["verdict"] == "interrupted":
        return
    doc["verdict"], doc["interrupted"] = "interrupted", signal_name
    write_atomic(path, json.dumps(doc, indent=1))


def point_latest(run_dir: Path) -> None:
    """reports/latest -> this run, replaced atomically."""
    base = run_dir.parent
    tmp = base / f".latest-{run_dir.name}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, base / "latest")


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
            "verdict": "incomplete",  # until the run ends: a killed run never reads as a pass
            "rig": {
                "config_path": config_path,
                "host": {
                    "hostname": socket.gethostname(),
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "tsfrig": harness.__version__,
                    **{f"{name}_client": _version(gpio.client)
                       for name, gpio in specs(GPIO).items()},
                    "mpremote": _version("mpremote"),
                },
                "compare": compare or {},
            },
            "targets": [],
            "tests": [],
            # what the run was asked to measure: a scenario left out on purpose is "not
            # selected", never a bench fault (harness/reports/compare.py reads it)
            "selection": {"k": None, "target": None, "deselected": []},
        }
        self._t0 = dt.datetime.now(dt.UTC)
        self.fallback: Path | None = None  # results.json's copy while the run dir can't take it

    def select(self, k: str | None, target: str | None) -> None:
        """The run's -k expression and --target (None: everything)."""
        self.doc["selection"].update(k=k or None, target=target or None)
        self.write()

    def deselect(self, keys: list[str]) -> None:
        """Scenarios (`target / scenario [kind]`) the selection left out."""
        sel = self.doc["selection"]
        sel["deselected"] = sorted(set(sel["deselected"]) | set(keys))
        self.write()

    def add_target(self, info: dict) -> None:
        names = [t["name"] for t in self.doc["targets"]]
        if info["name"] in names:
            self.doc["targets"][names.index(info["name"])] = info
        else:
            self.doc["targets"].append(info)
        self.write()

    def add_test(self, entry: dict) -> None:
        self.doc["tests"].append(entry)
        self.write()

    def bench_fault(self, message: str, target: str | None = None) -> None:
        """A bench could not be brought up: the run ends as an error, not a pass. The first
        fault is the run's headline; each target keeps its own."""
        self.doc.setdefault("bench_fault", message)
        if target is not None:
            self.doc.setdefault("bench_faults", {})[target] = message
        self.write()

    def sort_targets(self, order: list[str]) -> None:
        """Targets, and tests target by target (each target's in the order they ran), in the
        config's order: a parallel run's tests arrive interleaved, a serial run's don't."""
        rank = {name: i for i, name in enumerate(order)}
        self.doc["targets"].sort(key=lambda t: rank.get(t["name"], len(rank)))
        self.doc["tests"].sort(key=lambda t: rank.get(t["target"], len(rank)))

    def finish(self, verdict: str, **extra: str) -> None:
        """The run is over: its verdict (harness.verdict.run_verdict) and how it ended."""
        self.doc["verdict"] = verdict
        self.doc.update(extra)
        self.write()

    def discard(self) -> None:
        """Nothing ran (an empty selection): leave no results that could read as a pass."""
        (self.run_dir / "results.json").unlink(missing_ok=True)

    def write(self) -> Path:
        """results.json in the run directory. When that fails (a full disk) the whole doc
        goes to fallback_path() instead, self.fallback says where (None: there neither),
        and the OSError is raised for the caller to say so; a later write that succeeds
        removes the fallback again."""
        self.doc["finished"] = _now()
        self.doc["duration_s"] = (dt.datetime.now(dt.UTC) - self._t0).total_seconds()
        path = self.run_dir / "results.json"
        text = json.dumps(self.doc, indent=1)
        try:
            write_atomic(path, text)
        except OSError:
            self.fallback = fallback_path(self.run_dir.name)
            try:
                write_atomic(self.fallback, text)
            except OSError:
                self.fallback = None
            raise
        if self.fallback is not None:
            self.fallback.unlink(missing_ok=True)
            self.fallback = None
        return path


def target_identity(target: TargetConfig, address: BenchAddress, board: dict, gpio: dict,
                    provider: BenchProvider) -> dict:
    """results.json's record of one target: the firmware as the board reports it (and as the
    bench provider knows it: executable, overlay, build hash), the wiring and the GPIO
    daemon, so a run can't be mistaken for another build's."""
    extra = provider.identity()
    firmware = {
        "implementation": board.get("implementation", ""),
        "version": board.get("sys_version", ""),
        "uname": board.get("uname"),
        "build_id": f"{board.get('machine', '')} {board.get('build', '')}".strip(),
        "asyncio": board.get("asyncio", ""),
        **{k: extra[k] for k in ("executable", "overlay", "build_hash")},
        **{k: extra[k] for k in ("image", "image_sha256", "overlay_hash")
           if extra.get(k)},  # flashed; a sim's overlay
    }
    return {
        "name": target.name, "kind": target.kind,
        "wiring": target.to_dict()["wiring"], "firmware": firmware,
        "gpio": {"backend": target.gpio.backend, "host": address.gpio_host,
                 "port": address.gpio_port, **gpio},
        "irq_wake_model": extra["irq_wake_model"],
        "second_waiter_expected": target.second_waiter,
        **({"place": extra["place"]} if extra.get("place") else {}),  # a bench kind's place
    }


def firmware_label(fw: dict, overlay: bool = True) -> str:
    """A build as a person names it: `v1.27.0 (a1b2c3d4e)` from the board's version string
    (its release and the git hash in it), else the commit the string names, else the build's
    content hash; a build run with an overlay adds it by name and content hash
    (`+ overlay slow_wake (3f9a0c2b1e4d)`): the same base with another overlay is another
    build."""
    base = _base_label(fw)
    if overlay and fw.get("overlay"):
        name = Path(fw["overlay"]).name
        digest = fw.get("overlay_hash") or "hash not recorded"
        return f"{base} + overlay {name} ({digest})"
    return base


def _base_label(fw: dict) -> str:
    m = re.search(r"MicroPython (\S+) on", fw.get("version") or "")
    token = m.group(1) if m else ""
    release, commit = (re.split(r"[.-]g(?=[0-9a-f]{7,40}$)", token) + [""])[:2]
    if token and not token.startswith("v") and re.fullmatch(r"[0-9a-f]{7,40}", token):
        release, commit = "unreleased", token  # a build of a commit between releases
    commit = commit[:9] or fw.get("build_hash") or "unknown build"
    return f"{release or 'unknown version'} ({commit})"


def validate(doc: dict) -> None:
    """Raise jsonschema.ValidationError when doc does not match the published schema."""
    import jsonschema

    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
