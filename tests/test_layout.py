"""The package's shape: no import cycles, the library never imports the command line,
``nn`` never imports ``models``, and no module grows into a drawer of unrelated things.

The import graph is read from the source (every ``import`` statement, those inside
functions included, except the ones under ``if TYPE_CHECKING:``), so a lazy import
cannot hide a cycle. Importing ``a.b.c`` also runs the ``__init__`` of package
``a.b``: that is an edge too, unless the importer lives inside ``a.b`` already.
Plugins loaded by name (``importlib.import_module``) are not edges: that is how
``backend`` finds the fast engines without importing them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "convlens"
MAX_LINES = 700
# Modules allowed over MAX_LINES, each with the reason it reads best whole.
LONG_MODULES: dict[str, str] = {
    "convlens.functional.pool": (
        "pooling is one concept: the twelve public ops (max, average, adaptive; 1-D to 3-D) are thin"
        " names over the one reference engine below them, whose tie and NaN rules their docstrings"
        " describe; the window families already live apart in _pool_windows.py"
    ),
}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted((SOURCE / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _under_type_checking(tree: ast.AST) -> set[ast.AST]:
    skipped: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(ast.walk(child))
    return skipped


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imported(module: str, is_package: bool, tree: ast.AST, known: set[str]) -> set[str]:
    skipped = _under_type_checking(tree)
    targets: set[str] = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
    return {t for t in targets if t == PACKAGE or t.startswith(PACKAGE + ".")}


def _with_packages(module: str, target: str, known: set[str]) -> set[str]:
    """``target`` and the packages whose ``__init__`` importing it runs (not the importer's own)."""
    parts = target.split(".")
    own = module.split(".")
    edges = {target} if target in known else set()
    for depth in range(1, len(parts)):
        package = ".".join(parts[:depth])
        if package in known and own[:depth] != parts[:depth]:
            edges.add(package)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for target in _imported(module, is_package, tree, known):
            edges |= _with_packages(module, target, known)
        graph[module] = edges - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for successor in graph.get(todo.pop(), ()):
            if successor not in seen:
                seen.add(successor)
                todo.append(successor)
    return seen


def _family(graph: dict[str, set[str]], name: str) -> list[str]:
    return [m for m in graph if m == name or m.startswith(name + ".")]


GRAPH = import_graph()


def test_the_graph_sees_function_level_and_relative_imports():
    # cli imports the library inside its commands; nn.conv imports functional at the top
    assert "convlens.io" in reachable(GRAPH, "convlens.cli")
    assert "convlens.functional" in GRAPH["convlens.nn.conv"]
    assert "convlens.nn" in GRAPH["convlens.models.lecture"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("library", ["convlens.viz", "convlens.data", "convlens.nn"])
def test_library_never_imports_cli(library):
    for module in _family(GRAPH, library):
        assert not [m for m in reachable(GRAPH, module) if m.startswith("convlens.cli")], module


def test_nn_never_imports_models():
    """The layers know no model: models register their factories with nn, not the other way.
    (Checkpoint code may reach the models it rebuilds; the layers may not.)"""
    for module in _family(GRAPH, "convlens.nn"):
        assert not [m for m in reachable(GRAPH, module) if m.startswith("convlens.models")], module


def test_only_the_entry_points_import_cli():
    """``__main__`` and the command plugins of the extras (``web/cli.py``, ...) may; the library may not."""
    importers = {m for m, edges in GRAPH.items() for e in edges if e.startswith("convlens.cli")}
    library = {m for m in importers if not m.startswith("convlens.cli") and not m.endswith(".cli")}
    assert library <= {"convlens.__main__"}


def test_modules_stay_short():
    too_long = {}
    for module, (path, _) in _modules().items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and module not in LONG_MODULES:
            too_long[module] = lines
    assert too_long == {}


def test_help_imports_neither_the_web_stack_nor_pictures():
    code = (
        "import sys\n"
        "from convlens.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'matplotlib', 'PIL')"
        " or m.startswith('convlens.web')]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
