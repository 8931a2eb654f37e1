"""index.html for one run, built from results.json alone: a self-contained page a firmware
engineer would rather read than the logs."""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from html import escape
from pathlib import Path

from harness.config.registry import GPIO, names, spec
from harness.reports.charts import cdf_svg, histogram_svg, timeline_svg
from harness.reports.results import SCHEMA_PATH, firmware_label, write_atomic
from harness.suite.stats import QUANTILE_NAMES, detectable_shift, effect_size_floor, summary

METRICS = (("irq_to_wake_us", "IRQ → wake (board clock)"),
           ("edge_to_ack_us", "stimulus edge → ack edge (Pi clock)"))
LOG_LINES = 300

CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:4px 8px;
font-size:13px;text-align:left;vertical-align:top} th{background:#f3f3f3}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:bold}
.pass,.passed{background:#2ca02c} .fail,.failed{background:#d62728} .error{background:#ff7f0e}
.interrupted,.incomplete{background:#7f7f7f}
.skipped,.xfailed{background:#888} td.outcome{color:#fff;font-weight:bold}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px;max-height:400px}
.charts{display:flex;flex-wrap:wrap;gap:12px} td.num{text-align:right;font-family:monospace}
td pre{white-space:pre-wrap;margin:0} td.counts{white-space:nowrap}
"""


class ReportError(Exception):
    """results.json missing or not what the schema says."""


@functools.lru_cache(maxsize=2)
def _results_validator(any_verdict: bool):
    """The published schema, checked and compiled once (trend and compare load many runs)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    if any_verdict:
        schema["properties"]["verdict"] = {"type": "string"}
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def load_results(run_dir: Path, any_verdict: bool = False) -> dict:
    """A run's results.json, checked against the published schema; with any_verdict a
    verdict this harness doesn't know (a newer harness's) is let through for the caller
    to judge. Every problem is one ReportError line naming the file."""
    import jsonschema

    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run directory; give a run directory "
                          "(reports/<run-id>)")
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: no results.json here; give a run directory "
                          "(reports/<run-id>)") from None
    except OSError as e:
        raise ReportError(f"{path}: cannot read it ({e.strerror})") from None
    except ValueError as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from None
    try:
        _results_validator(any_verdict).validate(doc)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise ReportError(f"{path}: {where}: {e.message}") from None
    return doc


def latency_groups(doc: dict) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(target, set source) -> metric -> every sample of the run."""
    groups: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: {m: [] for m, _ in METRICS})
    for t in doc["tests"]:
        for m, _ in METRICS:
            groups[(t["target"], t["irq_kind"])][m] += t.get("latency", {}).get(m, [])
    return {k: v for k, v in groups.items() if any(v.values())}


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _identity(doc: dict) -> str:
    rows = []
    host = doc["rig"]["host"]
    for t in doc["targets"]:
        fw, pg = t["firmware"], _gpio_of(t)
        daemon = _daemon(pg)
        items = [("target", f"{t['name']} ({t['kind']})"),
                 ("implementation", fw.get("implementation")), ("version", fw.get("version")),
                 ("uname", fw.get("uname")), ("build", fw.get("build_id")),
                 ("build hash", fw.get("build_hash")),
                 ("asyncio", fw.get("asyncio")), ("executable", fw.get("executable")),
                 ("overlay", fw.get("overlay")),
                 (pg["backend"], f"{daemon} at {pg.get('host')}:{pg.get('port')}"),
                 ("stimulus times", pg.get("stimulus_times")),
                 ("IRQ wake model", t.get("irq_wake_model")),
                 ("board profile", _profile_line(t.get("profile"))),
                 ("probe", _probe_line(t.get("probe"))),
                 ("second waiter expected", t.get("second_waiter_expected")),
                 ("wiring", _wiring_line(t.get("wiring"))),
                 ("wiring self-test", ", ".join(f"{k} {v}" for k, v in
                                                t.get("wiring_check", {}).items()) or None)]
        rows.append("".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                            for k, v in items if v is not None))
    first = names(GPIO)[0]  # the default backend's client, whichever the targets used
    hostline = (f"host {host['hostname']}, Python {host['python']}, tsfrig {host['tsfrig']}, "
                f"{first} client {host.get(f'{first}_client')}, mpremote {host.get('mpremote')}")
    return "<table>" + "".join(rows) + f"</table><p>{escape(hostline)}</p>"


def _gpio_of(t: dict) -> dict:
    """A target's GPIO daemon as recorded: `gpio:`, or in older results the default backend's
    own section (its spec's address_key)."""
    if t.get("gpio"):
        return t["gpio"]
    first = names(GPIO)[0]
    return {"backend": first, **t.get(spec(GPIO, first).address_key, {})}


def _daemon(pg: dict) -> str:
    """The daemon's version and machine as its backend words them (its spec), from the
    recorded identity; `?` for a backend this install does not know."""
    backend = pg.get("backend", "")
    describe = spec(GPIO, backend).describe_daemon if backend in names(GPIO) else None
    return describe(pg) if describe is not None else "?"


def _wiring_line(w: dict | None) -> str | None:
    """`stimulus: Pi GPIO 17 → board pin 2; ack: board pin 3 → Pi GPIO 27; ...`."""
    if not w:
        return None
    def pin(p: object) -> str:
        return f"pin {p}" if isinstance(p, int) else str(p)
    out = []
    for name, wire in w.items():
        if isinstance(wire, dict) and name == "ack":
            out.append(f"ack: board {pin(wire.get('board_pin'))} → Pi GPIO {wire.get('pi_gpio')}")
        elif isinstance(wire, dict):
            out.append(f"{name}: Pi GPIO {wire.get('pi_gpio')} → board "
                       f"{pin(wire.get('board_pin'))}")
        elif wire is not None:
            out.append(f"{name.replace('_', ' ')}: Pi GPIO {wire}")
    return "; ".join(out)


def ticks_text(period: object) -> str:
    """ticks_us's period in a person's terms: a power of two as 2^n, and what it means for
    wrap-around (ticks_diff is right for intervals under half the period)."""
    if not isinstance(period, int) or period <= 0:
        return str(period)
    n = period.bit_length() - 1
    name = f"2^{n}" if period == 1 << n else f"{period}"
    half_s = period / 2 / 1e6
    span = (f"{half_s / 3.156e7:,.0f} years" if half_s > 3.156e7 * 2 else
            f"{half_s / 86400:,.1f} days" if half_s > 86400 * 2 else
            f"{half_s / 60:,.1f} min" if half_s > 120 else f"{half_s:.1f} s")
    return (f"{name} µs (ticks_us wraps every {name} µs; a difference is right up to "
            f"{span}, far longer than any scenario)" if half_s > 3600 else
            f"{name} µs (ticks_us wraps every {name} µs; a difference is right only up to "
            f"{span}: a longer wait would be misread)")


def _profile_line(p: dict | None) -> str | None:
    """The profile the run used, in one line (harness/board/profiles.py)."""
    if not p:
        return None
    name = p["name"] + (f" ({p['variant']})" if p.get("variant") not in (None, "", p["name"])
                        else "")
    by = "the config's profile:" if p["selected_by"] == "config" else "the probe"
    emu = ", emulated by the virtual board" if p.get("emulated_by_sim") else ""
    lat = ", ".join(f"{q} {v:g}" for q, v in p["latency_us"].items())
    return (f"{name}, picked by {by}{emu}; set sources {', '.join(p['irq_kinds'])}; schedule "
            f"queue {p['sched_depth']}; second waiter {p['second_waiter']}; reset pin "
            f"{p['reset_pin']}; budgets µs {lat}")


def _probe_line(pr: dict | None) -> str | None:
    if not pr:
        return None
    hard = {True: "yes", False: f"no ({pr.get('hard_irq_error')})", None: "not probed"}
    return (f"platform {pr['platform']}, port {pr['sysname']}, {pr['machine']}; hard IRQ "
            f"{hard[pr['hard_irq']]}; _thread {'yes' if pr['thread'] else 'no'}; schedule "
            f"queue {pr['sched_depth']}; ticks period {ticks_text(pr['ticks_period'])}; "
            f"{pr['asyncio']}")


def _warnings(doc: dict) -> str:
    """Where a board's probe contradicts its config or profile, and what a port did that is
    not the flag's fault (the soft IRQs a full schedule queue dropped): said before the
    results, as the console said them."""
    out = ""
    lines = [f"{t['name']}: {w}" for t in doc["targets"] for w in t.get("profile_warnings", [])]
    if lines:
        items = "".join(f"<li>{escape(x)}</li>" for x in lines)
        out += f'<h2>Profile warnings</h2><ul id="profile-warnings">{items}</ul>'
    tests = [(t, w) for t in doc["tests"] for w in test_warnings(t)]
    if tests:
        items = "".join(f'<li data-nodeid="{escape(t["nodeid"])}">{escape(t["scenario"])} '
                        f'[{escape(t["irq_kind"])}] on {escape(t["target"])}: {escape(w)}</li>'
                        for t, w in tests)
        out += f'<h2>Warnings</h2><ul id="warnings">{items}</ul>'
    return out


def test_warnings(t: dict) -> list[str]:
    """A test's warnings; a run from before they were recorded has the overflow count."""
    if "warnings" in t:
        return list(t["warnings"])
    dropped = (t.get("details") or {}).get("scheduler_overflow")
    return [f"scheduler queue overflow dropped {dropped} soft IRQs (micropython.schedule queue "
            "full: port behaviour, reported apart from the flag)"] if dropped else []


def in_flag_terms(t: dict) -> str:
    """What a passing test showed, in the flag's terms, from its counts, details and
    timeline (a failing one's message says what broke)."""
    c, d = t.get("counts") or {}, t.get("details") or {}
    pulses, irqs, wakes = c.get("pulses", 0), c.get("irqs", 0), c.get("wakes", 0)
    sc = t["scenario"]
    if sc == "second_waiter" and d.get("second_waiter_observed"):
        said = f"a second concurrent wait(): {d['second_waiter_observed']}, as expected"
        if d.get("stranded"):
            said += f" (the {', '.join(d['stranded'])} waiter stayed blocked)"
        return said
    if sc == "cancellation":
        said = "a cancelled wait() raised CancelledError, wait_for() timed out with no " \
               f"pulse, then the next waiter woke on {wakes} of {pulses} pulses"
    elif sc in ("pending_set", "clear") and "pre_seen" in d:
        said = (f"clear() discarded {d['pre_seen']} earlier sets: wait() blocked until the "
                "next real pulse" if d.get("cleared") else
                f"{d['pre_seen']} sets before the waiter waited: its first wait() returned "
                "at once, the flag then reset")
    elif sc == "fanout" and d.get("subscriber_wakes"):
        subs = d["subscriber_wakes"]
        said = f"one owner task woke {len(subs)} subscribers on each of {pulses} pulses"
    elif sc == "coalesce":
        said = (f"a burst of {pulses - 1} sets while the waiter was busy woke it "
                f"{max(wakes - 1, 0)} time(s), after the last set: coalesced, nothing lost")
    elif sc == "stress":
        steps = d.get("steps") or []
        rates = f" at {steps[0][0]} Hz → {steps[-1][0]} Hz" if steps else ""
        said = f"{pulses} pulses{rates} under a busy task: {irqs} IRQs, {wakes} wakes " \
            "(sets coalesced), " + (
                f"the last set woke the waiter; the port dropped {d['scheduler_overflow']} "
                "soft IRQs (see Warnings)" if d.get("scheduler_overflow") else
                "every step's last set woke the waiter")
    else:
        said = f"{pulses} pulses → {irqs} IRQs → {wakes} wakes, one per pulse"
    lat = sorted(r["wake_us"] - r["irq_us"] for r in t.get("timeline") or []
                 if r.get("wake_us") is not None and r.get("irq_us") is not None)
    if lat and pulses == irqs == wakes:  # one wake per pulse: each IRQ's own wake
        said += f"; IRQ → wake median {lat[len(lat) // 2]:.0f} µs, max {lat[-1]:.0f} µs"
    return said


def _scenarios(doc: dict) -> str:
    rows = []
    for t in doc["tests"]:
        c = t.get("counts", {})
        counts = ", ".join(f"{k} {c[k]}" for k in ("pulses", "irqs", "wakes", "acks") if k in c)
        msg = (f'<pre style="max-height:120px">{escape(t["message"])}</pre>'
               if t["message"] else escape(in_flag_terms(t)) if t["outcome"] == "passed"
               else "—")
        rows.append(f'<tr data-nodeid="{escape(t["nodeid"])}"><td>{escape(t["scenario"])}</td>'
                    f'<td>{escape(t["target"])}</td><td>{escape(t["irq_kind"])}</td>'
                    f'<td class="outcome {t["outcome"]}">{t["outcome"]}</td>'
                    f'<td class="counts">{escape(counts)}</td>'
                    f'<td class="terms">{msg}</td></tr>')
    return _table(["scenario", "target", "set source", "verdict", "counts", "in the flag's terms"],
                  rows)


def _could_see(groups: dict) -> dict[tuple[str, str, str], float]:
    """Per metric, the smallest shift `tsfrig compare` of this run against another like it
    (same samples, same spread) could see, with the default compare settings: the config floor,
    Holm's strictest level over this run's metrics."""
    from harness.config import CompareConfig

    c = CompareConfig()
    samples = {(*k, m): ms[m] for k, ms in groups.items() for m, _ in METRICS if ms[m]}
    alpha = c.alpha / max(1, len(samples))
    return {k: detectable_shift(s, s, max(c.effect_floor_us,
                                          effect_size_floor(s, s, c.min_effect_size)), alpha)
            for k, s in samples.items()}


def _latency(doc: dict) -> str:
    out = []
    groups = latency_groups(doc)
    seen = _could_see(groups)
    for (target, source), metrics in sorted(groups.items()):
        rows = []
        for m, label in METRICS:
            if not metrics[m]:
                continue
            s = summary(metrics[m])
            cells = "".join(f'<td class="num" data-metric="{q}" data-kind="{escape(source)}" '
                            f'data-series="{m}">{s[q]:.0f}</td>' for q in QUANTILE_NAMES)
            could = seen[(target, source, m)]
            cells += (f'<td class="num" data-detectable="{m}">'
                      f'{"—" if could == float("inf") else f"≥ {could:.0f}"}</td>')
            rows.append(f"<tr><td>{escape(label)}</td><td class='num'>{s['n']}</td>{cells}</tr>")
        out.append(f"<h3>{escape(target)} — {escape(source)} IRQ</h3>")
        out.append(_table(["metric", "samples", *(f"{q} µs" for q in QUANTILE_NAMES),
                           "a compare could see (µs)"], rows))
        charts = [histogram_svg(metrics["irq_to_wake_us"] or metrics["edge_to_ack_us"],
                                f"{source}: histogram of IRQ → wake")]
        series = {label: metrics[m] for m, label in METRICS if metrics[m]}
        charts.append(cdf_svg(series, f"{source}: CDF"))
        out.append('<div class="charts">' + "".join(charts) + "</div>")
    return "".join(out) or "<p>No latency samples in this run.</p>"


def _timelines(doc: dict) -> str:
    """Every scenario as a logic analyser shows it, failures first; a failure also zoomed
    in on the moment its contract broke."""
    picked = sorted((t for t in doc["tests"] if t.get("timeline")),
                    key=lambda t: t["outcome"] not in ("failed", "error"))
    out = []
    for t in picked:
        rows = t["timeline"]
        broke = broke_at(t)
        out.append(f'<div class="timeline" data-nodeid="{escape(t["nodeid"])}">'
                   f"<h3>{escape(t['scenario'])} [{escape(t['irq_kind'])}] on "
                   f"{escape(t['target'])} — {t['outcome']}</h3>")
        out.append(timeline_svg(rows, f"timeline of {t['nodeid']}", broke=broke))
        if broke is not None:
            out.append(timeline_svg(rows, f"timeline of {t['nodeid']}, around the moment the "
                                    "contract broke", broke=broke,
                                    window=_around(rows, broke[0])))
        out.append("</div>")
    return "".join(out) or "<p>No timelines recorded.</p>"


def broke_at(t: dict) -> tuple[float, str] | None:
    """When a failed test's contract broke, on its timeline's clock, and the cause: the
    pulse its message names, else the first IRQ no wake followed, else the first edge no
    IRQ followed, else the slowest pulse (a latency budget)."""
    rows = t.get("timeline") or []
    if t["outcome"] != "failed" or not rows:
        return None
    cause = re.sub(r"^\S+ \[\w+\] on \S+: ", "", t.get("message", "")).splitlines()[0] \
        if t.get("message") else "failed"
    m = re.search(r"\bpulse (\d+)\b", cause)
    by_seq = {r["seq"]: r for r in rows}
    row = by_seq.get(int(m.group(1))) if m else None
    row = row or next((r for r in rows if r.get("irq_us") is not None
                       and r.get("wake_us") is None), None)
    row = row or next((r for r in rows if r.get("stimulus_us") is not None
                       and r.get("irq_us") is None), None)
    if row is None:
        timed = [r for r in rows if r.get("ack_us") is not None
                 and r.get("stimulus_us") is not None]
        row = max(timed, key=lambda r: r["ack_us"] - r["stimulus_us"]) if timed else rows[-1]
    when = next((row[k] for k in ("irq_us", "stimulus_us", "wake_us", "ack_us")
                 if row.get(k) is not None), None)
    return None if when is None else (when, cause)


def _around(rows: list[dict], when: float, pulses: int = 3) -> tuple[float, float]:
    """A window holding `pulses` pulses either side of a moment (and that moment)."""
    starts = sorted(r["stimulus_us"] for r in rows if r.get("stimulus_us") is not None)
    before = [s for s in starts if s <= when][-pulses - 1:] or [when]
    after = [s for s in starts if s > when][:pulses] or [when]
    ends = [r[k] for r in rows for k in ("irq_us", "wake_us", "ack_us")
            if r.get(k) is not None and before[0] <= r[k] <= after[-1] + 1]
    return before[0], max([after[-1], when, *ends])


def _logs(doc: dict) -> str:
    out = []
    for t in doc["tests"]:
        lines = t.get("device_log", "").splitlines()
        more = f"\n… {len(lines) - LOG_LINES} more lines in results.json" \
            if len(lines) > LOG_LINES else ""
        open_ = " open" if t["outcome"] in ("failed", "error") else ""
        out.append(f"<details{open_}><summary>{escape(t['nodeid'])} ({t['outcome']})</summary>"
                   f"<pre>{escape(chr(10).join(lines[:LOG_LINES]) + more)}</pre></details>")
    return "".join(out)


def _fault(doc: dict) -> str:
    if not doc.get("bench_fault"):
        return ""
    return (f'<p id="bench-fault"><span class="verdict error">BENCH FAULT</span> '
            f'{escape(doc["bench_fault"])} — not a firmware verdict</p>')


def _builds(doc: dict) -> str:
    """Which firmware this run measured, as a person names it, per target."""
    return "; ".join(f"{t['name']}: {firmware_label(t['firmware'])}" for t in doc["targets"]) \
        or "no target came up"


def render(doc: dict) -> str:
    counts = defaultdict(int)
    for t in doc["tests"]:
        counts[t["outcome"]] += 1
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    verdict = doc["verdict"]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>tsfrig {escape(doc['run_id'])}: {verdict}</title><style>{CSS}</style></head><body>
<h1>ThreadSafeFlag run {escape(doc['run_id'])}
<span class="verdict {verdict}" id="verdict">{verdict.upper()}</span></h1>
<p id="builds">{escape(_builds(doc))}</p>
<p id="tally">{escape(tally)} — started {escape(doc['started'])},
{doc.get('duration_s', 0):.1f} s</p>
{_fault(doc)}{_warnings(doc)}<h2>Firmware and bench</h2>{_identity(doc)}
<h2>Scenarios</h2>{_scenarios(doc)}
<h2 id="latency">Latency</h2>
<p>"A compare could see": the smallest median shift <code>tsfrig compare</code> of this run
against another like it catches in 95 of 100 compares (default compare settings: separate
runs, no history; see the compare page for the statistics).</p>{_latency(doc)}
<h2 id="timelines">Timelines</h2>{_timelines(doc)}
<h2 id="logs">Device log</h2>{_logs(doc)}
</body></html>"""


def write_report(run_dir: Path) -> Path:
    """Rebuild run_dir/index.html from run_dir/results.json."""
    doc = load_results(Path(run_dir))
    out = Path(run_dir) / "index.html"
    write_atomic(out, render(doc))  # a full disk: no half page, no temp file
    return out
