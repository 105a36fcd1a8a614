"""The import graph of rbee's own modules has no loop: each concept has one home, and what
uses it imports it, never the other way round (imports under TYPE_CHECKING count too; an
import inside a function does not, as it runs only when called)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> dict[str, Path]:
    found = {}
    for base in (ROOT, ROOT / "plugins"):
        for package in sorted(base.glob("rbee_*/__init__.py")):
            for path in package.parent.rglob("*.py"):
                parts = path.relative_to(base).with_suffix("").parts
                name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                found[name] = path
    return found


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the first-party modules it imports at its top level."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            for statement in node.body if isinstance(node, ast.If) else [node]:
                if isinstance(statement, ast.Import):
                    imported.update(alias.name for alias in statement.names)
                elif isinstance(statement, ast.ImportFrom) and statement.module:
                    base = statement.module
                    imported.update(
                        f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                        for alias in statement.names
                    )
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return loops


def test_no_module_imports_itself_back() -> None:
    modules = _modules()
    assert "rbee_core.jobs" in modules and "rbee_hive.hive" in modules
    assert _loops(_graph(modules)) == []


def test_a_loop_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _loops(graph) == [["a", "b", "c"]]
