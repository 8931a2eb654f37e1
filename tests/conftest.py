"""Fixtures every test group shares: `tsfrig` as a user runs it, for the tests that check what
the CLI prints and returns."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run_tsfrig(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tsfrig() -> Callable[..., subprocess.CompletedProcess]:
    """`python -m harness.cli ARGS` from the repo, output captured, with a deadline
    (`timeout=`, 600 s unless given); a module narrows it by overriding this fixture."""
    return _run_tsfrig
