"""tsfrig as a firmware team installs it: the wheel, in a fresh venv, run from an empty
directory with nothing but what `tsfrig init` writes; the virtual Pico set up from it."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# board.mjs and every module beside it that it imports, npm's two files, the config
NODE_MODULES = sorted(p.name for p in (REPO / "harness/vpico").glob("*.mjs"))
VPICO_FILES = (*NODE_MODULES, "package.json", "package-lock.json", "rig_vpico.yaml")


def run(argv: list, cwd: Path, timeout: float, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, **kw)
    assert r.returncode == 0, f"{argv}: {r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, REPO], dist, 300)
    return next(dist.glob("tsfrig-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("installed") / "venv"
    run([sys.executable, "-m", "venv", where], where.parent, 120)
    run([where / "bin/pip", "install", "-q", wheel], where.parent, 600)
    return where


def test_the_wheel_ships_the_vpico_node_files_but_not_their_modules(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"harness/vpico/{f}" for f in VPICO_FILES} <= set(names)
    assert not [n for n in names if "node_modules" in n]


@pytest.mark.slow
def test_the_wheel_runs_the_suite_from_an_empty_directory(venv, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    tsfrig = venv / "bin/tsfrig"
    run([tsfrig, "init"], work, 60)
    run([tsfrig, "run", "-k", "test_wake"], work, 300)
    results = json.loads((work / "reports/latest/results.json").read_text())
    assert results["verdict"] == "pass"
    assert {t["scenario"] for t in results["tests"]} == {"wake"}
    # the suite ran from the wheel, not from this checkout
    assert str(REPO) not in json.dumps(results)


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")),
                    reason="the vpico needs Node >= 18 with npm")
def test_an_installed_vpico_is_set_up_in_the_users_cache(venv, tmp_path):
    """Without rp2040js a vpico bench is one line naming `tsfrig vpico-setup` (exit 2). The
    setup runs npm ci into XDG_CACHE_HOME, never into site-packages, and the bench then
    finds it there (it goes on to ask for the bootrom, which no test has). npm ci needs the
    registry: where it can't be reached, its failure is checked instead and the rest skips."""
    tsfrig = venv / "bin/tsfrig"
    shipped = Path(run([venv / "bin/python", "-c", "import harness.vpico as v; print(v.__file__)"],
                       tmp_path, 60).stdout.strip()).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSFRIG_")}
    env |= {"XDG_CACHE_HOME": str(tmp_path / "cache"), "npm_config_cache": str(tmp_path / "npm")}
    placeholder = tmp_path / "never-booted.uf2"  # the bench stops before it reads an image
    placeholder.write_bytes(b"")
    sim = [tsfrig, "sim", "--config", shipped / "rig_vpico.yaml", "--target", "vpico",
           "--firmware", placeholder]

    def bench_says() -> list[str]:
        r = subprocess.run([str(a) for a in sim], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        return r.stderr.strip().splitlines()

    assert bench_says() == ["tsfrig: vpico: rp2040js is not installed; run `tsfrig vpico-setup` "
                            "(or `make vpico` in a clone)"]
    ping = subprocess.run(["npm", "ping", "--fetch-retries=0", "--fetch-timeout=10000"],
                          env=env, capture_output=True, timeout=60, cwd=tmp_path)
    if ping.returncode != 0:
        r = subprocess.run([tsfrig, "vpico-setup"], cwd=tmp_path, capture_output=True, text=True,
                           env=env | {"npm_config_fetch_retries": "0"}, timeout=300)
        assert r.returncode == 2
        assert r.stderr.startswith("tsfrig: vpico-setup: npm ci failed (")
        assert len(r.stderr.strip().splitlines()) == 1
        assert not list((tmp_path / "cache").rglob("node_modules"))  # nothing half-installed
        pytest.skip("the npm registry is not reachable: only npm ci's failure was checked")
    said = run([tsfrig, "vpico-setup"], tmp_path, 300, env=env).stdout
    cached = next((tmp_path / "cache/tsfrig").glob("vpico-*"))
    assert f"installed in {cached}" in said
    assert (cached / "node_modules/rp2040js/package.json").is_file()
    assert {p.name for p in cached.glob("*.mjs")} == set(NODE_MODULES)  # all board.mjs imports
    assert not list(shipped.rglob("node_modules"))  # site-packages untouched
    assert "TSFRIG_VPICO_BOOTROM" in bench_says()[-1]  # past rp2040js: it was found
    again = run([tsfrig, "vpico-setup"], tmp_path, 60, env=env).stdout
    assert again.strip() == f"vpico: rp2040js is already installed in {cached}"
