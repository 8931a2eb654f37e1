"""What `tsfrig run` prints, as a firmware engineer sees it: piped (plain lines, one per test,
its cause when it failed, the verdict, trace.log on failure, nothing of pytest's) and in a
terminal (a live line redrawn in place, plain again under CI); each target's tests in one
order; `tsfrig --version`; `tsfrig sim` saying it stopped on SIGTERM."""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mutants import write_overlay

REPO = Path(__file__).resolve().parents[2]
TEST_LINE = re.compile(r"^tsfrig: \[sim\] (\S+): pulses \d+  IRQs \d+  wakes \d+  [\d.]+ s  "
                       r"(passed|failed|error)(: .+)?$")


def pytest_noise(text: str) -> list[str]:
    """Lines of pytest's own console: dots, [100%], section rules, captured logs."""
    return [ln for ln in text.splitlines()
            if re.match(r"^[.FEsx]+", ln) or "[100%]" in ln or re.match(r"^=+ |^_+ |^-+ ", ln)
            or re.match(r"^(DEBUG|INFO) ", ln) or "Warning" in ln]


def test_passing_run_piped_is_one_line_per_test_and_the_verdict(tmp_path, tsfrig):
    r = tsfrig("run", "--report-dir", str(tmp_path), "-k", "test_wake or test_auto_reset")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    tests = [ln for ln in lines if TEST_LINE.match(ln)]
    assert len(tests) == 6 and all(ln.endswith("passed") for ln in tests), r.stderr
    assert lines[-1] == ("tsfrig: verdict pass: every test measured and within the contract "
                         "(6 passed, 0 failed, 0 errors)")
    assert len(lines) == 7, r.stderr  # nothing else: no started lines, no pytest summary
    assert not pytest_noise(r.stderr + r.stdout), r.stderr + r.stdout
    assert "\x1b" not in r.stderr and "\r" not in r.stderr
    assert r.stdout.strip().startswith("report: ") and "trace:" not in r.stdout


def test_failing_run_piped_says_the_cause_on_the_tests_line_and_where_the_trace_is(tmp_path,
                                                                                   tsfrig):
    overlay = write_overlay("slow_wake", tmp_path / "overlay")
    r = tsfrig("run", "--report-dir", str(tmp_path / "runs"), "--overlay", str(overlay),
               "-k", "test_latency and hard")
    assert r.returncode == 1, r.stderr
    line = next(ln for ln in r.stderr.splitlines() if TEST_LINE.match(ln))
    assert re.search(r"  failed: irq_to_wake_us p50 = \d+ µs exceeds the budget", line), line
    assert "tsfrig: verdict fail: the firmware failed (0 passed, 1 failed, 0 errors)" \
        in r.stderr
    assert not pytest_noise(r.stderr + r.stdout), r.stderr + r.stdout  # no 37 DEBUG lines
    trace = Path(r.stdout.split("trace:")[1].split()[0])
    assert trace.name == "trace.log" and trace.parent == (tmp_path / "runs" / "latest").resolve()
    assert "pigpio:" in trace.read_text()  # the bench's DEBUG lines are kept there


def in_a_terminal(args: list[str], env: dict) -> str:
    """`tsfrig ARGS` on a pseudo-terminal (util-linux `script`), what it printed."""
    if not shutil.which("script"):
        pytest.skip("util-linux `script` not installed")
    import shlex

    cmd = shlex.join([sys.executable, "-m", "harness.cli", *args])
    return subprocess.run(["script", "-q", "-e", "-c", cmd, "/dev/null"], cwd=REPO, env=env,
                          capture_output=True, timeout=600).stdout.decode()  # \r as sent


def test_in_a_terminal_a_live_line_is_redrawn_and_under_ci_plain_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    args = ["run", "--report-dir", str(tmp_path), "-k", "test_latency and hard"]
    live = in_a_terminal(args, env)
    assert "\r\x1b[K[0/1 done, " in live and "[sim] test_latency[sim-hard]: pulses 100" in live
    final = [ln.split("\r\x1b[K")[-1] for ln in live.replace("\r\n", "\n").split("\n")]
    assert any(TEST_LINE.match(ln) for ln in final), live
    assert "tsfrig: verdict pass" in live and not pytest_noise(live.replace("\r", "\n"))
    plain = in_a_terminal(args, {**env, "CI": "true"})
    assert "\x1b[K" not in plain and "done, " not in plain, plain
    assert sum(bool(TEST_LINE.match(ln.strip())) for ln in plain.splitlines()) == 1


def test_every_target_runs_the_suite_in_one_order(tmp_path):
    """pytest ordered a second target's tests by its own fixture bookkeeping (second_waiter
    and set_source first): each target's lines must read as the same suite."""
    text = (REPO / "rig_config.yaml").read_text()
    two = text.replace("targets:\n  - name: sim\n", "targets:\n  - name: a\n", 1)
    block = two.split("targets:\n", 1)[1].split("\n\n")[0]
    (tmp_path / "two.yaml").write_text(two.replace(block, block + "\n" + block.replace(
        "- name: a", "- name: b"), 1))
    out = subprocess.run([sys.executable, "-m", "pytest", "tests/hil", "--collect-only", "-q",
                          "-p", "no:cacheprovider", f"--rig-config={tmp_path / 'two.yaml'}"],
                         cwd=REPO, capture_output=True, text=True, timeout=120).stdout
    order = {"a": [], "b": []}
    for nodeid in (ln for ln in out.splitlines() if "::" in ln):
        name, target, kind = re.search(r"::(\w+)\[(\w+)-(\w+)\]", nodeid).groups()
        order[target].append(f"{name}[{kind}]")
    assert order["a"] and order["a"] == order["b"]
    assert order["a"][0] == "test_wake[hard]"


def test_version(tsfrig):
    r = tsfrig("--version")
    assert r.returncode == 0 and re.fullmatch(r"tsfrig \d+\.\d+\.\d+\n", r.stdout)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sim_says_it_stopped_on_either_signal(sig):
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "sim"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("ready"):
                break
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert rest.strip().splitlines()[-1] == \
        f"stopped ({sig.name}): every process of the bench ended"
