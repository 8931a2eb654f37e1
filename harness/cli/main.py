"""`tsfrig`: run the ThreadSafeFlag suite, start a simulated bench, build and compare reports.

Exit codes: 0 measured and good; 1 the firmware failed (or regressed); 2 the bench could not
measure, or bad usage, config or input; 5 no test selected; 130/143 interrupted by
SIGINT/SIGTERM (see harness/verdict.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import harness
from harness.benches import run_options, with_run_options
from harness.cli.bisect import add_bisect_parser
from harness.cli.doctor import add_doctor_parser
from harness.cli.init import add_init_parser
from harness.cli.reports import add_report_parsers
from harness.cli.vpico import add_vpico_parser
from harness.config import ConfigError, load_with
from harness.reports.trend import add_trend_parser
from harness.shipped import SUITE
from harness.sim.command import add_sim_parser

DEFAULT_CONFIG = "rig_config.yaml"


def _die(msg: str) -> int:
    print(f"tsfrig: {msg}", file=sys.stderr)
    return 2


def cmd_run(args: argparse.Namespace) -> int:
    import shutil

    import pytest

    from fixtures.state import GivenRig
    from harness.reports.results import new_run_dir
    from harness.verdict import NO_TESTS

    try:
        cfg = load_with(args.config, args.overlay, args.firmware, args.target)
        cfg = with_run_options(cfg, {o.flag: getattr(args, o.dest) for o in run_options()},
                               args.target)
    except ConfigError as e:
        return _die(str(e))
    base = Path(args.report_dir) if args.report_dir else Path.cwd() / "reports"
    try:
        run_dir = new_run_dir(base)
    except OSError as e:
        return _die(f"--report-dir {base}: cannot create a run directory there "
                    f"({e.strerror or e}): pass a writable directory")
    try:  # a disk that can't take a report must say so before any bench starts
        probe = run_dir / ".write-probe"
        probe.write_bytes(b"\0" * 65536)
        probe.unlink()
    except OSError as e:
        shutil.rmtree(run_dir, ignore_errors=True)
        return _die(f"--report-dir {base}: cannot write a report there ({e.strerror or e}): "
                    "free some space or pass a --report-dir on a writable disk")
    pytest_args = [
        str(SUITE),
        f"--rig-config={cfg.path}",
        f"--report-dir={run_dir}",
        f"--junitxml={run_dir / 'junit.xml'}",
        "-p", "no:cacheprovider",
        # the console is tsfrig's: a line per test and the verdict (fixtures/plugin.py); no
        # dots, no [100%], no failure sections (the report and trace.log have them)
        "-qq", "--tb=no", "-rN", "-o", "console_output_style=classic", "--tsfrig-console",
    ]
    if args.target:
        pytest_args.append(f"--target={args.target}")
    if args.overlay:
        pytest_args.append(f"--overlay={args.overlay}")
    if args.firmware:
        pytest_args.append(f"--firmware={args.firmware}")
    if args.k:
        pytest_args += ["-k", args.k]
    pytest_args += [f"{o.flag}={getattr(args, o.dest)}" for o in run_options()
                    if getattr(args, o.dest) is not None]
    pytest_args.append(f"--tsfrig-log-level={args.log_level}")
    pytest_args += _parallel_args(args, len([args.target] if args.target else cfg.targets))
    try:
        # the config as loaded here goes to the plugin in this process (xdist's workers,
        # processes of their own, get it from the plugin: fixtures/parallel.py)
        code = int(pytest.main(pytest_args, plugins=[GivenRig(cfg)]))
    except OSError as e:  # e.g. junit.xml on a disk that filled up at the very end
        return _die(f"cannot write the run's files to {run_dir} ({e.strerror or e}): "
                    "free some space or pass --report-dir on a writable disk")
    if code == NO_TESTS:
        shutil.rmtree(run_dir, ignore_errors=True)
        print("tsfrig: no test matched the selection (-k/--target): nothing ran, no report",
              file=sys.stderr)
        return code
    return _finish_run_dir(run_dir, code)


def _finish_run_dir(run_dir: Path, code: int) -> int:
    """Name the run directory by its build, rebuild index.html, move `latest`. Signals
    stay held (harness.interrupts, since the tests ended): one that came while the files
    were written marks the run `interrupted` in all of them, and the exit code is its."""
    from harness import interrupts
    from harness.reports.junit import tidy_junit
    from harness.reports.results import fallback_path, mark_interrupted, name_by_build, point_latest
    from harness.reports.run_report import ReportError, write_report
    from harness.verdict import SIGNAL_EXIT

    interrupts.hold()  # already, unless pytest ended before its session did
    if (run_dir / "results.json").exists() and not fallback_path(run_dir.name).exists():
        try:  # else nothing ran, or the results are elsewhere (said): the directory stays
            interrupts.step("rename")
            run_dir = name_by_build(run_dir)
            interrupts.step("report")
            write_report(run_dir)  # its header shows the run id
        except (OSError, ValueError, ReportError) as e:
            print(f"tsfrig: run directory kept as {run_dir.name} ({e})", file=sys.stderr)
        interrupts.step("latest")
        try:
            point_latest(run_dir)
        except OSError as e:
            print(f"tsfrig: reports/latest not moved to {run_dir.name} ({e.strerror or e})",
                  file=sys.stderr)
        late = interrupts.held()
        interrupts.block()  # from here the files say it all: a later signal changes nothing
        if late and code not in SIGNAL_EXIT.values():
            code = SIGNAL_EXIT[late]
            try:
                mark_interrupted(run_dir, late)
                tidy_junit(run_dir / "junit.xml", "interrupted", late)
                write_report(run_dir)
                print(f"tsfrig: interrupted by {late} while the run's files were written: "
                      "not a pass", file=sys.stderr)
            except (OSError, ValueError, ReportError) as e:
                print(f"tsfrig: interrupted by {late} while the run's files were written, "
                      f"and {run_dir.name} could not be marked so ({e})", file=sys.stderr)
        print(f"report: {run_dir / 'index.html'}")
        if code != 0 and (run_dir / "trace.log").exists():
            print(f"trace:  {run_dir / 'trace.log'}")
    interrupts.block()
    return code if code in (0, 1, 2, 130, 143) else 2


def _parallel_args(args: argparse.Namespace, targets: int) -> list[str]:
    """pytest-xdist for `-n N` / `--parallel`: one worker per target at most (a target's
    tests are one xdist group, so one worker runs them in order on one bench)."""
    workers = targets if args.parallel else min(args.workers or 0, targets)
    if workers < 1:
        return []
    # no:tmpdir: else xdist makes each run a pytest temp dir that nothing uses and none removes
    return ["-n", str(workers), "--dist", "loadgroup", "-p", "no:tmpdir"]


def _workers(text: str) -> int:
    """-n for argparse: a count of workers, 0 meaning serial."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers: use 0 (serial) "
                                         "or more, or --parallel for one per target")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the problem (`tsfrig run: error: ...`), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:

    p = _Parser(prog="tsfrig", description=__doc__)
    p.add_argument("--version", action="version", version=f"tsfrig {harness.__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the ThreadSafeFlag suite against the configured targets")
    run.add_argument("--config", default=DEFAULT_CONFIG, help="rig config file")
    run.add_argument("--overlay", help="directory of modules searched before the frozen ones (sim)")
    run.add_argument("--firmware", help="the build under test: a MicroPython unix-port "
                                        "executable for sim targets")
    run.add_argument("--target", help="run only this target")
    run.add_argument("--report-dir", help="where run directories go (default: reports/ here)")
    run.add_argument("-k", help="pytest -k expression selecting scenarios")
    par = run.add_mutually_exclusive_group()
    par.add_argument("-n", dest="workers", type=_workers, default=0, metavar="N",
                     help="test up to N targets at once, one pytest-xdist worker each "
                          "(default 0: one after another)")
    par.add_argument("--parallel", action="store_true",
                     help="test every target at once: -n with one worker per target")
    run.add_argument("--log-level", default="WARNING",
                     choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="harness log lines shown on the console (trace.log in the run "
                          "directory always has DEBUG)")
    for o in run_options():  # the bench kinds' own (e.g. a place to acquire)
        run.add_argument(o.flag, metavar=o.metavar, type=o.type, help=o.help)
    run.set_defaults(func=cmd_run)

    add_sim_parser(sub, DEFAULT_CONFIG)
    add_init_parser(sub, DEFAULT_CONFIG)
    add_report_parsers(sub)
    add_trend_parser(sub)
    add_bisect_parser(sub)
    add_doctor_parser(sub, DEFAULT_CONFIG)
    add_vpico_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the subcommand's parser: bisect-step's usage errors exit 128
        getattr(args, "usage_error", parser.error)(
            f"unrecognized arguments: {' '.join(unknown)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
