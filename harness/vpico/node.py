"""Where the virtual Pico's Node side runs from, and installing its one dependency (rp2040js,
pinned by the shipped package-lock.json) where a user may write.

board.mjs (and the .mjs modules beside it) import rp2040js as an ES module, and Node finds one
only in a node_modules beside or above the importing file (ES modules ignore NODE_PATH). So the
board runs from a directory holding both:
- beside the shipped files: a clone after `make vpico` (npm ci in harness/vpico);
- else the per-user cache `tsfrig vpico-setup` fills, since an installed tsfrig's own directory
  (site-packages) is not the user's to write: $XDG_CACHE_HOME (or ~/.cache)/tsfrig/vpico-HASH,
  a copy of the shipped Node files plus their node_modules. HASH covers those files, so an
  upgrade that changes any of them asks for a new setup instead of running stale code.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.children import die_with_parent

HERE = Path(__file__).resolve().parent
# board.mjs and the modules it imports (every *.mjs beside it), and npm's two files
NODE_FILES = (*sorted(p.name for p in HERE.glob("*.mjs")), "package.json", "package-lock.json")
MIN_NODE = 18
ENV_NODE = "TSFRIG_NODE"  # the node executable (default: `node` on PATH)
SETUP = "run `tsfrig vpico-setup` (or `make vpico` in a clone)"
NPM_CI_TIMEOUT_S = 600.0  # offline, npm gives up after about 70 s of retries


class VPicoError(Exception):
    """The virtual Pico could not be brought up (a bench fault): the message says why and
    what to do."""


def node_executable() -> str:
    """The Node to run board.mjs (or npm ci) with: Node >= 18."""
    node = os.environ.get(ENV_NODE) or shutil.which("node")
    if not node:
        raise VPicoError(f"vpico needs Node >= {MIN_NODE}: none on PATH; install Node.js "
                         f"(or set {ENV_NODE})")
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise VPicoError(f"vpico: {node} --version failed ({e}); install Node >= {MIN_NODE}") \
            from None
    m = re.match(r"v(\d+)\.", out)
    if not m or int(m.group(1)) < MIN_NODE:
        raise VPicoError(f"vpico needs Node >= {MIN_NODE}, {node} is {out or 'unknown'}; "
                         "install a newer Node.js")
    return node


def cache_dir() -> Path:
    """The per-user directory `tsfrig vpico-setup` fills for the shipped Node files."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    h = hashlib.sha256()
    for name in NODE_FILES:
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    return root / "tsfrig" / f"vpico-{h.hexdigest()[:16]}"


def _ready(where: Path) -> bool:
    return (where / "node_modules" / "rp2040js" / "package.json").is_file() and \
        (where / "board.mjs").is_file()


def board_dir() -> Path:
    """The directory board.mjs runs from: beside the shipped files if rp2040js is installed
    there, else the setup's cache; VPicoError naming the fix when neither has it."""
    for where in (HERE, cache_dir()):
        if _ready(where):
            return where
    raise VPicoError(f"vpico: rp2040js is not installed; {SETUP}")


def setup(npm: str | None = None) -> tuple[Path, bool]:
    """npm ci from the shipped lock into the per-user cache: (its directory, whether it was
    installed now). Built in a temporary directory beside it and renamed into place, so a
    setup that fails or is killed leaves nothing a launch would take for an installation."""
    target = cache_dir()
    if _ready(target):
        return target, False
    npm = npm or shutil.which("npm")
    if not npm:
        raise VPicoError("vpico-setup needs npm (it comes with Node.js): none on PATH; "
                         "install Node.js >= 18 with npm")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as e:
        raise VPicoError(f"vpico-setup cannot write {target.parent} ({e.strerror or e}): "
                         "set XDG_CACHE_HOME to a writable directory") from None
    try:
        for name in NODE_FILES:
            shutil.copyfile(HERE / name, work / name)
        _npm_ci(npm, work)
        try:
            work.rename(target)
        except OSError:
            if not _ready(target):  # else another setup finished first: same files
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, True


def _npm_ci(npm: str, where: Path) -> None:
    try:
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=where,
                           capture_output=True, text=True, timeout=NPM_CI_TIMEOUT_S,
                           preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        raise VPicoError(f"vpico-setup: npm ci did not finish within {NPM_CI_TIMEOUT_S:.0f} s: "
                         "check the network (npm's registry and proxy settings) and run it "
                         "again") from None
    except OSError as e:
        raise VPicoError(f"vpico-setup: cannot run {npm} ({e.strerror or e}): install "
                         "Node.js >= 18 with npm") from None
    if r.returncode != 0:
        raise VPicoError(f"vpico-setup: npm ci failed ({_npm_cause(r.stderr)}): check the "
                         "network (npm's registry and proxy settings) and run it again")


def _npm_cause(stderr: str) -> str:
    """npm's error in a few words: its code and the first line that says what happened."""
    lines = [ln.removeprefix("npm error").strip() for ln in stderr.splitlines()
             if ln.startswith("npm error")]
    code = next((m.group(1) for ln in lines if (m := re.match(r"code (\S+)$", ln))), "")
    said = next((ln for ln in lines if ln and not re.match(r"(code|errno|syscall) ", ln)),
                "no message")
    return f"{code}: {said}" if code else said
