"""`tsfrig` as a user runs it, for the tests that check what the CLI prints and returns."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_tsfrig(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m harness.cli ARGS` from the repo, output captured, with a deadline."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
