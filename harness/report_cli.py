"""`tsfrig report DIR` and `tsfrig compare BASE NEW`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import ReportError, write_report

    try:
        out = write_report(Path(args.run_dir))
    except ReportError as e:
        print(f"tsfrig report: {e}", file=sys.stderr)
        return 2
    print(f"report: {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import CompareError, compare_runs, write_compare_html
    from harness.config import ConfigError, load_config

    try:
        cfg = load_config(args.config).compare
        result = compare_runs(Path(args.base), Path(args.new), cfg)
    except (CompareError, ConfigError) as e:
        print(f"tsfrig compare: {e}", file=sys.stderr)
        return 2
    out = write_compare_html(result, Path(args.new) / "compare.html")
    for line in result.regressions:
        print(f"REGRESSION {line}")
    for line in result.improvements:
        print(f"improved   {line}")
    for line in result.incomplete:
        print(f"incomplete {line}")
    print(f"{len(result.regressions)} regressions; compare report: {out}")
    return 1 if result.regressions else 0


def add_report_parsers(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="rebuild index.html of a run from its results.json")
    rep.add_argument("run_dir", help="a run directory, e.g. reports/latest")
    rep.set_defaults(func=cmd_report)
    cmp_ = sub.add_parser("compare", help="compare two runs, e.g. two firmware builds")
    cmp_.add_argument("base", help="run directory of the baseline build")
    cmp_.add_argument("new", help="run directory of the build under test")
    cmp_.add_argument("--config", default="rig_config.yaml",
                      help="rig config whose compare: section sets the thresholds")
    cmp_.set_defaults(func=cmd_compare)
