"""Fixtures the unit tests share: loading a rig config from text and the one-line error a bad
one gives; `tsfrig compare` of a base run and a new run's document; pytest run on a folder of
plain tests, where the plugin loads as in any project of its venv."""

import functools
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.config import ConfigError, RigConfig, load_config
from tests.unit.runs import run_doc, write_run


def _load_text(tmp_path: Path, text: str | bytes):
    path = tmp_path / "rig.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return load_config(path)


def _error_of(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(ConfigError) as e:
        _load_text(tmp_path, text)
    msg = str(e.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    assert not re.search(r"<[^>]* at 0x|\{'|\['|_Node", msg), f"object repr in: {msg!r}"
    return msg


@pytest.fixture
def load_text() -> Callable[[Path, str | bytes], RigConfig]:
    """`load_text(tmp_path, text)`: the config text written as rig.yaml there, loaded."""
    return _load_text


@pytest.fixture
def error_of() -> Callable[[Path, str | bytes], str]:
    """`error_of(tmp_path, text)`: the ConfigError loading it gives, checked to be one line
    with no object repr in it."""
    return _error_of


@pytest.fixture(scope="module")
def tsfrig(tsfrig):
    """`tsfrig` with a 120 s deadline."""
    return functools.partial(tsfrig, timeout=120)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write_run(tmp_path / "base", run_doc("base-run"))


@pytest.fixture
def new_doc() -> dict:
    return run_doc("new-run", build_hash="bbbb2222")


@pytest.fixture
def compare(tsfrig):
    """`tsfrig compare BASE NEW EXTRA...`."""
    def run(base: Path, new: Path, *extra: str) -> subprocess.CompletedProcess:
        return tsfrig("compare", str(base), str(new), *extra)
    return run


@pytest.fixture
def plain_pytest() -> Callable[..., subprocess.CompletedProcess]:
    """`plain_pytest(folder, *args)`: pytest -q in a child process on that folder's tests, run
    from it (no rig config there: the plugin loads as an entry point, as in a user's project)."""
    def run(folder: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *args, str(folder)], cwd=folder, capture_output=True, text=True,
                              timeout=120)
    return run
