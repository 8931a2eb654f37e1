"""Regression-gate benchmark on the simulated bench: prints figures, asserts nothing.

Every run is a real `tsfrig run -k test_latency` (3 set sources x 100 pulses), in sequences:

- quiet: 2N runs of one build; with hogs: 2N more with CPU hogs (`python -c "while 1: pass"`,
  started and stopped here)
- per injected IRQ latency S (the sim's irq_latency_us): 2N runs alternating A (none) and
  B (+S) in the order A B B A ..., so the same runs serve as N separate-run pairs and as
  A/B compares

and the figures, all computed afterwards from the runs (OUT/runs.json; --analyse DIR redoes
them without running anything):

- false alarms per same-build pair (consecutive runs), quiet and with hogs: the old rule
  (per-metric Mann-Whitney, no correction), the gate with its config floor, the gate with the
  earlier runs of the sequence as history; and A/B compares over windows of --blocks runs
- detection per injected shift: separate runs (A vs B of each pair) and A/B (each window of
  --blocks runs), and whether what the gate claimed it could see was caught
- the smallest shift each source and metric could have seen (median over compares)
- min_effect_size sensitivity: false alarms and detection for other values (recomputed)

With --out DIR holding an earlier runs.json, only the sequences it lacks are run and added.

    .venv/bin/python benchmarks/bench_gate.py [--pairs 10] [--shifts 300 600 1000] \\
        [--shift-pairs N] [--blocks 16] [--hogs 2] [--out DIR] [--analyse DIR]

The closing figures of issue 21 came from --pairs 100 --shifts 600 (600 runs, about 50 min
on 2 cores): +600 µs moves edge -> ack by about 470 µs, just above what separate runs can see.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.children import die_with_parent, stop_child
from harness.cli.ab import Block, ab_result, block_order
from harness.config import load_config
from harness.reports.compare import compare_runs
from harness.reports.run_report import METRICS, latency_groups, load_results
from harness.suite.stats import shift_test

REPO = Path(__file__).resolve().parent.parent
K = "test_latency"
EDGE = "edge_to_ack_us"  # what an injected IRQ latency moves (the board clock starts at the IRQ)


# ---- making the runs ----------------------------------------------------------------------

def config_with_latency(out: Path, latency_us: int) -> Path:
    """The shipped rig config with the sim board's IRQ delayed by latency_us."""
    text = (REPO / "rig_config.yaml").read_text()
    path = out / f"rig_latency_{latency_us}.yaml"
    path.write_text(re.sub(r"irq_latency_us: \d+", f"irq_latency_us: {latency_us}", text))
    return path


def tsfrig_run(config: Path, report_dir: Path) -> str | None:
    """One real run of the latency scenarios; its run directory, None if a bench fault left
    it without a latency sample for some set source (a lost run, not a gate verdict)."""
    subprocess.run([sys.executable, "-m", "harness.cli", "run", "--config", str(config), "-k", K,
                    "--report-dir", str(report_dir)], cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=600, check=False)
    run = (report_dir / "latest").resolve()
    if not (run / "results.json").is_file():
        return None
    groups = latency_groups(load_results(run, any_verdict=True))
    return str(run) if len(groups) == 3 and all(all(m.values()) for m in groups.values()) \
        else None


class Hogs:
    """n busy CPU loops for the length of a with-block; stopped even when the block raises."""

    def __init__(self, n: int):
        self.n, self.procs = n, []

    def __enter__(self) -> Hogs:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"],
                                       preexec_fn=die_with_parent) for _ in range(self.n)]
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            stop_child(p)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f}/{five:.1f} (1/5 min)"


def sequence(label: str, configs: dict[str, Path], n: int, out: Path) -> dict:
    """n runs in A B B A order (one config: all alike); each [side, run dir or None]."""
    t0, start = time.monotonic(), load_note()
    runs = []
    for i, side in enumerate(block_order(n)):
        cfg = configs.get(side, configs["A"])
        runs.append([side, tsfrig_run(cfg, out / f"{label}-{i:03d}-{side}")])
    dt = time.monotonic() - t0
    lost = sum(r is None for _, r in runs)
    print(f"runs {label}: {n} in {dt:.0f} s ({dt / max(1, n):.1f} s each, {lost} lost to "
          f"bench faults); {start} at start, {load_note()} at end", flush=True)
    return {"runs": runs, "seconds": round(dt, 1), "load_start": start, "load_end": load_note()}


def collect(args, out: Path) -> dict:
    """Every sequence not already in OUT/runs.json (a second call adds to the first's runs,
    e.g. the hogs once the host is otherwise idle), runs.json rewritten after each."""
    path = out / "runs.json"
    data: dict = json.loads(path.read_text()) if path.exists() else \
        {"args": vars(args), "cpus": os.cpu_count(), "sequences": {}}
    seqs = data["sequences"]

    def save() -> None:
        path.write_text(json.dumps(data, indent=1))

    plain = config_with_latency(out, 0)
    if "quiet" not in seqs:
        seqs["quiet"] = sequence("quiet", {"A": plain}, 2 * args.pairs, out)
        save()
    if args.hogs and "hogs" not in seqs:
        with Hogs(args.hogs):
            seqs["hogs"] = sequence(f"{args.hogs}-hogs", {"A": plain}, 2 * args.pairs, out)
        save()
    for s in args.shifts:
        if f"shift {s}" not in seqs:
            seqs[f"shift {s}"] = sequence(f"shift-{s}", {"A": plain,
                                                         "B": config_with_latency(out, s)},
                                          2 * (args.shift_pairs or args.pairs), out)
            save()
    return data


# ---- judging them -------------------------------------------------------------------------

def old_rule(base: Path, new: Path, cfg) -> bool:
    """The rule before the gate: any metric with p < alpha, shift > effect_floor_us and
    effect >= min_effect_size (per-metric Mann-Whitney, no correction)."""
    bl, nl = latency_groups(load_results(base)), latency_groups(load_results(new))
    return any(shift_test(bl[k][m], nl[k][m], cfg.alpha, cfg.effect_floor_us,
                          cfg.min_effect_size).regression
               for k in bl.keys() & nl.keys() for m, _ in METRICS if bl[k][m] and nl[k][m])


def _metrics(latency) -> dict:
    return {f"{x.source} {x.metric}": {
        "shift": round(x.test.median_shift_us, 1), "floor": round(x.test.floor.us, 1),
        "floor_source": x.test.floor.source, "p_holm": x.test.p_holm,
        "detectable": x.test.detectable_us, "flagged": x.test.regression} for x in latency}


@functools.cache
def _doc(run: str) -> dict:
    return load_results(Path(run))


def judge(base: str, new: str, cfg, history: list[str] | None = None) -> dict:
    hist = [_doc(p) for p in history] if history else None
    r = compare_runs(Path(base), Path(new), cfg, hist)
    return {"base": base, "new": new, "any_regression": bool(r.regressions),
            "flagged": any(x.test.regression for x in r.latency), "metrics": _metrics(r.latency)}


def judge_ab(window: list[list], cfg) -> dict:
    blocks = [Block(i + 1, side, Path(run) if run else None, 0, "", 0.0,
                    "" if run else f"block {i + 1} ({side}) has no results")
              for i, (side, run) in enumerate(window)]
    r = ab_result(blocks, cfg)
    return {"order": [s for s, _ in window], "any_regression": bool(r.regressions),
            "flagged": any(x.test.regression for x in r.latency), "metrics": _metrics(r.latency)}


def pairs_of(runs: list[list]) -> list[tuple[str, str]]:
    """(A run, B run) of each consecutive pair whose both runs have results."""
    out = []
    for i in range(0, len(runs) - 1, 2):
        (s1, r1), (_, r2) = runs[i], runs[i + 1]
        if r1 and r2:
            out.append((r1, r2) if s1 == "A" else (r2, r1))
    return out


def windows(runs: list[list], blocks: int) -> list[list[list]]:
    return [runs[i:i + blocks] for i in range(0, len(runs) - blocks + 1, blocks)]


def _rate(rows: list[dict], key: str = "flagged") -> str:
    return f"{sum(r[key] for r in rows)}/{len(rows)}"


def same_build(label: str, seq: dict, cfg, blocks: int, min_history: int = 5) -> dict:
    runs = seq["runs"]
    pairs = pairs_of(runs)
    ok = [r for _, r in runs if r]
    gate = [judge(a, b, cfg) for a, b in pairs]
    hist = []
    for a, b in pairs:
        earlier = ok[:ok.index(min(a, b, key=ok.index))]
        if len(earlier) >= min_history:
            hist.append(judge(a, b, cfg, earlier))
    ab = [judge_ab(w, cfg) for w in windows(runs, blocks)]
    old = sum(old_rule(Path(a), Path(b), cfg) for a, b in pairs)
    print(f"false alarms, same build, {label}: old rule {old}/{len(pairs)} pairs; gate, config "
          f"floor {_rate(gate)} (any regression incl. scenario verdicts "
          f"{_rate(gate, 'any_regression')}); gate, history floor (>= {min_history} earlier "
          f"runs) {_rate(hist)}; A/B over {blocks} runs {_rate(ab)}", flush=True)
    return {"pairs": len(pairs), "old_rule": old, "gate": gate, "gate_history": hist, "ab": ab}


def _realised(rows: list[dict]) -> dict[str, float]:
    """Per source, the median over pairs of the observed edge -> ack median shift: what the
    sim made of the injected latency (the IRQ delay shares the board's 1 ms poll)."""
    out = {}
    for src in ("hard", "soft", "thread"):
        key = f"{src} {EDGE}"
        v = [r["metrics"][key]["shift"] for r in rows if key in r["metrics"]]
        if v:
            out[src] = statistics.median(v)
    return out


def _claims(rows: list[dict], realised: dict[str, float]) -> str:
    """Caught / claimed: metric-compares whose 'could see' was at most the realised shift."""
    hits = [m["flagged"] for r in rows for k, m in r["metrics"].items()
            if k.endswith(EDGE) and m["detectable"] <= realised.get(k.split()[0], 0.0)]
    return f"{sum(hits)}/{len(hits)}"


def detection(shift: int, seq: dict, quiet: dict, cfg, blocks: int) -> dict:
    pairs = pairs_of(seq["runs"])
    history = [r for _, r in quiet["runs"] if r]
    sep = [judge(a, b, cfg) for a, b in pairs]
    sep_h = [judge(a, b, cfg, history) for a, b in pairs]
    ab = [judge_ab(w, cfg) for w in windows(seq["runs"], blocks)]
    first = [judge(*pairs_of(w)[0], cfg) for w in windows(seq["runs"], blocks) if pairs_of(w)]
    per_src = {name: ", ".join(
        f"{src} {sum(r['metrics'].get(f'{src} {EDGE}', {}).get('flagged', False) for r in rows)}"
        f"/{len(rows)}" for src in ("hard", "soft", "thread"))
        for name, rows in (("separate", sep), ("A/B", ab))}
    real = _realised(sep)
    print(f"detection +{shift} µs injected ({EDGE} median moved by "
          + ", ".join(f"{k} {v:.0f}" for k, v in real.items())
          + f" µs, median over pairs): separate runs, config floor {_rate(sep)} pairs ({EDGE} "
          f"per source {per_src['separate']}); history floor (the quiet runs) {_rate(sep_h)}; "
          f"A/B over {blocks} runs {_rate(ab)} ({per_src['A/B']}), the A/B's first pair as "
          f"separate runs {_rate(first)}. Caught where it claimed it could see the realised "
          f"shift ({EDGE}, metric-compares): config {_claims(sep, real)}, history "
          f"{_claims(sep_h, real)}, A/B {_claims(ab, real)}", flush=True)
    return {"separate": sep, "separate_history": sep_h, "ab": ab, "ab_first_pair": first}


def median_detectable(rows: list[dict]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r["metrics"]})
    return {k: statistics.median(r["metrics"][k]["detectable"] for r in rows
                                 if k in r["metrics"]) for k in keys}


def sensitivity(data: dict, cfg, values=(0.3, 0.4, 0.5, 0.6)) -> None:
    """False alarms and detection of the separate-run gate (config floor) for other
    min_effect_size values, on the same runs."""
    seqs = data["sequences"]
    for e in values:
        c = dataclasses.replace(cfg, min_effect_size=e)
        parts = []
        for name in ("quiet", "hogs"):
            if name in seqs:
                rows = [judge(a, b, c) for a, b in pairs_of(seqs[name]["runs"])]
                parts.append(f"false alarms {name} {_rate(rows)}")
        for name, seq in seqs.items():
            if name.startswith("shift"):
                rows = [judge(a, b, c) for a, b in pairs_of(seq["runs"])]
                parts.append(f"{name} µs caught {_rate(rows)}")
        print(f"  min_effect_size {e:g}: " + "; ".join(parts), flush=True)


def analyse(data: dict, cfg, blocks: int) -> dict:
    seqs = data["sequences"]
    res = {name: same_build(name, seqs[name], cfg, blocks) for name in ("quiet", "hogs")
           if name in seqs}
    for name, seq in seqs.items():
        if name.startswith("shift"):
            res[name] = detection(int(name.split()[1]), seq, seqs["quiet"], cfg, blocks)
    print("smallest shift each could see (µs, median over compares; caught in 95 % at the "
          "stated alpha):")
    tables = {"separate runs, config floor (quiet pairs)": res["quiet"]["gate"],
              "separate runs, history floor (quiet pairs)": res["quiet"]["gate_history"],
              f"A/B over {blocks} runs (quiet)": res["quiet"]["ab"]}
    if "hogs" in res:
        tables["separate runs, config floor (hogs)"] = res["hogs"]["gate"]
        tables[f"A/B over {blocks} runs (hogs)"] = res["hogs"]["ab"]
    res["detectable"] = {}
    for name, rows in tables.items():
        table = median_detectable(rows) if rows else {}
        res["detectable"][name] = table
        print(f"  {name}, {len(rows)} compares: "
              + "; ".join(f"{k} {v:.0f}" for k, v in table.items()), flush=True)
    print(f"min_effect_size sensitivity (config floor, effect_floor_us "
          f"{cfg.effect_floor_us:g}):")
    sensitivity(data, cfg)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10, help="pairs per sequence (2 runs each)")
    ap.add_argument("--shifts", type=int, nargs="*", default=[300, 600, 1000],
                    help="injected IRQ latencies (µs)")
    ap.add_argument("--shift-pairs", type=int, default=0,
                    help="pairs per shift sequence (default: --pairs)")
    ap.add_argument("--blocks", type=int, default=16, help="runs per A/B compare (even)")
    ap.add_argument("--hogs", type=int, default=2, help="CPU hogs in the loaded sequence")
    ap.add_argument("--out", help="keep every run, runs.json and bench_gate.json here")
    ap.add_argument("--analyse", metavar="DIR", help="judge the runs of an earlier --out DIR")
    args = ap.parse_args()
    cfg = load_config(REPO / "rig_config.yaml").compare
    with tempfile.TemporaryDirectory() as tmp:
        if args.analyse:
            out = Path(args.analyse).resolve()
            data = json.loads((out / "runs.json").read_text())
        else:
            out = Path(args.out).resolve() if args.out else Path(tmp)
            out.mkdir(parents=True, exist_ok=True)
            print(f"bench_gate: {args.pairs} pairs per sequence, shifts {args.shifts} µs, "
                  f"A/B over {args.blocks} runs, {args.hogs} hogs; {os.cpu_count()} CPUs",
                  flush=True)
            data = collect(args, out)
        print(f"gate: alpha {cfg.alpha:g}, effect_floor_us {cfg.effect_floor_us:g}, "
              f"min_effect_size {cfg.min_effect_size:g}", flush=True)
        res = analyse(data, cfg, args.blocks)
        (out / "bench_gate.json").write_text(json.dumps(res, indent=1, default=str))
        print(f"raw results: {out}" if args.out or args.analyse else
              "raw results: pass --out DIR to keep them")


if __name__ == "__main__":
    main()
