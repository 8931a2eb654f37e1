"""The CI examples under examples/ parse and call tsfrig the way its CLI accepts."""

import re
from pathlib import Path

import pytest
import yaml

from harness.cli.main import build_parser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORKFLOWS = sorted(EXAMPLES.glob("*.yml")) + sorted(EXAMPLES.glob("*.yaml"))

# `tsfrig <subcommand>` where a shell command starts: a line, or after ; & | ( ! then do if.
TSFRIG_CALL = re.compile(r"(?:^|[;&|(!]|\bthen|\bdo|\bif)[ \t]*tsfrig[ \t]+([A-Za-z][\w-]*)",
                         re.MULTILINE)


def _load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    return doc


def _steps(doc: dict) -> list[dict]:
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def _run_text(doc: dict) -> str:
    return "\n".join(step["run"] for step in _steps(doc) if "run" in step)


def _subcommands() -> set[str]:
    return set(build_parser()._subparsers._group_actions[0].choices)


def test_there_are_examples():
    assert WORKFLOWS, "no YAML under examples/"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_structure(path):
    doc = _load(path)
    # PyYAML (YAML 1.1) reads the bare key `on` as the boolean True.
    assert "on" in doc or True in doc, f"{path.name}: no `on:` triggers"
    assert isinstance(doc.get("jobs"), dict) and doc["jobs"], f"{path.name}: no jobs"
    for name, job in doc["jobs"].items():
        assert "runs-on" in job, f"{path.name}: job {name} has no runs-on"
        assert isinstance(job.get("steps"), list) and job["steps"], f"{name}: no steps"
        for i, step in enumerate(job["steps"]):
            assert "uses" in step or "run" in step, f"{name} step {i}: neither uses nor run"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_calls_tsfrig(path):
    text = _run_text(_load(path))
    used = TSFRIG_CALL.findall(text)
    for sub in ("run", "compare", "trend"):
        assert sub in used, f"{path.name}: no `tsfrig {sub}` in a run step"
    assert re.search(r"tsfrig[ \t]+run\b[^\n]*--firmware", text), \
        f"{path.name}: `tsfrig run` without --firmware"
    unknown = set(used) - _subcommands()
    assert not unknown, f"{path.name}: not tsfrig subcommands: {sorted(unknown)}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_reports_are_kept_after_a_failure(path):
    """Publishing and uploading run after a failing suite, or a failure leaves no evidence."""
    for step in _steps(_load(path)):
        uses = step.get("uses", "")
        if uses.startswith(("actions/upload-artifact", "mikepenz/action-junit-report",
                            "dorny/test-reporter")):
            assert "always()" in str(step.get("if", "")), f"{step.get('name')}: no always()"


def test_subcommand_pattern_ignores_prose_and_paths():
    text = ("pip install -e tsfrig\necho tsfrig: bench fault\n"
            "x=tsfrig/rig_config.yaml\nrc=0; tsfrig trend runs/\n  tsfrig run --firmware f")
    assert TSFRIG_CALL.findall(text) == ["trend", "run"]


README = EXAMPLES.parent / "README.md"
README_TARGET = re.compile(r"```yaml\n(  - name: .*?)```", re.DOTALL)


def test_readme_target_examples_load(tmp_path):
    """Every whole target (one with its wiring) a reader may paste from the README is a
    valid rig config target."""
    from harness.config import load_config

    blocks = [b for b in README_TARGET.findall(README.read_text()) if "wiring:" in b]
    assert len(blocks) >= 2, "the README's bench examples went missing"
    for i, block in enumerate(blocks):
        for image in re.findall(r"image: ([^,}\s]+)", block):  # the build a reader has
            (tmp_path / image).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / image).write_bytes(b"image")
        path = tmp_path / f"readme_{i}.yaml"
        path.write_text("version: 1\ntargets:\n" + block)
        (target,) = load_config(path).targets
        assert target.wiring.stimulus.pi_gpio == 17, block
