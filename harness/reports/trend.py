"""`tsfrig trend PATH...`: many runs (e.g. one per firmware build) side by side, in run order.

One column per build: its identity and run verdict, each scenario's outcome, latency p50/p99
per target and set source, and between neighbouring builds the verdict `tsfrig compare` would
give (regression / fixed / ok / incomplete). Written as trend.json (the data) and trend.html
(a self-contained page: inline CSS and SVG, nothing fetched).

    python -m harness.reports.trend reports/ [--out DIR] [--config rig_config.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from harness.config import CompareConfig
from harness.reports.charts import trend_svg
from harness.reports.compare import CompareError, compare_runs, not_selected
from harness.reports.results import firmware_label
from harness.reports.run_report import CSS, METRICS, ReportError, latency_groups, load_results
from harness.suite.stats import summary

QUANTILES = ("p50", "p99")
COMPARE_CSS = """
.regression{background:#d62728} .fixed{background:#2ca02c} .ok{background:#98c998}
td.cmp{color:#fff;font-weight:bold;text-align:center} td.outcome.missing{background:#eee;color:#888}
th.build{font-weight:normal;font-size:12px} th.build b{font-size:13px}
td.regressed{box-shadow:inset 3px 0 0 #d62728}
td.outcome.not_selected{background:#f4f4f4;color:#888;font-style:italic}
"""
NOT_SELECTED = "not selected"  # an outcome cell: the run's -k or --target left it out


class TrendError(Exception):
    """The runs can't be read: one line naming the file or directory."""


def _run_dirs(path: Path) -> list[Path]:
    """A run directory itself, or the run subdirectories of a reports directory."""
    if (path / "results.json").exists():
        return [path]
    if not path.is_dir():
        raise TrendError(f"{path}: no such run or reports directory; give run directories "
                         "(reports/<run-id>) or a reports directory")
    subs = sorted(p for p in path.iterdir()
                  if not p.is_symlink() and p.is_dir() and (p / "results.json").exists())
    if not subs:
        raise TrendError(f"{path / 'results.json'}: no results.json here and no run "
                         "directories under it; give run directories or a reports directory")
    return subs


def _started(doc: dict, path: Path) -> datetime:
    try:
        t = datetime.fromisoformat(doc["started"])
    except ValueError:
        raise TrendError(f"{path / 'results.json'}: started: {doc['started']!r} is not an "
                         "ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def collect(paths: list[Path]) -> list[dict]:
    """Every run under `paths` once (a `latest` symlink is not a second run), oldest first by
    `started`. Each item: {"dir": run directory, "doc": its results.json}."""
    seen: set[Path] = set()
    runs = []
    for p in paths:
        for d in _run_dirs(Path(p)):
            real = d.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                doc = load_results(d, any_verdict=True)
            except ReportError as e:
                raise TrendError(str(e)) from None
            runs.append({"dir": d, "doc": doc, "_t": _started(doc, d)})
    runs.sort(key=lambda r: (r["_t"], r["doc"]["run_id"]))
    return [{"dir": r["dir"], "doc": r["doc"]} for r in runs]


def _build(doc: dict, run_dir: Path) -> dict:
    targets = [{"name": t["name"],
                "version": t["firmware"].get("version") or "unknown version",
                "build_hash": t["firmware"].get("build_hash"),
                "build_id": t["firmware"].get("build_id"),
                "label": firmware_label(t["firmware"])} for t in doc["targets"]]
    return {"run_id": doc["run_id"], "started": doc["started"], "verdict": doc["verdict"],
            "dir": str(run_dir), "targets": targets}


def _neighbour(base: dict, new: dict, cfg: CompareConfig, earlier: list[dict]) -> dict:
    """What `tsfrig compare BASE NEW --history <earlier runs>` says, as one of regression /
    fixed / ok / incomplete, and the floor each latency metric was judged against."""
    out = {"base": base["doc"]["run_id"], "new": new["doc"]["run_id"]}
    try:
        r = compare_runs(base["dir"], new["dir"], cfg, history=earlier)
    except CompareError as e:
        return {**out, "verdict": "incomplete", "summary": f"not comparable: {e}",
                "regressions": [], "improvements": [], "incomplete": [str(e)],
                "not_selected": [], "selection": ""}
    verdict = {"fail": "regression", "incomplete": "incomplete"}.get(r.status)
    if verdict is None:
        verdict = "fixed" if r.improvements else "ok"
    return {**out, "verdict": verdict, "summary": r.summary_line(),
            "regressions": r.regressions, "improvements": r.improvements,
            "incomplete": r.incomplete, "not_selected": r.not_selected,
            "selection": r.selection,
            "floors": [f"{x.target} [{x.source}] {x.metric}: {x.test.floor.us:.0f} µs "
                       f"({x.test.floor.source}), could see ≥ {x.test.detectable_us:.0f} µs"
                       for x in r.latency]}


def build_trend(runs: list[dict], cfg: CompareConfig) -> dict:
    """trend.json: builds (columns, run order), outcomes and latency per build (None where a
    build has none), and the compare verdict between each pair of neighbouring builds."""
    n = len(runs)
    outcomes: dict[str, list[str | None]] = {}
    latency: dict[str, dict] = {}
    for i, run in enumerate(runs):
        doc = run["doc"]
        for t in doc["tests"]:
            key = f"{t['target']} / {t['scenario']} [{t['irq_kind']}]"
            outcomes.setdefault(key, [None] * n)[i] = t["outcome"]
        for (target, source), metrics in latency_groups(doc).items():
            row = latency.setdefault(f"{target} [{source}]", {
                "target": target, "source": source,
                **{m: {q: [None] * n for q in QUANTILES} for m, _ in METRICS}})
            for m, _ in METRICS:
                if metrics[m]:
                    s = summary(metrics[m])
                    for q in QUANTILES:
                        row[m][q][i] = round(s[q], 1)
    for i, run in enumerate(runs):  # left out on purpose is not "missing"
        for key, per_build in outcomes.items():
            if per_build[i] is None and not_selected(run["doc"], key, key.split(" / ")[0]):
                per_build[i] = NOT_SELECTED
    return {"schema": "tsfrig-trend/1",
            "compare_config": {"alpha": cfg.alpha, "effect_floor_us": cfg.effect_floor_us,
                               "min_effect_size": cfg.min_effect_size},
            "builds": [_build(r["doc"], r["dir"]) for r in runs],
            "outcomes": dict(sorted(outcomes.items())),
            "latency": dict(sorted(latency.items())),
            "compares": [_neighbour(a, b, cfg, [r["doc"] for r in runs[:i + 1]])
                         for i, (a, b) in enumerate(zip(runs, runs[1:], strict=False))]}


# ---- trend.html --------------------------------------------------------------------------

def _build_label(b: dict) -> str:
    ids = sorted({t["build_hash"] or t["build_id"] or "unknown build" for t in b["targets"]})
    return ", ".join(ids) or "no target identity"


def _head(trend: dict) -> str:
    cells = []
    for i, b in enumerate(trend["builds"]):
        fw = "<br>".join(f"{escape(t['name'])}: {escape(t.get('label') or t['version'])}"
                         for t in b["targets"])
        cells.append(f'<th class="build" data-build="{i + 1}"><b>#{i + 1} '
                     f'{escape(b["run_id"])}</b><br>{escape(b["started"])}<br>'
                     f'build {escape(_build_label(b))}<br>{fw}</th>')
    return "<tr><th></th>" + "".join(cells) + "</tr>"


def _compare_row(trend: dict) -> str:
    """Under build i: the verdict of compare(build i-1, build i)."""
    cells = ["<td>—</td>"] if trend["builds"] else []
    for i, c in enumerate(trend["compares"]):
        why = "; ".join(c["regressions"] or c["incomplete"] or c["improvements"]) or c["summary"]
        if c.get("floors"):  # which floor judged each latency metric
            why += " | floors: " + "; ".join(c["floors"])
        mark = {"regression": "▲ ", "fixed": "▼ "}.get(c["verdict"], "")
        cells.append(f'<td class="cmp {c["verdict"]}" data-compare="{i + 1}-{i + 2}" '
                     f'title="{escape(why)}">{mark}{c["verdict"]}</td>')
    return "<tr><th>vs previous build</th>" + "".join(cells) + "</tr>"


def _table(trend: dict) -> str:
    regressed = {i + 1 for i, c in enumerate(trend["compares"]) if c["verdict"] == "regression"}
    verdicts = "".join(f'<td class="outcome {escape(b["verdict"])}" data-run-verdict="{i + 1}">'
                       f'{escape(b["verdict"])}</td>' for i, b in enumerate(trend["builds"]))
    rows = [_head(trend), f"<tr><th>run verdict</th>{verdicts}</tr>", _compare_row(trend)]
    for key, per_build in trend["outcomes"].items():
        cells = "".join(
            f'<td class="outcome {(o or "missing").replace(" ", "_")}'
            f'{" regressed" if i in regressed else ""}">{o or "—"}</td>'
            for i, o in enumerate(per_build))
        rows.append(f'<tr data-scenario="{escape(key)}"><th>{escape(key)}</th>{cells}</tr>')
    for key, row in trend["latency"].items():
        for m, _ in METRICS:
            for q in QUANTILES:
                cells = "".join(
                    f'<td class="num" data-build="{i + 1}">{"—" if v is None else f"{v:.0f}"}</td>'
                    for i, v in enumerate(row[m][q]))
                rows.append(f'<tr data-latency="{escape(key)}" data-series="{m}" '
                            f'data-metric="{q}"><th>{escape(key)} {m} {q} (µs)</th>{cells}</tr>')
    return "<table id='trend'>" + "".join(rows) + "</table>"


CHANGE_KINDS = ("REGRESSION", "INCOMPLETE", "fixed", NOT_SELECTED)


def change_lines(trend: dict) -> list[tuple[str, str]]:
    """(kind, text) of every line under "Changes between neighbouring builds": the summary
    counts these same lines, so the header and the list can't disagree."""
    out = []
    for i, c in enumerate(trend["compares"]):
        sel = f" in NEW ({c['selection']})" if c.get("selection") else " in NEW"
        for what, lines in (("REGRESSION", c["regressions"]), ("INCOMPLETE", c["incomplete"]),
                            ("fixed", c["improvements"]),
                            (NOT_SELECTED, c.get("not_selected", []))):
            label = f"{what}{sel}:" if what == NOT_SELECTED else what
            out += [(what, f"#{i + 1} → #{i + 2} ({c['base']} → {c['new']}): {label} {x}")
                    for x in lines]
    return out


def summary_line(trend: dict) -> str:
    """Each neighbour compare's verdict (a regression outranks incompleteness, as in
    `tsfrig compare`), then the change lines listed by kind."""
    n = len(trend["builds"])
    verdicts = {v: sum(x["verdict"] == v for x in trend["compares"])
                for v in ("regression", "fixed", "ok", "incomplete")}
    kinds = [kind for kind, _ in change_lines(trend)]
    return (f"{n} build{'s' if n != 1 else ''}; neighbour compares: "
            + ", ".join(f"{k} {v}" for k, v in verdicts.items())
            + "; changes listed: " + ", ".join(f"{kinds.count(k)} {k}" for k in CHANGE_KINDS))


def _changes(trend: dict) -> str:
    items = [f'<li data-kind="{escape(kind)}">{escape(text)}</li>'
             for kind, text in change_lines(trend)]
    return f"<ul id='changes'>{''.join(items) or '<li>none</li>'}</ul>"


def _charts(trend: dict) -> str:
    labels = [b["run_id"] for b in trend["builds"]]
    charts = []
    for key, row in trend["latency"].items():
        series = {f"{m} {q}": row[m][q] for m, _ in METRICS for q in QUANTILES}
        charts.append(trend_svg(series, labels, f"{key}: latency p50/p99 across builds"))
    return f'<div class="charts">{"".join(charts)}</div>'


def render_trend(trend: dict) -> str:
    c = trend["compare_config"]
    n = len(trend["builds"])
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>tsfrig trend: {n} builds</title>
<style>{CSS}{COMPARE_CSS}</style></head><body>
<h1>Trend across {n} builds</h1>
<p id="summary">{escape(summary_line(trend))}</p>
<p>Columns are builds in run order (by start time). "vs previous build" is what
<code>tsfrig compare</code> says of each build against the one before it: regression (▲) when a
scenario newly fails, second-waiter behaviour changes or latency shifts significantly above a
per-metric floor (Holm over the metrics at family-wise alpha {c['alpha']:g}; the floor is the
run-to-run spread of the earlier builds' runs where there are enough, else the larger of
{c['effect_floor_us']:g} µs and effect size {c['min_effect_size']:g} on the samples' spread);
incomplete when something was not measured. A scenario a run's
<code>-k</code> or <code>--target</code> left out is "not selected": neither a regression nor
incomplete.</p>
<h2>Changes between neighbouring builds</h2>{_changes(trend)}
<h2>Builds</h2>{_table(trend)}
<h2>Latency across builds</h2>{_charts(trend)}
</body></html>"""


def write_trend(out_dir: Path, trend: dict) -> tuple[Path, Path]:
    """trend.html and trend.json in out_dir; an OSError is the caller's to explain."""
    out_dir = Path(out_dir)
    html_path, json_path = out_dir / "trend.html", out_dir / "trend.json"
    json_path.write_text(json.dumps(trend, indent=1))
    html_path.write_text(render_trend(trend))
    return html_path, json_path


# ---- command line ------------------------------------------------------------------------

def _fail(message: str) -> int:
    print(f"tsfrig trend: {' '.join(message.split())}", file=sys.stderr)
    return 2


def cmd_trend(args: argparse.Namespace) -> int:
    from harness.config import ConfigError, load_config

    paths = [Path(p) for p in args.paths]
    try:
        runs = collect(paths)
        cfg = load_config(args.config).compare
    except (TrendError, ConfigError) as e:
        return _fail(str(e))
    if args.out:
        out = Path(args.out)
    else:  # the reports directory given, else the one holding the runs: next to them
        import os

        out = next((p for p in paths if not (p / "results.json").exists()),
                   Path(os.path.commonpath([p.absolute().parent for p in paths])))
    trend = build_trend(runs, cfg)
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path, json_path = write_trend(out, trend)
    except OSError as e:
        return _fail(f"cannot write {e.filename or out} ({e.strerror}): pass --out a writable "
                     "directory")
    print(f"trend: {len(runs)} builds: {html_path} {json_path}")
    print(f"trend: {summary_line(trend)}")
    return 0


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+",
                   help="run directories (reports/<run-id>) or reports directories")
    p.add_argument("--out", metavar="DIR",
                   help="where trend.html and trend.json go (default: the reports directory "
                        "given, or the directory holding the run directories given)")
    p.add_argument("--config", default="rig_config.yaml",
                   help="rig config whose compare: section sets the thresholds")
    p.set_defaults(func=cmd_trend)


def add_trend_parser(sub: argparse._SubParsersAction) -> None:
    _add_args(sub.add_parser(
        "trend", help="many runs (firmware builds) side by side: outcomes, latency, compares",
        description="one column per build in run order; writes trend.html and trend.json; "
                    "exit 0, or 2 on bad input"))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="tsfrig trend", description=__doc__.splitlines()[0])
    _add_args(p)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
