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


def text_width(text: str, size: float = 11) -> float:
    """A generous estimate of a sans-serif text's width in px (no font metrics offline): a
    label placed by it stays inside its picture."""
    return len(text) * size * 0.62 + 2


def _anchored(x: float, text: str, w: float, size: float = 11) -> tuple[float, str]:
    """A centred label's x and anchor, moved inward where it would leave the picture."""
    half = text_width(text, size) / 2
    if x + half > w - 1:
        return w - 1, "end"
    if x - half < 1:
        return 1, "start"
    return x, "middle"


class _Plot:
    """Maps data to pixels and draws axes with ticks and unit labels."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, w: int = W, h: int = H):
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1)
        self.w, self.h = w, h
        self.parts: list[str] = []
        self.tick = _fmt  # how an x tick is written

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
            tx, anchor = _anchored(px, self.tick(t), self.w)
            p.append(f'<text x="{tx:.1f}" y="{base + 16}" text-anchor="{anchor}">'
                     f'{self.tick(t)}</text>')
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

    def legend(self, i: int, name: str, color: str, width: int = 0,
               bottom: int = 0) -> None:
        """Series i's swatch and name, stacked at the top right inside the plot (bottom: of
        this many rows, at the bottom right), as wide as the name needs (width: at least)."""
        width = max(width, int(14 + text_width(name)))
        ly = TOP + 14 * i + 8 if not bottom else self.h - BOTTOM - 14 * (bottom - i) + 4
        x = max(self.w - RIGHT - width, LEFT + 4)
        self.parts.append(f'<rect x="{x}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
                          f'<rect x="{x + 12}" y="{ly - 10}" width="{width - 12}" height="14" '
                          f'fill="#fff" fill-opacity="0.8"/><text x="{x + 14}" y="{ly + 1}">'
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
    width = int(14 + max(text_width(k) for k in series))  # one column of names
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
        plot.legend(i, name, color, width=width, bottom=len(series))  # a CDF's empty corner
    return plot.svg(title, "cdf")


LANES = (("stimulus_us", "stimulus", "#555"), ("irq_us", "IRQ", COLORS[0]),
         ("wake_us", "wake", COLORS[2]), ("ack_us", "ack", COLORS[1]))
LANE_H = 34  # px per signal
MARK_H = 22  # px above the lanes for the marker of the moment the contract broke


def timeline_svg(rows: list[dict], title: str, broke: tuple[float, str] | None = None,
                 window: tuple[float, float] | None = None, w: int = 960) -> str:
    """The scenario as a logic analyser shows it: stimulus, IRQ and wake as pulses and the
    ack line's level (it toggles once per wake) on one time axis, from the recorded samples
    (rows: harness.analysis.timeline). An IRQ with no wake after it is a red ✕ on the wake
    line; broke = (time, what): a red line where the contract broke; window: a zoom."""
    events = {k: sorted(r[k] for r in rows if r.get(k) is not None) for k, _, _ in LANES}
    times = [t for ts in events.values() for t in ts] or [0.0, 1.0]
    lo, hi = window or (min(times), max(times))
    pad = (hi - lo) * 0.03 or 10.0
    lo, hi = lo - pad, hi + pad
    top = TOP + MARK_H
    h = top + LANE_H * len(LANES) + BOTTOM
    plot = _Plot(lo, hi, 0, len(LANES), w=w, h=h)
    in_ms = hi - lo > 20000
    if in_ms:
        plot.tick = lambda t: _fmt(t / 1000)
    unit = "ms" if in_ms else "µs"
    plot.axes(f"time on the Pi clock ({unit} from the first stimulus edge)", "", yticks=False)
    p = plot.parts
    right = w - RIGHT
    for i, (k, label, color) in enumerate(LANES):
        high, low = top + LANE_H * i + 8, top + LANE_H * (i + 1) - 8
        p.append(f'<text x="{LEFT - 6}" y="{(high + low) / 2 + 4:.1f}" text-anchor="end">'
                 f'{label}</text>')
        seen = [t for t in events[k] if lo <= t <= hi]
        d = f"M{LEFT},{low}"
        if k == "ack_us":  # a level: it toggles at each edge
            level = sum(1 for t in events[k] if t < lo) % 2
            d = f"M{LEFT},{high if level else low}"
            for t in seen:
                level ^= 1
                d += f" H{plot.x(t):.1f} V{high if level else low}"
        else:  # a pulse per event, 2 px wide at least
            for t in seen:
                x = plot.x(t)
                d += f" H{x:.1f} V{high} H{x + 2:.1f} V{low}"
        d += f" H{right}"
        p.append(f'<path class="signal" data-signal="{label}" d="{d}" fill="none" '
                 f'stroke="{color}" stroke-width="1.5"/>')
        for r in rows:
            t = r.get(k)
            if t is not None and lo <= t <= hi:
                p.append(f'<circle class="event" cx="{plot.x(t):.1f}" cy="{high}" r="2" '
                         f'fill="{color}"><title>pulse {r["seq"]}: {label} at {t:.0f} µs'
                         '</title></circle>')
        if k == "wake_us":
            for r in rows:
                t = r.get("irq_us")
                if r.get("wake_us") is None and t is not None and lo <= t <= hi:
                    p.append(f'<text class="missed" x="{plot.x(t):.1f}" y="{low - 2}" '
                             f'fill="#d62728" text-anchor="middle">✕<title>pulse {r["seq"]}: '
                             'IRQ with no wake after it</title></text>')
    if broke is not None and lo <= broke[0] <= hi:
        x = plot.x(broke[0])
        p.append(f'<line class="broke" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" '
                 f'y2="{h - BOTTOM}" stroke="#d62728" stroke-width="2" stroke-dasharray="4 3"/>')
        label = f"contract broke: {broke[1]}"
        room = w - 8
        while text_width(label) > room and len(label) > 4:
            label = label[:-2] + "…"
        tx, anchor = _anchored(x, label, w)
        p.append(f'<text class="broke" x="{tx:.1f}" y="{top - 8}" text-anchor="{anchor}" '
                 f'fill="#d62728">{escape(label)}<title>{escape(broke[1])}</title></text>')
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
