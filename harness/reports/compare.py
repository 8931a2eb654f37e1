"""Compare two runs (e.g. two firmware builds) as a CI gate: semantics that changed, and latency
shifts judged against a noise floor per metric, Holm-corrected over the metrics, so an unchanged
build is flagged at most alpha of the time; each metric also says the smallest shift it could
have seen. A NEW run that did not measure what BASE measured is incomplete, never a pass; a
scenario NEW was not asked to measure (its -k or --target left it out) is "not selected": said,
but neither a regression nor incomplete.

Exit codes: 0 every BASE scenario NEW selected was measured in NEW, no regression; 1 a
regression (also when something else is incomplete: a measured regression is a firmware
verdict); 2 incomplete. BASE and NEW being one run is said in a warning line; the exit code
is what the comparison finds (a run compared with itself: 0, or 2 if it is incomplete)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.board.ports import UNSUPPORTED
from harness.board.profiles import is_unsupported
from harness.config import CompareConfig
from harness.reports.results import firmware_label
from harness.reports.run_report import METRICS, ReportError, latency_groups, load_results
from harness.suite.stats import (
    POWER,
    GatePolicy,
    GateTest,
    History,
    gate_separate,
    history_spread,
    percentile,
    summary,
)

COMPLETE_VERDICTS = ("pass", "fail")  # a run that ran everything it was asked to
FAILING = ("failed", "xfailed")  # xfailed: failed, under a declared known issue
MEASURED = ("passed", *FAILING)
BENCH_FAULT_PREFIX = "bench fault (not a firmware verdict): "  # the plugin's, said by the cause


class CompareError(Exception):
    """The two runs can't be compared (missing, unreadable, or nothing in common)."""


@dataclass
class LatencyRow:
    target: str
    source: str  # set source (irq_kind in results.json)
    metric: str
    base: dict[str, float]
    new: dict[str, float]
    test: GateTest
    base_samples: list[float]
    new_samples: list[float]


@dataclass
class CompareResult:
    base_id: str
    new_id: str
    identity: list[str] = field(default_factory=list)  # which builds, which run verdicts
    semantic: list[tuple[str, str, str, str]] = field(default_factory=list)  # key, base, new, note
    latency: list[LatencyRow] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # each line leads with its cause
    unmeasured: int = 0  # BASE scenarios NEW did not measure
    unjudged: int = 0  # BASE could not measure them (bench fault) and NEW failed them
    run_faults: list[str] = field(default_factory=list)  # e.g. "NEW run interrupted"
    measured: int = 0  # BASE scenarios NEW measured
    not_selected: list[str] = field(default_factory=list)  # BASE scenarios NEW's -k left out
    selection: str = ""  # how NEW was narrowed, e.g. "-k 'hard'"
    selection_recorded: bool = True  # False: NEW predates results.json's selection
    warnings: list[str] = field(default_factory=list)  # e.g. BASE and NEW are one run
    cfg: CompareConfig = field(default_factory=CompareConfig)
    policy: GatePolicy | None = None  # how the latency verdicts were reached
    labels: tuple[str, str] = ("BASE", "NEW")  # A/B: ("A", "B")
    paired_diffs: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)  # A/B

    @property
    def status(self) -> str:
        """fail / incomplete / pass: a regression outranks incompleteness."""
        if self.regressions:
            return "fail"
        return "incomplete" if self.incomplete else "pass"

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 1, "incomplete": 2}[self.status]

    def lines(self) -> list[str]:
        """Everything worth a line on stdout, identity first, each line leading with its cause."""
        return [*(f"WARNING {x}" for x in self.warnings),
                *self.identity,
                *self.latency_lines(),
                *(f"REGRESSION {x}" for x in self.regressions),
                *(f"INCOMPLETE {x}" for x in self.incomplete),
                *(f"still failing {x}" for x in self.still_failing),
                *(f"improved {x}" for x in self.improvements),
                *(f"not selected in NEW ({self.selection}): {x}" for x in self.not_selected)]

    def latency_lines(self) -> list[str]:
        """The statistics used, then per metric its shift, floor and what it could have seen."""
        if self.policy is None or not self.latency:
            return []
        p = self.policy
        out = [f"statistics: {p.test}; Holm over {p.metrics} metrics at family-wise "
               f"alpha {p.alpha:g} (an unchanged build is flagged at most {p.alpha:g} of "
               f"the time); 'could see' = caught in {POWER:.0%} of compares"]
        for row in self.latency:
            t = row.test
            verdict = "REGRESSION" if t.regression else "ok"
            out.append(f"latency {row.target} [{row.source}] {row.metric}: shift "
                       f"{t.median_shift_us:+.0f} µs, floor {t.floor.us:.0f} µs "
                       f"({t.floor.source}: {t.floor.detail}), p {t.p_value:.2g}, Holm "
                       f"{t.p_holm:.2g}: {verdict}; {_could_see(t.detectable_us)}")
        return out

    def summary_line(self) -> str:
        """The one line a CI log is read by."""
        same = "; BASE and NEW are the same run" if self.base_id == self.new_id else ""
        unsel = (f"; {_n(len(self.not_selected), 'scenario')} not selected in NEW "
                 f"({self.selection})" if self.not_selected else "")
        if self.status == "fail":
            also = f"; also incomplete: {self._incomplete_causes()}" if self.incomplete else ""
            return f"compare: FAIL: {_n(len(self.regressions), 'regression')}{also}{unsel}{same}"
        if self.status == "incomplete":
            return (f"compare: INCOMPLETE: {self._incomplete_causes()}; "
                    f"not a firmware verdict{unsel}{same}")
        return (f"compare: PASS: {_n(self.measured, 'scenario')} measured, 0 regressions"
                f"{unsel}{same}")

    def _incomplete_causes(self) -> str:
        parts = []
        if self.unmeasured:
            maybe = "bench fault or interrupted run" if self.selection_recorded else \
                "bench fault, interrupted run, or a -k that NEW's results.json does not record"
            parts.append(f"{_n(self.unmeasured, 'scenario')} not measured in NEW ({maybe})")
        if self.unjudged:
            parts.append(f"{_n(self.unjudged, 'scenario')} BASE could not measure failed in NEW")
        return "; ".join(parts + self.run_faults)


def _us(v: float) -> str:
    return f"≥ {v:.0f} µs" if v != float("inf") else "nothing (too few samples)"


def _could_see(v: float) -> str:
    return f"could see {_us(v)}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def load_run(run_dir: Path, label: str) -> dict:
    """One run's results.json. A verdict this harness doesn't know (a newer harness's) is
    accepted here and judged incomplete, rather than refused as a malformed file."""
    try:
        return load_results(run_dir, any_verdict=True)
    except ReportError as e:
        raise CompareError(f"{label} {e}") from None


def _build(fw: dict) -> str:
    """build_hash (covers executable + overlay) when recorded, else the board's build id."""
    if fw.get("build_hash"):
        return f"build {fw['build_hash']}"
    if fw.get("build_id"):
        overlay = f", overlay {fw['overlay']}" if fw.get("overlay") else ""
        return f"build {fw['build_id']}{overlay}"
    return "unknown build"


def _builds_line(base: dict, new: dict) -> str:
    """`builds: v1.27.0 (a1b2c3d) -> v1.29.0-preview (9458e3a)`, per target in both runs."""
    b = {t["name"]: firmware_label(t["firmware"]) for t in base["targets"]}
    n = {t["name"]: firmware_label(t["firmware"]) for t in new["targets"]}
    pairs = [f"{name} {b[name]} -> {n[name]}" for name in b if name in n]
    return "builds: " + ("; ".join(pairs) or "no target in both runs")


def identity_lines(label: str, doc: dict) -> list[str]:
    """`BASE <run_id>: <target> <version> build <hash>; run verdict <v>`, one per target."""
    head, tail = f"{label} {doc['run_id']}:", f"; run verdict {doc['verdict']}"
    lines = [f"{head} {t['name']} {t['firmware'].get('version') or 'unknown version'} "
             f"{_build(t['firmware'])}{tail}" for t in doc["targets"]]
    if not lines:
        fault = f" (bench fault: {doc['bench_fault']})" if doc.get("bench_fault") else ""
        lines.append(f"{head} no target identity recorded{fault}{tail}")
    return lines


def _first_failure(message: str) -> str:
    """The cause a verdict message leads with: its first line, without the
    "scenario [kind] on target: " prefix (the key already says that)."""
    first = message.splitlines()[0] if message else ""
    head, sep, cause = first.partition(" on ")
    if sep and "]" in head and ": " in cause:
        return cause.split(": ", 1)[1]
    return first


def _key(t: dict) -> str:
    return f"{t['target']} / {t['scenario']} [{t['irq_kind']}]"


def selection_text(doc: dict) -> str:
    """How a run was narrowed, as its command line said it: `-k 'hard'`, `--target a`."""
    sel = doc.get("selection") or {}
    parts = [f"-k {sel['k']!r}" if sel.get("k") else "",
             f"--target {sel['target']}" if sel.get("target") else ""]
    return " ".join(p for p in parts if p)


def not_selected(doc: dict, key: str, target: str) -> bool:
    """Did this run leave the scenario out on purpose (its -k or its --target)?"""
    sel = doc.get("selection") or {}
    return key in sel.get("deselected", ()) or bool(sel.get("target")) and \
        sel["target"] != target


def _judge(res: CompareResult, k: str, b: dict | None, n: dict | None, new: dict) -> str:
    """Record one scenario's outcome pair; return its note for the table."""
    bo, no = (b or {}).get("outcome"), (n or {}).get("outcome")
    why = _first_failure((n or {}).get("message", "")).removeprefix(BENCH_FAULT_PREFIX)
    if b is None:
        return "only in NEW"
    if n is None and not_selected(new, k, b["target"]):
        res.not_selected.append(k)
        return f"not selected in NEW ({res.selection})"
    if no == "skipped" and is_unsupported(n.get("message", "")):
        return UNSUPPORTED  # the port can't run it: nothing to measure, nothing lost
    if bo == "skipped":
        return "skipped in BASE: not required"
    if no in MEASURED:
        res.measured += 1
    if n is None or no in ("error", "skipped"):
        res.unmeasured += 1
        cause = {None: "missing from NEW", "error": "bench fault in NEW",
                 "skipped": "skipped in NEW"}[no]
        res.incomplete.append(f"{cause}: {k} (BASE {bo}){': ' + why if why else ''}")
        return f"not measured: {cause}"
    if bo == "error" and no in FAILING:
        res.unjudged += 1
        res.incomplete.append(f"bench fault in BASE: {k} {no} in NEW: {why}; "
                              "rerun BASE to judge it")
        return "not judged: bench fault in BASE"
    if bo == "passed" and no in FAILING:
        res.regressions.append(f"{k}: passed → {no}: {why}")
        return "regression"
    if bo in FAILING and no in FAILING:
        res.still_failing.append(f"{k}: {bo} → {no}: {why}")
        return "still failing"
    if bo in FAILING and no == "passed":
        res.improvements.append(f"{k}: {bo} → passed")
        return "fixed"
    return ""


def _second_waiter(res: CompareResult, k: str, b: dict, n: dict) -> bool:
    """A changed second-waiter behaviour is a regression even when both runs passed."""
    bsw = b.get("details", {}).get("second_waiter_observed")
    nsw = n.get("details", {}).get("second_waiter_observed")
    if bsw and nsw and bsw != nsw:
        res.regressions.append(f"{k}: second concurrent waiter was {bsw}, now {nsw}")
        return True
    return False


def _run_faults(res: CompareResult, base: dict, new: dict) -> None:
    """A run that did not run to the end can't vouch for what it never ran."""
    for label, doc in (("BASE", base), ("NEW", new)):
        v = doc["verdict"]
        if v in COMPLETE_VERDICTS or (label == "BASE" and v == "error"):
            continue  # BASE's bench faults are judged per scenario
        res.run_faults.append(f"{label} run {v}")
        if v == "interrupted":
            what = "scenarios after the interruption never ran"
        elif v == "error":
            what = doc.get("bench_fault") or "a bench fault, see the scenarios"
        else:
            what = "a verdict this harness does not know"
        res.incomplete.append(f"{label} run {v}: {what}; rerun {label}")


def _build_key(doc: dict, target: str) -> str:
    fw = next((t["firmware"] for t in doc["targets"] if t["name"] == target), {})
    return _build(fw)


def history_by_metric(docs: list[dict]) -> dict[tuple[str, str, str], History]:
    """(target, source, metric) -> the run-to-run spread of its run median over earlier runs
    (results.json documents, oldest first), where they are enough to say."""
    runs: dict[tuple[str, str, str], list[tuple[str, float]]] = {}
    for doc in docs:
        for (target, source), metrics in latency_groups(doc).items():
            for m, samples in metrics.items():
                if samples:
                    runs.setdefault((target, source, m), []).append(
                        (_build_key(doc, target), percentile(samples, 50)))
    out = {}
    for key, medians in runs.items():
        h = history_spread(medians)
        if h is not None:
            out[key] = h
    return out


def _latency(res: CompareResult, base: dict, new: dict, cfg: CompareConfig,
             history: dict[tuple[str, str, str], History]) -> None:
    bl, nl = latency_groups(base), latency_groups(new)
    keys = [(tk, m) for tk in sorted(bl.keys() & nl.keys()) for m, _ in METRICS
            if bl[tk][m] and nl[tk][m]]
    policy, tests = gate_separate(
        [(bl[tk][m], nl[tk][m], history.get((*tk, m))) for tk, m in keys],
        cfg.effect_floor_us, cfg.min_effect_size, cfg.alpha)
    res.policy = policy
    for (tk, m), st in zip(keys, tests, strict=True):
        bs, ns = bl[tk][m], nl[tk][m]
        res.latency.append(LatencyRow(tk[0], tk[1], m, summary(bs), summary(ns), st, bs, ns))
        if st.regression:
            res.regressions.append(regression_line(tk[0], tk[1], m, st))


def regression_line(target: str, source: str, metric: str, st: GateTest) -> str:
    """`sim [hard] irq_to_wake_us: median +20012 µs (floor 212 µs, effect size; Holm p ...)`"""
    effect = "" if st.effect != st.effect else f", effect {st.effect:.2f}"  # NaN: A/B
    return (f"{target} [{source}] {metric}: median +{st.median_shift_us:.0f} µs (floor "
            f"{st.floor.us:.0f} µs, {st.floor.source}; Holm p = {st.p_holm:.2g}{effect})")


def compare_runs(base_dir: Path, new_dir: Path, cfg: CompareConfig,
                 history: list[dict] | None = None, judge_latency: bool = True) -> CompareResult:
    """Judge NEW against BASE; raise CompareError when they can't be compared at all.
    history: earlier runs of the build family (results.json documents, oldest first), whose
    run-to-run spread then judges each metric they measured; NEW itself is left out.
    judge_latency=False: semantics only (an A/B judges latency over its block pairs)."""
    base, new = load_run(Path(base_dir), "BASE"), load_run(Path(new_dir), "NEW")
    bt = {t["name"] for t in base["targets"]}
    nt = {t["name"] for t in new["targets"]}
    if bt and nt and not bt & nt:
        raise CompareError(f"the runs share no target: BASE has {sorted(bt)}, "
                           f"NEW has {sorted(nt)}")
    btests = {_key(t): t for t in base["tests"]}
    ntests = {_key(t): t for t in new["tests"]}
    if all(t["outcome"] == "skipped" for t in btests.values()):
        raise CompareError(f"BASE {base['run_id']} measured no scenario "
                           f"(verdict {base['verdict']}): pick a complete baseline run")
    res = CompareResult(base["run_id"], new["run_id"], cfg=cfg, selection=selection_text(new),
                        selection_recorded="selection" in new)
    if Path(base_dir).resolve() == Path(new_dir).resolve() or base["run_id"] == new["run_id"]:
        res.warnings.append(f"BASE and NEW are the same run ({new['run_id']}): it is compared "
                            "with itself, so no change between builds can show; give the "
                            "baseline build's run as BASE")
    res.identity = identity_lines("BASE", base) + identity_lines("NEW", new) \
        + [_builds_line(base, new)]
    for k in sorted(btests.keys() | ntests.keys()):
        b, n = btests.get(k), ntests.get(k)
        note = _judge(res, k, b, n, new)
        if b and n and _second_waiter(res, k, b, n):
            note = "behaviour changed"
        res.semantic.append((k, (b or {}).get("outcome", "—"), (n or {}).get("outcome", "—"),
                             note))
    if res.not_selected and not res.measured and not res.incomplete:
        raise CompareError(f"NEW {new['run_id']} ({res.selection}) selected none of the "
                           f"scenarios BASE {base['run_id']} ran: compare runs that share "
                           "scenarios")
    _run_faults(res, base, new)
    if judge_latency:
        earlier = [d for d in history or [] if d["run_id"] != new["run_id"]]
        _latency(res, base, new, cfg, history_by_metric(earlier))
    return res
