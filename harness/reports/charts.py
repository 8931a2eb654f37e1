"""Inline SVG charts: histogram, overlaid CDFs, and a stimulus/IRQ/wake/ack timeline.

Generated in Python so a report is one self-contained file that renders offline.
"""

from __future__ import annotations

import math
from html import escape

from harness.suite.stats import cdf_points, histogram

W, H = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


class _Plot:
    """Maps data to pixels and draws axes with ticks and unit labels."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, w: int = W, h: int = H):
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1)
        self.w, self.h = w, h
        self.parts: list[str] = []

    def x(self, v: float) -> float:
        return LEFT + (v - self.x0) / (self.x1 - self.x0) * (self.w - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return self.h - BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (self.h - TOP - BOTTOM)

    def axes(self, xlabel: str, ylabel: str, yticks: bool = True) -> None:
        p = self.parts
        base = self.h - BOTTOM
        p.append(f'<line x1="{LEFT}" y1="{base}" x2="{self.w - RIGHT}" y2="{base}" '
                 'stroke="#333"/>')
        p.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#333"/>')
        for t in _nice_ticks(self.x0, self.x1):
            px = self.x(t)
            p.append(f'<line x1="{px:.1f}" y1="{base}" x2="{px:.1f}" y2="{base + 4}" '
                     'stroke="#333"/>')
            p.append(f'<text x="{px:.1f}" y="{base + 16}" text-anchor="middle">{_fmt(t)}</text>')
        if yticks:
            for t in _nice_ticks(self.y0, self.y1, 4):
                py = self.y(t)
                p.append(f'<line x1="{LEFT - 4}" y1="{py:.1f}" x2="{self.w - RIGHT}" '
                         f'y2="{py:.1f}" stroke="#ddd"/>')
                p.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">'
                         f'{_fmt(t)}</text>')
        p.append(f'<text x="{(LEFT + self.w - RIGHT) / 2}" y="{self.h - 8}" '
                 f'text-anchor="middle">{escape(xlabel)}</text>')
        p.append(f'<text x="14" y="{(TOP + base) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(TOP + base) / 2})">{escape(ylabel)}</text>')

    def legend(self, i: int, name: str, color: str, width: int) -> None:
        """Series i's swatch and name, stacked at the top right inside the plot."""
        ly = TOP + 14 * i + 8
        self.parts.append(f'<rect x="{W - RIGHT - width}" y="{ly - 8}" width="10" height="10" '
                          f'fill="{color}"/><text x="{W - RIGHT - width + 14}" y="{ly + 1}">'
                          f'{escape(name)}</text>')

    def svg(self, title: str, kind: str) -> str:
        return (f'<svg class="chart" data-chart="{kind}" xmlns="http://www.w3.org/2000/svg" '
                f'width="{self.w}" height="{self.h}" viewBox="0 0 {self.w} {self.h}" '
                f'font-family="sans-serif" font-size="11" role="img" '
                f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
                + "".join(self.parts) + "</svg>")


def histogram_svg(values: list[float], title: str, xlabel: str = "latency (µs)") -> str:
    edges, counts = histogram(values)
    plot = _Plot(edges[0], edges[-1], 0, max(counts) * 1.1)
    plot.axes(xlabel, "samples")
    for lo, hi, c in zip(edges, edges[1:], counts, strict=False):
        if c:
            x, x2, y = plot.x(lo), plot.x(hi), plot.y(c)
            plot.parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" '
                              f'width="{max(x2 - x - 1, 1):.1f}" height="{plot.y(0) - y:.1f}" '
                              f'fill="{COLORS[0]}"><title>{_fmt(lo)}–{_fmt(hi)} µs: {c}</title>'
                              '</rect>')
    return plot.svg(title, "histogram")


def cdf_svg(series: dict[str, list[float]], title: str, xlabel: str = "latency (µs)") -> str:
    """One step line per series, with a legend: overlaid CDFs compare two builds at a glance."""
    series = {k: v for k, v in series.items() if v}
    lo = min(min(v) for v in series.values())
    hi = max(max(v) for v in series.values())
    plot = _Plot(lo, hi, 0, 1)
    plot.axes(xlabel, "fraction of samples ≤ x")
    for i, (name, values) in enumerate(series.items()):
        pts = cdf_points(values)
        color = COLORS[i % len(COLORS)]
        d = "M" + " L".join(f"{plot.x(v):.1f},{plot.y(f):.1f}" for v, f in pts)
        plot.parts.append(f'<path class="cdf" d="{d}" fill="none" stroke="{color}" '
                          f'stroke-width="2"><title>{escape(name)}</title></path>')
        plot.legend(i, name, color, width=150)
    return plot.svg(title, "cdf")


LANES = (("stimulus_us", "stimulus", "#555"), ("irq_us", "IRQ", COLORS[0]),
         ("wake_us", "wake", COLORS[2]), ("ack_us", "ack", COLORS[1]))


def timeline_svg(rows: list[dict], title: str, limit: int = 40) -> str:
    """Lanes for stimulus, IRQ, wake and ack; a marker per event, a thin line per pulse."""
    rows = rows[:limit]
    times = [r[k] for r in rows for k, _, _ in LANES if r.get(k) is not None]
    if not times:
        times = [0.0, 1.0]
    h = 60 + 40 * len(LANES)
    plot = _Plot(min(times), max(times), 0, len(LANES), h=h)
    plot.axes("time on the Pi clock (µs from the first stimulus)", "", yticks=False)
    lane_y = {k: plot.y(len(LANES) - i - 0.5) for i, (k, _, _) in enumerate(LANES)}
    for k, label, _ in LANES:
        plot.parts.append(f'<text x="{LEFT - 6}" y="{lane_y[k] + 4:.1f}" text-anchor="end">'
                          f'{label}</text>')
    for r in rows:
        pts = [(plot.x(r[k]), lane_y[k]) for k, _, _ in LANES if r.get(k) is not None]
        if len(pts) > 1:
            d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            plot.parts.append(f'<path d="{d}" fill="none" stroke="#bbb"/>')
        for k, label, color in LANES:
            if r.get(k) is not None:
                plot.parts.append(
                    f'<circle class="event" cx="{plot.x(r[k]):.1f}" cy="{lane_y[k]:.1f}" r="4" '
                    f'fill="{color}"><title>pulse {r["seq"]} {label} at {r[k]:.0f} µs</title>'
                    '</circle>')
        if r.get("wake_us") is None and r.get("irq_us") is not None:
            x, y = plot.x(r["irq_us"]), lane_y["wake_us"] + 4
            plot.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" fill="#d62728" '
                              'text-anchor="middle">✕</text>')
    return plot.svg(title, "timeline")


def trend_svg(series: dict[str, list[float | None]], builds: list[str], title: str,
              ylabel: str = "latency (µs)") -> str:
    """One line per series across builds (x = build 1..n, in run order); a build without a
    value breaks the line. Each point's tooltip names the build and the value."""
    vals = [v for vs in series.values() for v in vs if v is not None]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 1.0)
    n = len(builds)
    top = hi + pad * (1 + 0.6 * len(series))  # headroom for the legend
    plot = _Plot(0.5, n + 0.5, max(lo - pad, 0.0) if lo >= 0 else lo - pad, top)
    plot.axes("build (run order)", ylabel)
    # builds are whole numbers: replace the axis' numeric x ticks by one per build (thinned)
    base = plot.h - BOTTOM
    plot.parts = [p for p in plot.parts
                  if not (f'y="{base + 16}"' in p or f'y2="{base + 4}"' in p)]
    step = max(1, math.ceil(n / 12))
    for b in range(1, n + 1, step):
        px = plot.x(b)
        plot.parts.append(f'<line x1="{px:.1f}" y1="{base}" x2="{px:.1f}" y2="{base + 4}" '
                          'stroke="#333"/>')
        plot.parts.append(f'<text class="build-tick" x="{px:.1f}" y="{base + 16}" '
                          f'text-anchor="middle">{b}</text>')
    for i, (name, values) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        runs: list[list[tuple[float, float]]] = [[]]
        for b, v in enumerate(values):
            if v is None:
                runs.append([])
                continue
            x, y = plot.x(b + 1), plot.y(v)
            runs[-1].append((x, y))
            plot.parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" '
                              f'fill="{color}"><title>{escape(name)} build {b + 1} '
                              f'{escape(builds[b])}: {_fmt(v)}</title></circle>')
        for seg in runs:
            if len(seg) > 1:
                d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in seg)
                plot.parts.append(f'<path class="trend" d="{d}" fill="none" stroke="{color}" '
                                  f'stroke-width="2"><title>{escape(name)}</title></path>')
        plot.legend(i, name, color, width=170)
    return plot.svg(title, "trend")
