"""One definition per scenario on the host side: a suite test's @scenario. The plugin reads it
from the function, the config's known_issues check from the file (never importing the
suite), and both agree; a new scenario is its decorated test plus its device function."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.targets import _unknown_test
from harness.shipped import DEVICE_SCRIPTS, SUITE
from harness.suite.catalogue import Scenario, scenario_of, suite_tests

REPO = Path(__file__).resolve().parents[2]
RIG = f"--rig-config={REPO / 'rig_config.yaml'}"
TOY = '''

@scenario("toy_wake", device="watch")
@pytest.mark.parametrize("irq_kind", ["hard"])
def test_toy_wake(flag_bench, scenario, verdict, irq_kind):
    """A scenario added by this one function (and its device function)."""
    verdict(s.run_isolated(flag_bench, scenario, irq_kind, n=3), [])
'''


def device_scenarios() -> set[str]:
    """tsf_watcher.SCENARIOS' keys, read from the device script (MicroPython, not importable)."""
    tree = ast.parse((DEVICE_SCRIPTS / "tsf_watcher.py").read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "SCENARIOS")
    return {ast.literal_eval(k) for k in table.keys}


def test_the_files_declarations_are_what_pytest_runs():
    """Read statically, the shipped suite says what importing it says: each test's scenario
    and its set sources (the parametrize list), and each device scenario exists."""
    spec = importlib.util.spec_from_file_location("shipped_suite", SUITE / "test_flag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = {n: f for n, f in vars(module).items() if n.startswith("test_")}
    read = suite_tests()
    assert list(read) == list(tests)
    for name, fn in tests.items():
        assert read[name].scenario == scenario_of(fn), name
        kinds = next(m.args[1] for m in fn.pytestmark if m.name == "parametrize")
        assert read[name].kinds == tuple(kinds), name
    assert {t.scenario.device for t in read.values()} <= device_scenarios()
    assert read["test_second_waiter_behaviour"].kinds == ("hard", "soft")
    assert read["test_set_from_loop_and_schedule"].kinds == ("loop", "schedule")


def toy_suite(tmp_path: Path, extra: str) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_flag.py").write_text((SUITE / "test_flag.py").read_text() + extra)
    return suite


def test_a_new_scenario_is_its_decorated_test(tmp_path):
    """One more decorated test and nothing else: the known_issues check knows it and its set
    sources, and pytest collects it on every target."""
    suite = suite_tests(toy_suite(tmp_path, TOY))
    assert suite["test_toy_wake"].scenario == Scenario("toy_wake", "watch")
    assert _unknown_test("test_toy_wake[hard]", suite) == ""
    assert _unknown_test("test_toy_wake[soft]", suite) == \
        "'test_toy_wake[soft]': test_toy_wake runs with hard, not 'soft'"
    assert _unknown_test("test_toy_wake[hard]", suite_tests()).startswith(
        "'test_toy_wake[hard]' names no test of the suite")
    out = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "suite"),
                          "--collect-only", "-q", "-p", "no:cacheprovider", RIG],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "test_flag.py::test_toy_wake[sim-hard]" in out.stdout


@pytest.mark.parametrize("run", [["--collect-only"], ["-n", "2", "--dist", "loadgroup"]],
                         ids=["serial", "xdist"])
def test_a_suite_test_without_its_scenario_is_a_one_line_collection_error(tmp_path, run):
    """Before any bench starts; under xdist the controller says what its workers refused."""
    forgot = TOY.replace('@scenario("toy_wake", device="watch")\n', "")
    suite = toy_suite(tmp_path, forgot)
    lines = (suite / "test_flag.py").read_text().splitlines()
    line = len(lines) - lines[::-1].index('@pytest.mark.parametrize("irq_kind", ["hard"])')
    out = subprocess.run([sys.executable, "-m", "pytest", str(suite), *run, "-q",
                          "-p", "no:cacheprovider", RIG],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout + out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("ERROR:")]
    assert len(errors) == 1, out.stderr
    assert errors[0].endswith(
        f"test_flag.py:{line}: test_toy_wake runs on a target but declares no scenario: "
        "decorate it with @scenario(\"<name>\", device=\"<tsf_watcher scenario>\") from "
        "harness.suite.catalogue")
    assert "test_toy_wake" not in suite_tests(suite)


def test_a_declaration_the_config_cannot_read_names_its_line(tmp_path):
    suite = toy_suite(tmp_path, TOY.replace('"toy_wake"', "NAME"))
    with pytest.raises(ValueError, match=r"test_flag\.py:\d+: test_toy_wake: @scenario takes "
                                         "string literals"):
        suite_tests(suite)
