"""`tsfrig bisect-step`: one step of `git bisect run`, turning a tsfrig verdict into git's.

Find the MicroPython commit that broke ThreadSafeFlag. From a MicroPython checkout:

    git bisect start BAD GOOD
    git bisect run python -m harness.cli bisect-step \\
        --config /path/to/tsfrig/rig_config.yaml \\
        --build "make -C ports/unix" \\
        --firmware ports/unix/build-standard/micropython \\
        -k "hard"
    git bisect reset

(`python` is the tsfrig venv's, e.g. /path/to/tsfrig/.venv/bin/python; `python -m
harness.cli.bisect ...` takes the same options.) Each step builds the checked-out commit, runs
`tsfrig run` with every sim target on the fresh executable, and exits as `git bisect run`
expects:

| tsfrig run                                   | bisect-step | git bisect  |
|----------------------------------------------|-------------|-------------|
| 0 passed                                     | 0           | good        |
| 1 firmware failure                           | 1           | bad         |
| 2 bench fault, 130/143, other                | 125         | skip        |
| the build failed or timed out, no executable | 125         | skip        |
| 5 nothing selected (-k matches no scenario)  | 128         | abort       |
| bisect-step's own usage or config error      | 128         | abort       |

A bench that could not measure is never a verdict on the firmware, so it skips the commit
rather than blame it; a mistake in the command itself (an unknown option, a bad value, a
missing file, a config or -k expression tsfrig refuses) would repeat on every commit, so it
stops the bisect instead, and is checked before the first build. `--overlay DIR` runs each
step with a module overlay (e.g. an `asyncio/` package) instead of, or as well as, a rebuilt
executable.

To bisect a latency regression, `--ab GOOD` (the known-good executable or overlay) makes each
step `tsfrig compare --ab GOOD <this commit's firmware, else its overlay>`: both builds run
interleaved on one bench and a latency shift above the floor is "bad" (compare's exit 0 good,
1 bad, 2 skip).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "rig_config.yaml"

GOOD, BAD, SKIP, ABORT = 0, 1, 125, 128
BUILD_TIMEOUT_S = 3600.0

_RUN_MEANING = {
    0: "passed",
    1: "firmware failure",
    2: "bench fault or bad input",
    5: "nothing selected",
    130: "interrupted (SIGINT)",
    143: "interrupted (SIGTERM)",
}


def _say(msg: str) -> None:
    print(f"tsfrig bisect-step: {msg}", file=sys.stderr, flush=True)


def _stderr_fd() -> int:
    """Where the build's and the run's output go, so stdout carries only the verdict line."""
    try:
        sys.stderr.flush()
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stderr with no fd (e.g. captured)
        return 2


def map_exit(code: int) -> int:
    """`tsfrig run`'s exit code as `git bisect run`'s: only 0 and 1 are firmware verdicts; an
    empty selection is the command's mistake (it would be empty on every commit)."""
    return {0: GOOD, 1: BAD, 5: ABORT}.get(code, SKIP)


def describe(code: int) -> str:
    """The one verdict line for a `tsfrig run` exit code."""
    verdict = {GOOD: "good", BAD: "bad", ABORT: "abort"}.get(map_exit(code), "skip")
    return f"{verdict} (exit {code}: {_RUN_MEANING.get(code, 'unexpected exit code')})"


def derive_config(config: Path, firmware: Path | None, dest: Path) -> Path:
    """Write dest/rig_config.yaml: config with every sim target's firmware.executable set to
    firmware (absolute; None: `auto`, for checking the config before the build has made it),
    and its relative overlay paths made absolute (they were relative to the original file's
    directory)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        raise ValueError(f"{config}: not a rig config (no targets: list)")
    base = config.resolve().parent
    for t in data["targets"]:
        if not isinstance(t, dict) or t.get("kind", "sim") != "sim":
            continue
        fw = t.get("firmware")
        fw = dict(fw) if isinstance(fw, dict) else {}
        fw["executable"] = str(firmware.resolve()) if firmware is not None else "auto"
        ov = fw.get("overlay")
        if isinstance(ov, str) and not Path(ov).expanduser().is_absolute():
            fw["overlay"] = str((base / ov).resolve())
        t["firmware"] = fw
    out = dest / "rig_config.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


def check_usage(config: Path, firmware: Path | None, overlay: Path | None, k: str | None,
                report_dir: Path | None, dest: Path) -> str:
    """Before the first build: what in the command would fail on every commit ("" if
    nothing). The config as tsfrig reads it (with --firmware, its sim targets' executables
    are replaced, so they need not exist yet), --overlay, --report-dir and -k (collected
    against that config: a malformed expression, or one that selects no scenario)."""
    from harness.config import ConfigError, load_config

    if not config.is_file():
        return f"--config {config} does not exist; pass the tsfrig rig config"
    if overlay is not None and not overlay.is_dir():
        return f"--overlay {overlay} is not a directory; pass the directory of the modules"
    try:
        checked = derive_config(config, None, dest) if firmware is not None else config
        load_config(checked)
    except ConfigError as e:
        return f"--config {config}: {e}"
    except (OSError, ValueError, yaml.YAMLError) as e:
        return f"--config {config}: {e}; pass a tsfrig rig config"
    if report_dir is not None:  # tsfrig run creates it: its nearest existing parent must do
        there = next(p for p in (report_dir, *report_dir.parents) if p.exists())
        if not there.is_dir() or not os.access(there, os.W_OK | os.X_OK):
            return (f"--report-dir {report_dir}: {there} is not a writable directory; pass a "
                    "writable directory")
    if k is not None:
        return _check_selection(checked, k)
    return ""


def _check_selection(config: Path, k: str) -> str:
    """-k collected against config without running anything: pytest's own verdict on it."""
    cmd = [sys.executable, "-m", "pytest", str(REPO / "tests" / "hil"), "--collect-only", "-q",
           "-p", "no:cacheprovider", f"--rig-config={config}", "-k", k]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode == 5:
        return f"-k {k!r} selects no scenario; see `pytest tests/hil --collect-only` for names"
    if proc.returncode != 0:
        said = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        why = next((ln.strip() for ln in said if "ERROR" in ln or "rror:" in ln),
                   said[-1].strip() if said else f"pytest exit {proc.returncode}")
        return f"-k {k!r} is not a selection tsfrig can use: {why}"
    return ""


def _ab_command(good: Path, firmware: Path | None, overlay: Path | None, config: Path,
                k: str | None, report_dir: Path | None, blocks: int) -> list[str] | None:
    """`tsfrig compare --ab GOOD THIS`: THIS is the rebuilt firmware, else the overlay."""
    this = firmware or overlay
    if this is None:
        return None
    cmd = [sys.executable, "-m", "harness.cli", "compare", "--config", str(config),
           "--ab", str(good), str(this), "--blocks", str(blocks)]
    if k:
        cmd += ["-k", k]
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["--report-dir", tempfile.mkdtemp(prefix="ab-", dir=report_dir)]
    return cmd


def bisect_step(build_cmd: str | None, firmware: Path | None, overlay: Path | None,
                config: Path, k: str | None, report_dir: Path | None, cwd: Path,
                build_timeout: float = BUILD_TIMEOUT_S, ab_good: Path | None = None,
                ab_blocks: int = 16) -> int:
    """Build the checked-out commit, run the suite on it, return git bisect's exit code.

    Relative firmware, overlay, config and report_dir paths are taken relative to cwd (the
    checkout being bisected), where the build command also runs."""
    cwd = Path(cwd).resolve()

    def here(p: Path | None) -> Path | None:
        return None if p is None else (cwd / Path(p).expanduser()).resolve()

    firmware, overlay, config, report_dir = here(firmware), here(overlay), here(config), \
        here(report_dir)
    ab_good = here(ab_good)
    assert config is not None
    if ab_good is not None and not ab_good.exists():
        _say(f"abort: --ab {ab_good} does not exist; give the known-good executable or overlay")
        return ABORT
    if ab_good is not None and firmware is None and overlay is None:
        _say("abort: --ab needs this commit's build to compare: pass --firmware or --overlay")
        return ABORT
    with tempfile.TemporaryDirectory(prefix="tsfrig-bisect-") as tmp:
        mistake = check_usage(config, firmware, overlay, k, report_dir, Path(tmp))
    if mistake:
        _say(f"abort: {mistake}")
        return ABORT

    if build_cmd:
        try:
            build = subprocess.run(build_cmd, shell=True, cwd=cwd, timeout=build_timeout,
                                   stdout=_stderr_fd(), stderr=_stderr_fd())
        except subprocess.TimeoutExpired:
            _say(f"skip (the build did not finish in {build_timeout:g} s: {build_cmd})")
            return SKIP
        if build.returncode != 0:
            _say(f"skip (the build failed, exit {build.returncode}: {build_cmd})")
            return SKIP
    if firmware is not None and not (firmware.is_file() and os.access(firmware, os.X_OK)):
        _say(f"skip (no executable at {firmware} after the build)")
        return SKIP

    with tempfile.TemporaryDirectory(prefix="tsfrig-bisect-") as tmp:
        run_config = config
        if firmware is not None:
            try:
                run_config = derive_config(config, firmware, Path(tmp))
            except (OSError, ValueError, yaml.YAMLError) as e:
                _say(f"abort: cannot derive a config from {config}: {e}")
                return ABORT
        cmd = [sys.executable, "-m", "harness.cli", "run", "--config", str(run_config)]
        if overlay is not None:
            cmd += ["--overlay", str(overlay)]
        if k:
            cmd += ["-k", k]
        if report_dir is not None:
            cmd += ["--report-dir", str(report_dir)]
        if ab_good is not None:
            cmd = _ab_command(ab_good, firmware, overlay, config, k, report_dir, ab_blocks)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        code = subprocess.run(cmd, cwd=REPO, env=env, stdout=_stderr_fd()).returncode
    if code < 0:  # killed by a signal: the shell's convention
        code = 128 - code
    print(f"tsfrig bisect-step: {describe(code)}", flush=True)
    return map_exit(code)


def _seconds(text: str) -> float:
    """--build-timeout: a positive number of seconds (else a usage error: exit 128)."""
    try:
        s = float(text)
    except ValueError:
        s = -1.0
    if not 0 < s < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return s


class _Parser(argparse.ArgumentParser):
    """A usage error must stop the bisect (exit 128), not mark the commit bad (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ABORT, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--build", metavar="CMD",
                   help="shell command building the checked-out commit (runs in the current "
                        "directory); a failed build skips the commit")
    p.add_argument("--build-timeout", type=_seconds, default=BUILD_TIMEOUT_S, metavar="S",
                   help=f"seconds before a build counts as failed (default {BUILD_TIMEOUT_S:g})")
    p.add_argument("--firmware", metavar="PATH",
                   help="the MicroPython unix-port executable the build produces; every sim "
                        "target runs it")
    p.add_argument("--overlay", metavar="DIR",
                   help="directory of modules searched before the frozen ones (sim)")
    p.add_argument("--config", metavar="FILE", default=str(DEFAULT_CONFIG),
                   help="tsfrig rig config (default: the tsfrig repo's rig_config.yaml)")
    p.add_argument("-k", metavar="EXPR", help="pytest -k expression selecting scenarios")
    p.add_argument("--report-dir", metavar="DIR",
                   help="where each step's run directory goes (default tsfrig's reports/)")
    p.add_argument("--ab", metavar="GOOD",
                   help="bisect a latency regression: each step runs `tsfrig compare --ab GOOD "
                        "<this build>` (GOOD: the known-good executable or overlay)")
    p.add_argument("--ab-blocks", type=int, default=16, metavar="N",
                   help="blocks of each A/B step (even, at least 4; default 16)")
    p.set_defaults(func=cmd_bisect_step)


def add_bisect_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `bisect-step` on a subparsers object (tsfrig's CLI)."""
    p = sub.add_parser("bisect-step", help="one `git bisect run` step: build, run the suite, "
                                           "exit 0 good / 1 bad / 125 skip / 128 abort (a "
                                           "mistake in the command)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.error = _Parser.error.__get__(p)  # type: ignore[method-assign]  # 128, not 2 ("bad")
    p.set_defaults(usage_error=p.error)  # tsfrig's parser: an unknown option is ours too
    return p


def cmd_bisect_step(args: argparse.Namespace) -> int:
    def path(v: str | None) -> Path | None:
        return Path(v) if v else None

    try:
        return bisect_step(args.build, path(args.firmware), path(args.overlay),
                           Path(args.config), args.k, path(args.report_dir), Path.cwd(),
                           build_timeout=args.build_timeout, ab_good=path(args.ab),
                           ab_blocks=args.ab_blocks)
    except KeyboardInterrupt:  # the user stopped it: stop the bisect too (not "bad")
        _say("interrupted")
        return 130
    except Exception as e:  # a bug here is no verdict on the firmware: stop, don't blame
        _say(f"abort: {type(e).__name__}: {e}")
        return ABORT


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="tsfrig bisect-step", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
