"""compare.html: a compare's result as a page (identity, changes, latency with floors and
what each metric could see, CDFs)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from harness.reports.charts import cdf_svg
from harness.reports.compare import CompareResult, _us
from harness.reports.run_report import CSS
from harness.suite.stats import QUANTILE_NAMES


def _items(lines: list[str], html_id: str) -> str:
    body = "".join(f"<li>{escape(x)}</li>" for x in lines) or "<li>none</li>"
    return f'<ul id="{html_id}">{body}</ul>'


def _warnings(r: CompareResult) -> str:
    return "".join(f'<p class="warning" id="warning">WARNING {escape(w)}</p>'
                   for w in r.warnings)


def render_compare(r: CompareResult) -> str:
    status = r.status
    css = {"pass": "pass", "fail": "fail", "incomplete": "error"}[status]
    ident = "".join(f"<li>{escape(x)}</li>" for x in r.identity)
    sem = "".join(f"<tr><td>{escape(k)}</td><td class='outcome {b}'>{b}</td>"
                  f"<td class='outcome {n}'>{n}</td><td>{escape(note)}</td></tr>"
                  for k, b, n, note in r.semantic)
    lat_rows, charts = [], []
    for row in r.latency:
        cells = "".join(
            f"<td class='num' data-metric='{q}' data-kind='{escape(row.source)}' "
            f"data-series='{row.metric}'>{row.base[q]:.0f} → {row.new[q]:.0f} "
            f"({row.new[q] - row.base[q]:+.0f})</td>" for q in QUANTILE_NAMES)
        t = row.test
        flag = "REGRESSION" if t.regression else "ok"
        lat_rows.append(f"<tr><td>{escape(row.target)}</td><td>{escape(row.source)}</td>"
                        f"<td>{row.metric}</td>{cells}<td class='num'>{t.p_value:.3g}</td>"
                        f"<td class='num'>{t.p_holm:.3g}</td>"
                        f"<td class='num'>{'—' if t.effect != t.effect else f'{t.effect:.2f}'}"
                        f"</td><td class='num' data-floor='{t.floor.source}' "
                        f"title='{escape(t.floor.detail)}'>{t.floor.us:.0f} "
                        f"({escape(t.floor.source)})</td>"
                        f"<td class='num' data-detectable='{row.metric}'>"
                        f"{escape(_us(t.detectable_us))}</td><td>{flag}</td></tr>")
        a, b = r.labels
        charts.append(cdf_svg({f"{a} {r.base_id}": row.base_samples,
                               f"{b} {r.new_id}": row.new_samples},
                              f"{row.target} {row.source} {row.metric}: CDF, {a} vs {b}"))
    c = r.cfg
    a, b = r.labels
    stats = escape(r.latency_lines()[0].removeprefix("statistics: ")) if r.latency_lines() \
        else "no latency measured in both runs"
    floors = f"Floor: effect_floor_us ({c.effect_floor_us:g} µs)." if r.labels == ("A", "B") \
        else (f"Floors: history (earlier runs' run-to-run spread), else the larger of "
              f"effect_floor_us ({c.effect_floor_us:g} µs) and min_effect_size "
              f"({c.min_effect_size:g}, rank-biserial) as µs on the wider run's spread.")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>tsfrig compare {escape(r.base_id)} → {escape(r.new_id)}: {status}</title>
<style>{CSS}</style></head><body>
<h1>Compare {a} {escape(r.base_id)} → {b} {escape(r.new_id)}
<span class="verdict {css}" id="verdict">{status.upper()}</span></h1>
{_warnings(r)}<ul id="identity">{ident}</ul>
<p id="summary">{escape(r.summary_line())}</p>
<h2>Regressions</h2>{_items(r.regressions, "regressions")}
<h2>Not measured (bench fault or interrupted run; not a firmware verdict)</h2>
{_items(r.incomplete, "incomplete")}
<h2>Not selected in NEW{escape(f" ({r.selection})" if r.selection else "")}: left out on purpose,
neither a regression nor a bench fault</h2>
{_items(r.not_selected, "not-selected")}
<h2>Semantics</h2><table><tr><th>scenario</th><th>{a}</th><th>{b}</th><th>change</th></tr>
{sem}</table>
<h2>Latency (µs, {a} → {b})</h2>
<p id="statistics">Regression = a shift significantly above its floor: {stats}.
{floors} "Could see": no regression larger than this went unseen.</p>
<table><tr><th>target</th><th>set source</th><th>metric</th><th>p50</th><th>p90</th><th>p99</th>
<th>max</th><th>p</th><th>Holm p</th><th>effect</th><th>floor µs</th><th>could see</th>
<th>verdict</th></tr>{''.join(lat_rows)}</table>
<div class="charts">{''.join(charts)}</div></body></html>"""


def write_compare_html(r: CompareResult, out: Path) -> Path:
    """Write the page; an OSError (unwritable place) is the caller's to explain."""
    out.write_text(render_compare(r))
    return out
