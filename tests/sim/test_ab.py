"""`tsfrig compare --ab A B` on the simulated bench: both builds run interleaved in blocks
A B B A ..., the order is recorded with each block's build, a build whose task wakes 20 ms late
is flagged by the paired test, the same build twice passes, and bad input is one line.
`bisect-step --ab GOOD` turns an A/B into git bisect's verdict."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from harness.cli import bisect
from tests.mutants import write_overlay

REPO = Path(__file__).resolve().parents[2]
K = "test_latency and hard"  # one set source: a block takes a few seconds


@pytest.fixture
def overlays(tmp_path: Path) -> tuple[Path, Path]:
    """An empty overlay (the build's own asyncio) and the 20 ms-late wake mutant."""
    plain = tmp_path / "plain"
    plain.mkdir()
    return plain, write_overlay("slow_wake", tmp_path / "slow")


@pytest.fixture
def ab(tsfrig):
    """`tsfrig compare --ab A B` over K, its report under out."""
    def run(a: Path, b: Path, out: Path, blocks: int = 6):
        return tsfrig("compare", "--ab", str(a), str(b), "--blocks", str(blocks), "-k", K,
                      "--report-dir", str(out), timeout=600)
    return run


def test_ab_interleaves_the_builds_and_flags_the_late_one(overlays, tmp_path, ab):
    plain, slow = overlays
    r = ab(plain, slow, tmp_path / "ab")
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout.strip().splitlines()
    assert out[0] == "A/B order: A B B A A B (6 blocks, 3 pairs)"
    record = json.loads((tmp_path / "ab" / "ab.json").read_text())
    assert record["order"] == list("ABBAAB")
    started = [datetime.fromisoformat(b["started"]) for b in record["blocks"]]
    assert started == sorted(started)
    for blk in record["blocks"]:  # each block ran the build its side names
        doc = json.loads((Path(blk["run_dir"]) / "results.json").read_text())
        want = plain if blk["side"] == "A" else slow
        assert doc["targets"][0]["firmware"]["overlay"] == str(want.resolve())
    assert any("paired t-test over 3 A/B block pairs" in x for x in out)
    assert any(x.startswith("REGRESSION sim [hard] irq_to_wake_us: median +2") for x in out), \
        r.stdout  # +20xxx µs
    assert out[-1].startswith("compare: FAIL: ")
    assert 'id="verdict">FAIL' in (tmp_path / "ab" / "compare.html").read_text()


def test_ab_of_one_build_passes_and_says_what_it_could_see(overlays, tmp_path, ab):
    plain, _ = overlays
    r = ab(plain, plain, tmp_path / "ab")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.strip().splitlines()
    seen = [x for x in out if x.startswith("latency sim [hard] ") and "could see ≥ " in x]
    assert len(seen) == 2, r.stdout
    assert out[-1] == "compare: PASS: 1 scenario measured, 0 regressions"


def test_ab_bad_input_is_one_line(tmp_path, tsfrig):
    for args, words in (
            (("--ab", str(tmp_path / "nope"), str(tmp_path)),
             ["--ab A: ", "neither an overlay directory nor an executable"]),
            (("base", "new", "--ab", str(tmp_path), str(tmp_path)), ["give no BASE NEW"]),
            (("--ab", str(tmp_path), str(tmp_path), "--blocks", "3"), ["even number"]),
            ((), ["give two run directories"])):
        r = tsfrig("compare", *args, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert all(w in r.stderr for w in words), r.stderr


def test_bisect_step_ab_calls_the_late_build_bad(overlays, tmp_path, capsys):
    plain, slow = overlays
    code = bisect.bisect_step(None, None, slow, REPO / "rig_config.yaml", K, tmp_path / "r",
                              tmp_path, ab_good=plain, ab_blocks=4)
    assert code == bisect.BAD
    assert capsys.readouterr().out.strip() == \
        "tsfrig bisect-step: bad (exit 1: firmware failure)"
    assert bisect.bisect_step(None, None, None, REPO / "rig_config.yaml", K, None, tmp_path,
                              ab_good=plain) == bisect.ABORT  # nothing to compare with GOOD
