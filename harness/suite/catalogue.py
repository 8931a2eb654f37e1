"""The scenario each suite test runs, declared once, on the test: `@scenario("wake",
device="watch")`. A new scenario is its decorated test plus its device function
(tsf_watcher.SCENARIOS). The plugin reads the declaration from the test function; what may
not import the suite (the config's known_issues check, an xdist controller, which never
collects) reads the same decorators from the suite's files with `ast`."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.board import sources
from harness.shipped import SUITE

_DECLARED = "tsfrig_scenario"  # the attribute @scenario puts on a test function
Test = TypeVar("Test", bound=Callable)


@dataclass(frozen=True)
class Scenario:
    """One clause of the contract as the suite runs it: the name results.json and compare
    use, and the device-side scenario (tsf_watcher.SCENARIOS) that runs it."""

    name: str
    device: str


@dataclass(frozen=True)
class SuiteTest:
    """A suite test as its file declares it: its scenario and the set sources it runs with."""

    name: str
    scenario: Scenario
    kinds: tuple[str, ...]


def scenario(name: str, device: str) -> Callable[[Test], Test]:
    """Declare the scenario a suite test runs (string literals: the config reads them from the
    file without running it)."""

    def declare(test: Test) -> Test:
        setattr(test, _DECLARED, Scenario(name, device))
        return test

    return declare


def scenario_of(test: Callable) -> Scenario | None:
    """What `@scenario` declared on a test function (None: it declares nothing)."""
    return getattr(test, _DECLARED, None)


def undeclared(test: Callable, where: str) -> str:
    """The one-line error for a suite test that declares no scenario."""
    return (f"{where}: {test.__name__} runs on a target but declares no scenario: decorate it "
            f"with @scenario(\"<name>\", device=\"<tsf_watcher scenario>\") from "
            f"harness.suite.catalogue")


def suite_tests(path: Path = SUITE) -> dict[str, SuiteTest]:
    """The decorated tests of a suite directory's test_*.py files (or of one file), in file
    order, read without importing them."""
    files = sorted(path.glob("test_*.py")) if path.is_dir() else [path]
    return {t.name: t for f in files for t in _declared_in(f)}


def _declared_in(file: Path) -> list[SuiteTest]:
    tree = ast.parse(file.read_text(), str(file))
    names: dict[str, object] = {k: v for k, v in vars(sources).items() if k.isupper()}
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:  # e.g. KINDS = list(IRQ_SOURCES), for the parametrize lists below
                names[node.targets[0].id] = _value(node.value, names)
            except (ValueError, KeyError, TypeError):
                pass
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            calls = [d for d in node.decorator_list if isinstance(d, ast.Call)]
            declared = [d for d in calls if _called(d) == "scenario"]
            if not declared:
                continue
            try:
                sc = Scenario(*_strings(declared[0], ("name", "device")))
                kinds = next((tuple(_value(d.args[1], names)) for d in calls
                              if _called(d) == "parametrize" and len(d.args) > 1
                              and _value(d.args[0], names) == "irq_kind"), ())
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{file}:{node.lineno}: {node.name}: @scenario takes string "
                                 "literals and irq_kind's values must be literal or a "
                                 f"harness.board.sources name ({e})") from None
            found.append(SuiteTest(node.name, sc, kinds))
    return found


def _called(call: ast.Call) -> str:
    """The last name of what a decorator calls: `scenario`, `pytest.mark.parametrize`."""
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _strings(call: ast.Call, params: tuple[str, ...]) -> list[str]:
    """A call's string arguments in the order of params, positional or by keyword."""
    given = dict(zip(params, call.args, strict=False))
    given |= {k.arg: k.value for k in call.keywords if k.arg}
    values = [ast.literal_eval(given[p]) for p in params]
    if not all(isinstance(v, str) for v in values):
        raise ValueError("not a string")
    return values


def _value(node: ast.expr, names: dict[str, object]) -> object:
    """A literal, a name bound to one, or list()/tuple() of one: what a parametrize list is."""
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in ("list", "tuple") and len(node.args) == 1:
        return tuple(_value(node.args[0], names))  # type: ignore[arg-type]
    return ast.literal_eval(node)
