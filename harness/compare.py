"""Compare two runs (e.g. two firmware builds): semantics that changed, and latency shifts
judged by a one-sided Mann-Whitney U with an effect-size floor, so noise is not a regression."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from harness.charts import cdf_svg
from harness.config import CompareConfig
from harness.report import CSS, METRICS, latency_groups, load_results
from harness.stats import ShiftTest, shift_test, summary


class CompareError(Exception):
    """The two runs can't be compared (missing, or nothing in common)."""


@dataclass
class LatencyRow:
    target: str
    kind: str
    metric: str
    base: dict[str, float]
    new: dict[str, float]
    test: ShiftTest
    base_samples: list[float]
    new_samples: list[float]


@dataclass
class CompareResult:
    base_id: str
    new_id: str
    semantic: list[tuple[str, str, str, str]] = field(default_factory=list)  # key, base, new, note
    latency: list[LatencyRow] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # scenarios a bench fault hid
    cfg: CompareConfig = field(default_factory=CompareConfig)


def _first_failure(message: str) -> str:
    """The first "  - ..." clause of a verdict message, else its first line."""
    lines = message.splitlines()
    clauses = [ln.strip()[2:] for ln in lines if ln.strip().startswith("- ")]
    return clauses[0] if clauses else (lines[0] if lines else "")


def _key(t: dict) -> str:
    return f"{t['target']} / {t['scenario']} [{t['irq_kind']}]"


def compare_runs(base_dir: Path, new_dir: Path, cfg: CompareConfig) -> CompareResult:
    try:
        base, new = load_results(Path(base_dir)), load_results(Path(new_dir))
    except Exception as e:
        raise CompareError(str(e)) from None
    bt = {t["name"] for t in base["targets"]}
    nt = {t["name"] for t in new["targets"]}
    if not bt & nt:
        raise CompareError(f"the runs share no target: BASE has {sorted(bt) or 'none'}, "
                           f"NEW has {sorted(nt) or 'none'}")
    btests = {_key(t): t for t in base["tests"]}
    ntests = {_key(t): t for t in new["tests"]}
    common = sorted(btests.keys() & ntests.keys())
    if not common:
        raise CompareError("the runs share no scenario: compare runs of the same suite")
    res = CompareResult(base["run_id"], new["run_id"], cfg=cfg)
    for k in common:
        b, n = btests[k], ntests[k]
        note = ""
        if b["outcome"] == "passed" and n["outcome"] == "failed":
            note = "regression"
            res.regressions.append(f"{k}: passed → failed: {_first_failure(n['message'])}")
        elif b["outcome"] == "failed" and n["outcome"] == "passed":
            note = "fixed"
            res.improvements.append(f"{k}: failed → passed")
        elif "error" in (b["outcome"], n["outcome"]):
            note = "not compared: bench fault"
            res.incomplete.append(f"{k}: {b['outcome']} → {n['outcome']} (bench fault, "
                                  "not a firmware verdict)")
        bsw = b.get("details", {}).get("second_waiter_observed")
        nsw = n.get("details", {}).get("second_waiter_observed")
        if bsw and nsw and bsw != nsw:
            note = "behaviour changed"
            res.regressions.append(f"{k}: second concurrent waiter was {bsw}, now {nsw}")
        res.semantic.append((k, b["outcome"], n["outcome"], note))
    bl, nl = latency_groups(base), latency_groups(new)
    for tk in sorted(bl.keys() & nl.keys()):
        for m, _ in METRICS:
            bs, ns = bl[tk][m], nl[tk][m]
            if not bs or not ns:
                continue
            st = shift_test(bs, ns, cfg.alpha, cfg.effect_floor_us, cfg.min_effect_size)
            row = LatencyRow(tk[0], tk[1], m, summary(bs), summary(ns), st, bs, ns)
            res.latency.append(row)
            if st.regression:
                res.regressions.append(
                    f"{tk[0]} [{tk[1]}] {m}: median +{st.median_shift_us:.0f} µs "
                    f"(p = {st.p_value:.2g}, effect {st.effect:.2f})")
    return res


def render_compare(r: CompareResult) -> str:
    verdict = "fail" if r.regressions else "pass"
    sem = "".join(f"<tr><td>{escape(k)}</td><td class='outcome {b}'>{b}</td>"
                  f"<td class='outcome {n}'>{n}</td><td>{escape(note)}</td></tr>"
                  for k, b, n, note in r.semantic)
    lat_rows, charts = [], []
    for row in r.latency:
        cells = "".join(
            f"<td class='num' data-metric='{q}' data-kind='{escape(row.kind)}' "
            f"data-series='{row.metric}'>{row.base[q]:.0f} → {row.new[q]:.0f} "
            f"({row.new[q] - row.base[q]:+.0f})</td>" for q in ("p50", "p90", "p99", "max"))
        flag = "REGRESSION" if row.test.regression else "ok"
        lat_rows.append(f"<tr><td>{escape(row.target)}</td><td>{escape(row.kind)}</td>"
                        f"<td>{row.metric}</td>{cells}<td class='num'>{row.test.p_value:.3g}</td>"
                        f"<td class='num'>{row.test.effect:.2f}</td><td>{flag}</td></tr>")
        charts.append(cdf_svg({f"BASE {r.base_id}": row.base_samples,
                               f"NEW {r.new_id}": row.new_samples},
                              f"{row.target} {row.kind} {row.metric}: CDF, BASE vs NEW"))
    c = r.cfg
    items = "".join(f"<li>{escape(x)}</li>" for x in r.regressions) or "<li>none</li>"
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>tsfrig compare {escape(r.base_id)} → {escape(r.new_id)}: {verdict}</title>
<style>{CSS}</style></head><body>
<h1>Compare BASE {escape(r.base_id)} → NEW {escape(r.new_id)}
<span class="verdict {verdict}" id="verdict">{verdict.upper()}</span></h1>
<h2>Regressions</h2><ul id="regressions">{items}</ul>
<h2>Semantics</h2><table><tr><th>scenario</th><th>BASE</th><th>NEW</th><th>change</th></tr>
{sem}</table>
<h2>Latency (µs, BASE → NEW)</h2>
<p>Regression = one-sided Mann-Whitney U p &lt; {c.alpha:g}, median shift &gt;
{c.effect_floor_us:g} µs and rank-biserial effect ≥ {c.min_effect_size:g}.</p>
<table><tr><th>target</th><th>set source</th><th>metric</th><th>p50</th><th>p90</th><th>p99</th>
<th>max</th><th>p</th><th>effect</th><th>verdict</th></tr>{''.join(lat_rows)}</table>
<div class="charts">{''.join(charts)}</div></body></html>"""


def write_compare_html(r: CompareResult, out: Path) -> Path:
    out.write_text(render_compare(r))
    return out
