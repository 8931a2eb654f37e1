"""Latency statistics: distributions, not averages, and a regression rule that does not
cry wolf on run-to-run noise."""

from __future__ import annotations

from dataclasses import dataclass

QUANTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0))
QUANTILE_NAMES = tuple(name for name, _ in QUANTILES)  # budgets, tables, compare: this order


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): always a value that was actually measured."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def summary(values: list[float]) -> dict[str, float]:
    """n, p50, p90, p99, max (µs)."""
    out: dict[str, float] = {"n": len(values)}
    for name, q in QUANTILES:
        out[name] = percentile(values, q) if values else float("nan")
    return out


def histogram(values: list[float], bins: int = 30) -> tuple[list[float], list[int]]:
    """Equal-width bins over [min, max]; returns (edges, counts)."""
    lo, hi = min(values), max(values)
    if hi == lo:
        hi = lo + 1.0
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    return [lo + i * width for i in range(bins + 1)], counts


def cdf_points(values: list[float], max_points: int = 400) -> list[tuple[float, float]]:
    """(value, fraction <= value), thinned to at most max_points but keeping both ends."""
    s = sorted(values)
    n = len(s)
    step = max(1, n // max_points)
    idx = list(range(0, n, step))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return [(s[i], (i + 1) / n) for i in idx]


@dataclass(frozen=True)
class ShiftTest:
    """One-sided Mann-Whitney U (is NEW slower than BASE?) with its effect size."""

    p_value: float
    effect: float           # rank-biserial correlation, + means NEW tends to be slower
    median_shift_us: float  # median(NEW) - median(BASE)
    regression: bool


def shift_test(base: list[float], new: list[float], alpha: float, effect_floor_us: float,
               min_effect_size: float) -> ShiftTest:
    """A regression needs all three: significant (p < alpha), a median shift above the floor,
    and a rank-biserial effect of at least min_effect_size. Noise fails one of them."""
    from scipy.stats import mannwhitneyu

    if not base or not new:
        return ShiftTest(1.0, 0.0, 0.0, False)
    res = mannwhitneyu(new, base, alternative="greater")
    effect = 2.0 * res.statistic / (len(base) * len(new)) - 1.0
    shift = percentile(new, 50) - percentile(base, 50)
    regression = (res.pvalue < alpha and shift > effect_floor_us and effect >= min_effect_size)
    return ShiftTest(float(res.pvalue), float(effect), float(shift), regression)
