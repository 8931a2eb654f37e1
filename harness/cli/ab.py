"""`tsfrig compare --ab A B`: two builds on one bench, interleaved in blocks A B B A A B B A ...

Two runs made apart mostly measure which load each drew. Here each block is one `tsfrig run`
of one build, the sides alternate in ABBA order so drift falls on both alike, and the latency
verdict pairs every A block with its neighbouring B block: per metric, each pair's
Hodges-Lehmann shift B - A, a one-sided paired t-test over the pairs (H0: B is no more than
effect_floor_us slower), Holm over the metrics. Semantics are judged as `tsfrig compare` does,
block pair by block pair. The order and every block's run directory go to ab.json.

A side is a MicroPython unix-port executable (`tsfrig run --firmware`) or an overlay
directory (`tsfrig run --overlay`). Exit codes as `tsfrig compare`: 0 pass, 1 regression,
2 incomplete or bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.children import die_with_parent, stop_child
from harness.config import CompareConfig
from harness.reports.run_report import METRICS, latency_groups
from harness.suite.stats import gate_paired, hodges_lehmann, summary

DEFAULT_BLOCKS = 16
DEFAULT_K = "test_latency"
BLOCK_TIMEOUT_S = 600.0


class AbError(Exception):
    """The A/B compare can't start: one line naming the problem and the fix."""


@dataclass(frozen=True)
class Side:
    """One build: its label, what the user named, and how `tsfrig run` is told to use it."""

    label: str
    build: str
    run_args: tuple[str, ...]


def side_for(label: str, path: str, extra: tuple[str, ...] = ()) -> Side:
    """A directory is an overlay; an executable file is a unix-port firmware."""
    p = Path(path).expanduser()
    if p.is_dir():
        return Side(label, str(p.resolve()), ("--overlay", str(p.resolve()), *extra))
    if p.is_file() and os.access(p, os.X_OK):
        return Side(label, str(p.resolve()), ("--firmware", str(p.resolve()), *extra))
    raise AbError(f"--ab {label}: {path} is neither an overlay directory nor an executable "
                  "firmware file; give a MicroPython unix-port executable or a module overlay "
                  "directory")


def block_order(blocks: int) -> list[str]:
    """A B B A A B B A ...: every pair holds one of each, and a linear drift cancels over two
    pairs."""
    return ["ABBA"[i % 4] for i in range(blocks)]


@dataclass
class Block:
    index: int
    side: str
    run_dir: Path | None
    exit_code: int
    started: str
    seconds: float
    cause: str = ""  # why it has no results, leading with the cause


def _run_block(index: int, side: Side, config: Path, k: str, out: Path,
               timeout_s: float) -> Block:
    report_dir = out / f"block-{index:02d}-{side.label}"
    cmd = [sys.executable, "-m", "harness.cli", "run", "--config", str(config), "-k", k,
           "--report-dir", str(report_dir), *side.run_args]
    started, t0 = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=die_with_parent)
    try:
        _, err = proc.communicate(timeout=timeout_s)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        stop_child(proc)
        err, code = f"the block did not finish in {timeout_s:g} s", -1
    except BaseException:
        stop_child(proc)
        raise
    run_dir = (report_dir / "latest").resolve()
    ok = (run_dir / "results.json").is_file()
    cause = "" if ok else (f"block {index} ({side.label}) has no results (exit {code}): "
                           + ((err or "").strip().splitlines() or ["no message"])[-1])
    return Block(index, side.label, run_dir if ok else None, code, started,
                 time.monotonic() - t0, cause)


def _samples(docs: list[dict]) -> dict[tuple[str, str, str], list[float]]:
    out: dict[tuple[str, str, str], list[float]] = {}
    for doc in docs:
        for (t, s), ms in latency_groups(doc).items():
            for m, v in ms.items():
                if v:
                    out.setdefault((t, s, m), []).extend(v)
    return out


def _scenario_of(line: str) -> str:
    """The `target / scenario [source]` a verdict line is about, else the line itself."""
    m = re.search(r"\S+ / \S+ \[[^\]]+\]", line)
    return m.group(0) if m else line


def ab_result(blocks: list[Block], cfg: CompareConfig):
    """The CompareResult of an A/B: semantics per block pair (as `tsfrig compare`), latency
    from each pair's Hodges-Lehmann shift."""
    from harness.reports.compare import (
        CompareError,
        CompareResult,
        LatencyRow,
        compare_runs,
        load_run,
        regression_line,
    )

    pairs = [(blocks[i], blocks[i + 1]) for i in range(0, len(blocks) - 1, 2)]
    pairs = [(x, y) if x.side == "A" else (y, x) for x, y in pairs]
    whole = [(a, b) for a, b in pairs if a.run_dir and b.run_dir]
    if not whole:
        raise CompareError("no A/B block pair has results from both sides: "
                           + "; ".join(b.cause for b in blocks if b.cause))
    res: CompareResult | None = None
    for a, b in whole:
        r = compare_runs(a.run_dir, b.run_dir, cfg, judge_latency=False)
        if res is None:
            res = r
            continue
        for name in ("regressions", "improvements", "still_failing", "incomplete",
                     "run_faults"):  # once per scenario, not once per block pair
            mine = getattr(res, name)
            seen = {_scenario_of(x) for x in mine}
            mine += [x for x in getattr(r, name) if _scenario_of(x) not in seen]
        res.unmeasured, res.unjudged = max(res.unmeasured, r.unmeasured), \
            max(res.unjudged, r.unjudged)
    assert res is not None
    res.labels = ("A", "B")
    res.base_id, res.new_id = f"{len(whole)} A blocks", f"{len(whole)} B blocks"
    for blk in blocks:
        if blk.cause:
            res.incomplete.append(blk.cause)
            res.run_faults.append(f"block {blk.index} ({blk.side}) not measured")
    if len(whole) < len(pairs):
        res.incomplete.append(f"{len(pairs) - len(whole)} of {len(pairs)} block pairs lost a "
                              "side: their latency is left out of the paired test")
    docs = {blk.index: load_run(blk.run_dir, blk.side) for a, b in whole for blk in (a, b)}
    per_block = {i: _samples([d]) for i, d in docs.items()}
    order = [m for m, _ in METRICS]
    keys = sorted(set().union(*(set(m) for m in per_block.values())),
                  key=lambda x: (x[0], x[1], order.index(x[2])))
    diffs = [[hodges_lehmann(per_block[a.index][key], per_block[b.index][key])
              for a, b in whole if key in per_block[a.index] and key in per_block[b.index]]
             for key in keys]
    res.policy, tests = gate_paired(diffs, cfg.effect_floor_us, cfg.alpha)
    a_samples = _samples([docs[a.index] for a, _ in whole])
    b_samples = _samples([docs[b.index] for _, b in whole])
    for key, st, d in zip(keys, tests, diffs, strict=True):
        a_s, b_s = a_samples.get(key, []), b_samples.get(key, [])
        res.latency.append(LatencyRow(key[0], key[1], key[2], summary(a_s), summary(b_s), st,
                                      a_s, b_s))
        res.paired_diffs[key] = d
        if st.regression:
            res.regressions.append(regression_line(*key, st))
    return res


def write_ab_json(out: Path, sides: list[Side], blocks: list[Block], res) -> Path:
    """ab.json: the order the blocks ran in, each block's run, and the paired verdicts."""
    doc = {
        "schema": "tsfrig-ab/1",
        "sides": {s.label: {"build": s.build, "run_args": list(s.run_args)} for s in sides},
        "order": [b.side for b in blocks],
        "blocks": [{"index": b.index, "side": b.side, "started": b.started,
                    "seconds": round(b.seconds, 2), "exit_code": b.exit_code,
                    "run_dir": str(b.run_dir) if b.run_dir else None, "cause": b.cause}
                   for b in blocks],
        "status": res.status,
        "statistics": res.latency_lines()[:1],
        "latency": [{"target": r.target, "source": r.source, "metric": r.metric,
                     "paired_diffs_us": [round(x, 1) for x in
                                         res.paired_diffs[(r.target, r.source, r.metric)]],
                     "shift_us": round(r.test.median_shift_us, 1),
                     "floor_us": round(r.test.floor.us, 1), "p": r.test.p_value,
                     "p_holm": r.test.p_holm, "detectable_us": r.test.detectable_us,
                     "regression": r.test.regression} for r in res.latency],
        "regressions": res.regressions, "incomplete": res.incomplete,
    }
    path = out / "ab.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


def run_ab(sides: list[Side], config: Path, k: str, blocks: int, out: Path,
           cfg: CompareConfig, timeout_s: float = BLOCK_TIMEOUT_S,
           say=lambda line: None) -> tuple[object, list[Block]]:
    """Run the blocks in ABBA order on one bench and judge them; returns (result, blocks)."""
    by_label = {s.label: s for s in sides}
    done = []
    for i, label in enumerate(block_order(blocks), start=1):
        blk = _run_block(i, by_label[label], config, k, out, timeout_s)
        say(f"block {i}/{blocks} {label}: exit {blk.exit_code}, {blk.seconds:.1f} s")
        done.append(blk)
    return ab_result(done, cfg), done


def _blocks(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 4 or n % 2:
        raise argparse.ArgumentTypeError(f"{v!r}: give an even number of blocks, at least 4 "
                                         "(two A/B pairs)")
    return n


def add_ab_arguments(p: argparse.ArgumentParser) -> None:
    """--ab and its options on `tsfrig compare`."""
    p.add_argument("--ab", nargs=2, metavar=("A", "B"),
                   help="run builds A (baseline) and B on this bench, interleaved A B B A ...; "
                        "each a unix-port executable or an overlay directory")
    p.add_argument("--blocks", type=_blocks, default=DEFAULT_BLOCKS, metavar="N",
                   help=f"A/B: runs in all, even, at least 4 (default {DEFAULT_BLOCKS})")
    p.add_argument("-k", dest="ab_k", default=DEFAULT_K, metavar="EXPR",
                   help=f"A/B: pytest -k expression each block runs (default {DEFAULT_K!r})")
    p.add_argument("--report-dir", dest="ab_report_dir", metavar="DIR",
                   help="A/B: where the blocks, ab.json and compare.html go "
                        "(default reports/ab-<time>)")


def cmd_ab(args: argparse.Namespace) -> int:
    from harness.config import ConfigError, load_config
    from harness.reports.compare import CompareError
    from harness.reports.compare_html import write_compare_html

    def fail(msg: str) -> int:
        print(f"tsfrig compare: {msg}", file=sys.stderr)
        return 2

    try:
        config = Path(args.config).resolve()
        cfg = load_config(config).compare
        sides = [side_for("A", args.ab[0]), side_for("B", args.ab[1])]
    except (ConfigError, AbError) as e:
        return fail(str(e))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(args.ab_report_dir or Path("reports") / f"ab-{stamp}").resolve()  # as tsfrig run's
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return fail(f"cannot create {out} ({e.strerror}): pass --report-dir a writable DIR")
    order = block_order(args.blocks)
    print(f"A/B order: {' '.join(order)} ({args.blocks} blocks, {args.blocks // 2} pairs)",
          flush=True)
    try:
        res, blocks = run_ab(sides, config, args.ab_k, args.blocks, out, cfg,
                             say=lambda line: print(line, file=sys.stderr, flush=True))
    except CompareError as e:
        return fail(f"INCOMPLETE: {e}")
    except KeyboardInterrupt:
        print(f"tsfrig compare: interrupted; the blocks that ran are in {out}", file=sys.stderr)
        return 130
    html = Path(args.out) if args.out else out / "compare.html"
    try:
        write_ab_json(out, sides, blocks, res)
        write_compare_html(res, html)
    except OSError as e:
        return fail(f"cannot write {e.filename or out} ({e.strerror}): pass --report-dir a "
                    "writable DIR")
    for line in [f"A {sides[0].build}", f"B {sides[1].build}", *res.lines()]:
        print(line)
    print(f"compare report: {html}")
    print(f"A/B record: {out / 'ab.json'}")
    print(res.summary_line())
    return res.exit_code
