"""`tsfrig report DIR`, `tsfrig compare BASE NEW` and `tsfrig compare --ab A B`.

Every problem is one line on stderr naming the problem and the fix, and exit code 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _fail(command: str, message: str) -> int:
    print(f"tsfrig {command}: {message}", file=sys.stderr)
    return 2


def cmd_report(args: argparse.Namespace) -> int:
    from harness.reports.run_report import ReportError, write_report

    run_dir = Path(args.run_dir)
    out = run_dir / "index.html"
    if not run_dir.is_dir():
        return _fail("report", f"{run_dir}: no such run directory; give a run directory "
                               "(e.g. reports/latest)")
    try:
        write_report(run_dir)
    except ReportError as e:
        return _fail("report", str(e))
    except OSError as e:
        if e.filename and Path(e.filename) == out:
            return _fail("report", f"cannot write {out} ({e.strerror}): make the run directory "
                                   "writable, or copy the run somewhere writable and report that")
        return _fail("report", f"cannot read {e.filename} ({e.strerror}): give a readable run "
                               "directory")
    print(f"report: {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.config import ConfigError, load_config
    from harness.reports.compare import CompareError, compare_runs
    from harness.reports.compare_html import write_compare_html
    from harness.reports.trend import TrendError, collect

    if args.ab:
        if args.base or args.new:
            return _fail("compare", "--ab A B runs both builds itself: give no BASE NEW run "
                                    "directories with it")
        from harness.cli.ab import cmd_ab

        return cmd_ab(args)
    if not (args.base and args.new):
        return _fail("compare", "give two run directories, BASE NEW, or --ab A B (two "
                                "firmware executables or overlay directories)")
    try:
        cfg = load_config(args.config).compare
        history = [r["doc"] for r in collect([Path(p) for p in args.history])] \
            if args.history else None
        result = compare_runs(Path(args.base), Path(args.new), cfg, history)
    except (CompareError, ConfigError) as e:
        return _fail("compare", str(e))
    except TrendError as e:
        return _fail("compare", f"--history: {e}")
    out = Path(args.out) if args.out else Path(args.new) / "compare.html"
    try:
        write_compare_html(result, out)
    except OSError as e:
        fix = "pass --out a writable FILE" if args.out else \
            "make the run directory writable or pass --out FILE"
        return _fail("compare", f"cannot write {out} ({e.strerror}): {fix}")
    for line in result.lines():
        print(line)
    print(f"compare report: {out}")
    print(result.summary_line())
    return result.exit_code


def add_report_parsers(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="rebuild index.html of a run from its results.json")
    rep.add_argument("run_dir", help="a run directory, e.g. reports/latest")
    rep.set_defaults(func=cmd_report)
    cmp_ = sub.add_parser(
        "compare", help="compare two runs, e.g. two firmware builds",
        description="exit 0: every BASE scenario measured in NEW, no regression; 1: a "
                    "regression; 2: NEW incomplete (bench fault, missing scenario, interrupted "
                    "run) or the runs can't be compared")
    cmp_.add_argument("base", nargs="?", help="run directory of the baseline build")
    cmp_.add_argument("new", nargs="?", help="run directory of the build under test")
    cmp_.add_argument("--config", default="rig_config.yaml",
                      help="rig config whose compare: section sets the thresholds")
    cmp_.add_argument("--out", help="where to write the HTML report (default NEW/compare.html)")
    cmp_.add_argument("--history", nargs="+", metavar="PATH",
                      help="earlier runs of this build family (run or reports directories): "
                           "their run-to-run spread per metric becomes its noise floor")
    from harness.cli.ab import add_ab_arguments

    add_ab_arguments(cmp_)
    cmp_.set_defaults(func=cmd_compare)
