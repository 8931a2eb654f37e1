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


# ---- the gate: a stated false-alarm rate and the shift each metric could have seen ---------
#
# Samples of one run share the host's load at that moment, so two runs of one build differ by
# more than their samples say. A shift is a regression only when it is significantly larger
# than a floor that covers that run-to-run spread (H0: shift <= floor), with the metrics of a
# compare corrected together (Holm), so an unchanged build is flagged at most alpha of the time.

POWER = 0.95  # "could see X µs": a shift of X is caught in 95 of 100 compares
SPREAD_CONFIDENCE = 0.8  # A/B could-see: the spread taken at its upper 80 % confidence bound


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values: reject where adjusted p < alpha and the family-wise
    false-alarm rate is at most alpha, whatever the dependence between the metrics."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    out, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        out[i] = running
    return out


def _prob_greater(shape, d: float) -> float:
    """P(X' + d > X), ties counted half, for X and X' drawn from the sorted sample `shape`."""
    import numpy as np

    lo = np.searchsorted(shape, shape + d, side="left")
    hi = np.searchsorted(shape, shape + d, side="right")
    return float((lo.sum() + 0.5 * (hi - lo).sum()) / len(shape) ** 2)


def _smallest_shift(shape, target: float) -> float:
    """The smallest d >= 0 with P(X' + d > X) >= target (inf when no shift reaches it)."""
    if target >= 1.0:
        return float("inf")
    lo, hi = 0.0, float(shape[-1] - shape[0]) + 1.0
    if _prob_greater(shape, lo) >= target:
        return 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if _prob_greater(shape, mid) >= target else (mid, hi)
    return hi


def _shape(base: list[float], new: list[float]):
    """Both samples, NEW moved back by the median shift: the spread a shift is judged against."""
    import numpy as np

    shift = percentile(new, 50) - percentile(base, 50)
    return np.sort(np.array(list(base) + [v - shift for v in new], dtype=float))


def effect_size_floor(base: list[float], new: list[float], min_effect_size: float) -> float:
    """min_effect_size (rank-biserial) as µs: the shift at which it is reached on the wider of
    the two runs' spreads. A run made on a loaded host is wide and moves with the load, so it
    gets a wide floor; tight runs a tight one."""
    import numpy as np

    target = (1.0 + min_effect_size) / 2
    return max(_smallest_shift(np.sort(np.array(s, dtype=float)), target) for s in (base, new))


def detectable_shift(base: list[float], new: list[float], floor_us: float, alpha: float,
                     power: float = POWER) -> float:
    """The smallest shift a one-sided Mann-Whitney U of NEW - floor against BASE at level
    alpha catches with probability `power`, for samples of this size and spread (normal
    approximation of U; the spread is the pooled samples')."""
    from statistics import NormalDist

    n1, n2 = len(base), len(new)
    if not n1 or not n2:
        return float("inf")
    z = NormalDist().inv_cdf(1 - alpha) + NormalDist().inv_cdf(power)
    need = 0.5 + z * ((n1 + n2 + 1) / (12.0 * n1 * n2)) ** 0.5
    return floor_us + _smallest_shift(_shape(base, new), need)


def shift_above_floor_p(base: list[float], new: list[float], floor_us: float) -> float:
    """One-sided Mann-Whitney U p-value for H0: NEW is no more than floor_us slower than BASE."""
    from scipy.stats import mannwhitneyu

    if not base or not new:
        return 1.0
    return float(mannwhitneyu([v - floor_us for v in new], base, alternative="greater").pvalue)


def rank_biserial(base: list[float], new: list[float]) -> float:
    """+1: every NEW sample slower than every BASE sample; 0: no tendency."""
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(new, base, alternative="greater").statistic
    return float(2.0 * u / (len(base) * len(new)) - 1.0)


@dataclass(frozen=True)
class Floor:
    """The tolerance a shift must significantly exceed, and where it came from."""

    us: float
    source: str  # "config" (effect_floor_us), "effect size" (min_effect_size), "history"
    detail: str  # one phrase a reader can check


@dataclass(frozen=True)
class History:
    """Earlier runs' spread of one metric's run median: the run-to-run noise two separate runs
    of one build show, within-run sampling included."""

    sd_us: float  # standard deviation of one run's median
    df: int  # its degrees of freedom
    detail: str  # where it came from, in words


def history_spread(runs: list[tuple[str, float]]) -> History | None:
    """From earlier runs' (build, median) in run order: the spread of a run median between runs
    of one build, pooled over builds with several runs; else, from 5 runs on, the robust
    spread of neighbouring runs' medians (a real step between builds moves it little). None
    when the history is too short to say (fewer than 3 degrees of freedom)."""
    from statistics import mean, median

    by_build: dict[str, list[float]] = {}
    for build, m in runs:
        by_build.setdefault(build, []).append(m)
    repeated = [ms for ms in by_build.values() if len(ms) >= 2]
    df = sum(len(ms) - 1 for ms in repeated)
    if df >= 3:
        sd = (sum((m - mean(ms)) ** 2 for ms in repeated for m in ms) / df) ** 0.5
        n = sum(map(len, repeated))
        return History(sd, df, f"{n} earlier runs of {len(repeated)} "
                               f"build{'s' if len(repeated) != 1 else ''}")
    if len(runs) >= 5:
        steps = [abs(b[1] - a[1]) for a, b in zip(runs, runs[1:], strict=False)]
        return History(1.4826 * median(steps) / 2 ** 0.5, len(runs) - 2,
                       f"neighbour steps of {len(runs)} earlier runs")
    return None


def _history_test(shift: float, h: History, alpha: float) -> tuple[float, Floor, float]:
    """p-value of a median shift against the run-to-run spread, the floor it must clear at
    level alpha, and the shift caught in POWER of compares."""
    from scipy.stats import t as student_t

    sd = 2 ** 0.5 * h.sd_us  # the difference of two run medians
    if sd == 0:
        return (0.0 if shift > 0 else 1.0), Floor(0.0, "history", h.detail), 0.0
    q = float(student_t.ppf(1 - alpha, h.df))
    floor = Floor(q * sd, "history", f"run-to-run sd of the median {h.sd_us:.0f} µs from "
                                     f"{h.detail}, t({h.df})")
    return (float(student_t.sf(shift / sd, h.df)), floor,
            (q + float(student_t.ppf(POWER, h.df))) * sd)


@dataclass(frozen=True)
class GateTest:
    """One metric's verdict: a shift significantly above its floor, Holm-corrected."""

    p_value: float  # H0: shift <= floor, one metric alone
    p_holm: float  # Holm-adjusted over the compare's metrics
    effect: float  # rank-biserial (separate runs); NaN for A/B
    median_shift_us: float  # median(NEW) - median(BASE), or the mean paired difference (A/B)
    floor: Floor
    detectable_us: float  # the smallest shift caught in POWER of compares, these samples
    regression: bool


@dataclass(frozen=True)
class GatePolicy:
    """How the false-alarm budget is spent, for the report to state."""

    alpha: float  # family-wise false-alarm rate of one compare (Holm over the metrics)
    metrics: int
    test: str  # which test, in words


SEPARATE_TEST = ("per metric, a one-sided Mann-Whitney U of NEW − floor against BASE (H0: "
                 "shift ≤ floor), and, where earlier runs give the run-to-run spread, also a "
                 "one-sided t-test of the median shift against it")


def gate_separate(pairs: list[tuple[list[float], list[float], History | None]],
                  effect_floor_us: float, min_effect_size: float,
                  alpha: float) -> tuple[GatePolicy, list[GateTest]]:
    """Judge every metric of a compare of two separate runs at once, (BASE samples, NEW
    samples, history or None) each, Holm-corrected at family-wise alpha. With a history the
    median shift must clear its run-to-run spread and min_effect_size as µs on the samples'
    spread; without, the larger of effect_floor_us and that."""
    policy = GatePolicy(alpha, len(pairs), SEPARATE_TEST)
    first_step = alpha / max(1, len(pairs))  # Holm's strictest level: what "could see" assumes
    rows = []
    for base, new, history in pairs:
        ok = bool(base and new)
        shift = percentile(new, 50) - percentile(base, 50) if ok else 0.0
        if ok and history is not None:
            # both must reject (an intersection-union test: p is the larger): the shift clears
            # the run-to-run spread of the history, whose tails are heavier than Student's
            # t says, and min_effect_size on these samples' spread; effect_floor_us, a fixed
            # guess, gives way to the history
            p, hist, seen = _history_test(shift, history, first_step)
            es = effect_size_floor(base, new, min_effect_size)
            p = max(p, shift_above_floor_p(base, new, es))
            seen = max(seen, detectable_shift(base, new, es, first_step))
            floor = Floor(max(hist.us, es), "history",
                          f"{hist.detail}; and min_effect_size {min_effect_size:g} on these "
                          f"samples' spread, {es:.0f} µs")
        else:
            es = effect_size_floor(base, new, min_effect_size) if ok else 0.0
            floor = Floor(effect_floor_us, "config", f"effect_floor_us {effect_floor_us:g} µs") \
                if effect_floor_us >= es else \
                Floor(es, "effect size", f"min_effect_size {min_effect_size:g} as µs on these "
                                         "samples' spread")
            p = shift_above_floor_p(base, new, floor.us)
            seen = detectable_shift(base, new, floor.us, first_step) if ok else float("inf")
        rows.append((p, floor, seen, shift, rank_biserial(base, new) if ok else 0.0))
    adjusted = holm([r[0] for r in rows])
    return policy, [GateTest(p, ph, eff, shift, floor, seen, ph < alpha)
                    for (p, floor, seen, shift, eff), ph in zip(rows, adjusted, strict=True)]


def hodges_lehmann(base: list[float], new: list[float], cap: int = 2000) -> float:
    """The median of all NEW - BASE sample differences: the shift Mann-Whitney tests, and
    steadier between runs than the difference of medians (on the sim bench's thread metrics,
    half the run-to-run spread). Samples above `cap` are thinned to `cap` quantiles."""
    import numpy as np

    def thin(x: list[float]):
        a = np.sort(np.array(x, dtype=float))
        return a if len(a) <= cap else np.quantile(a, np.linspace(0, 1, cap))

    return float(np.median(np.subtract.outer(thin(new), thin(base))))


def paired_policy(alpha: float, metrics: int, pairs: int) -> GatePolicy:
    """A/B blocks on one bench: drift falls on both sides, so the whole budget goes to the
    tests and the floor is effect_floor_us alone."""
    return GatePolicy(alpha, metrics,
                      f"per metric, a one-sided paired t-test over {pairs} A/B block pairs of "
                      "each pair's Hodges-Lehmann shift B − A (H0: mean shift ≤ floor)")


def _paired_p(diffs: list[float], floor_us: float) -> float:
    from statistics import mean, stdev

    from scipy.stats import t as student_t

    k = len(diffs)
    if k < 2:
        return 1.0
    excess, sd = mean(diffs) - floor_us, stdev(diffs)
    if sd == 0:
        return 0.0 if excess > 0 else 1.0
    return float(student_t.sf(excess / (sd / k ** 0.5), k - 1))


def paired_detectable(diffs: list[float], floor_us: float, alpha: float,
                      power: float = POWER) -> float:
    """The smallest mean difference the paired t-test at level alpha catches with
    probability `power`, for this many pairs. The spread is the upper 80 % confidence bound
    of the pairs' standard deviation, not the estimate: from 8 pairs the estimate is often
    low, and with it the claim was caught 11 times in 15 (benchmarks/bench_gate.py)."""
    from statistics import stdev

    from scipy.stats import chi2
    from scipy.stats import t as student_t

    k = len(diffs)
    if k < 2:
        return float("inf")
    q = student_t.ppf(1 - alpha, k - 1) + student_t.ppf(power, k - 1)
    sd_upper = stdev(diffs) * ((k - 1) / chi2.ppf(1 - SPREAD_CONFIDENCE, k - 1)) ** 0.5
    return floor_us + float(q) * sd_upper / k ** 0.5


def gate_paired(diffs_per_metric: list[list[float]], effect_floor_us: float,
                alpha: float) -> tuple[GatePolicy, list[GateTest]]:
    """Judge every metric of an A/B compare: per metric the per-pair shifts B - A (Hodges-
    Lehmann). Holm over the metrics at alpha; floor effect_floor_us."""
    from statistics import mean

    pairs = min((len(d) for d in diffs_per_metric), default=0)
    policy = paired_policy(alpha, len(diffs_per_metric), pairs)
    floor = Floor(effect_floor_us, "config", f"effect_floor_us {effect_floor_us:g} µs")
    ps = [_paired_p(d, floor.us) for d in diffs_per_metric]
    first_step = alpha / max(1, len(diffs_per_metric))
    return policy, [GateTest(p, ph, float("nan"), mean(d) if d else 0.0, floor,
                             paired_detectable(d, floor.us, first_step), ph < alpha)
                    for d, p, ph in zip(diffs_per_metric, ps, holm(ps), strict=True)]
