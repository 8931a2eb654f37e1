"""Fixtures the simulated-bench tests share."""

import contextlib
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.benches import BenchAddress
from harness.benches.sim import SimProvider
from harness.config import load_config
from tests.faults.matrix import serial_target_yaml as _serial_target_yaml

REPO = Path(__file__).resolve().parents[2]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium(tmp_path: Path, page: Path) -> tuple[str, bytes]:
    if not CHROMIUM:
        pytest.skip("chromium not installed: `make test` installs it (apt-get install chromium)")
    prof = tmp_path / "profile"
    png = tmp_path / "shot.png"
    url = page.resolve().as_uri()
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={prof}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120).stdout
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={prof}", f"--screenshot={png}",
                    "--window-size=1280,2000", url], capture_output=True, timeout=120)
    return dom, png.read_bytes()


def _png_is_drawn(data: bytes) -> bool:
    """Decode the PNG's pixels and check it isn't one flat colour."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            width = struct.unpack(">I", data[pos + 8:pos + 12])[0]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = len(raw) // (len(raw) // (width * 4 + 1))
    sample = {raw[i:i + 3] for i in range(1, len(raw), stride * 7 + 13)}
    return len(sample) > 3


@pytest.fixture
def browser(tmp_path):
    """Renders a page in headless Chromium: (its DOM, a screenshot PNG); skips without it."""
    return lambda page: _chromium(tmp_path, page)


@pytest.fixture
def drawn():
    """Whether a PNG shows a drawing (not one flat colour)."""
    return _png_is_drawn


@contextlib.contextmanager
def _shipped_sim() -> Iterator[BenchAddress]:
    rig = load_config(REPO / "rig_config.yaml")
    sim = SimProvider(rig.targets[0], rig)
    address = sim.start()
    try:
        yield address
    finally:
        sim.stop()


@pytest.fixture
def shipped_sim() -> Callable[[], contextlib.AbstractContextManager[BenchAddress]]:
    """`with shipped_sim() as address:` a `tsfrig sim` on the shipped config's first target
    (stimulus GPIO17 -> pin 2, pin 3 -> ack GPIO27), for a serial target to point at;
    stopped afterwards. For a test that sets the sim's environment first."""
    return _shipped_sim


@pytest.fixture(scope="module")
def running_sim() -> Iterator[BenchAddress]:
    """The shipped sim (as shipped_sim) shared by a module's tests."""
    with _shipped_sim() as address:
        yield address


@pytest.fixture(scope="session")
def serial_target_yaml() -> Callable[..., str]:
    """A rig config with one real-bench target (kind: serial) on a port and pigpiod:
    `serial_target_yaml(port, host, gpio_port, stim_pin=2, ack_pin=3, budgets=False)`; the
    fault matrix's serial benches are written by the same function."""
    return _serial_target_yaml
