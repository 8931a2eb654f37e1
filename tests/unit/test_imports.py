"""The import graph holds its shape: no circles among the harness's and the plugin's modules
(counting imports inside functions and for type checking: a circle is a circle), and the
config package imports no backend, so a backend is added without touching it."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "fixtures")
# what harness/config/ may import besides itself: plain data, no bench, GPIO, power or flash
CONFIG_MAY_IMPORT = {"harness/board/ports.py", "harness/board/sources.py",
                     "harness/suite/catalogue.py", "harness/suite/stats.py"}


def module_file(name: str) -> str | None:
    """harness.a.b -> harness/a/b.py or harness/a/b/__init__.py, if it is ours."""
    path = REPO / Path(*name.split("."))
    for f in (path.with_suffix(".py"), path / "__init__.py"):
        if f.is_file() and "_shipped" not in f.parts:
            return f.relative_to(REPO).as_posix()
    return None


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:-node.level] + ([base] if base else []))
            # `from p import m` imports the module p.m when there is one, else names of p
            names = [f"{base}.{a.name}" if module_file(f"{base}.{a.name}") else base
                     for a in node.names]
        else:
            continue
        found |= {f for f in map(module_file, names) if f}
    return found


def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")
             if "_shipped" not in p.parts and "mpy" not in p.parts]
    return {p.relative_to(REPO).as_posix(): imports_of(p) for p in files}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in g.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    g = graph()
    assert "harness/config/targets.py" in g["harness/config/loader.py"]
    assert "harness/config/registry.py" in g["harness/gpio/__init__.py"]


def test_no_import_circles():
    assert circles(graph()) == []


def test_a_planted_circle_is_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_config_imports_no_backend():
    g = graph()
    for mod, deps in g.items():
        if mod.startswith("harness/config/"):
            outside = {d for d in deps if not d.startswith("harness/config/")}
            assert outside <= CONFIG_MAY_IMPORT, f"{mod} imports {outside - CONFIG_MAY_IMPORT}"
