"""The package's shape: no import cycle, the data types at the bottom of the graph.

The graph is read from the source with ``ast``: an edge for every import of another module of
the package made when a module is imported (imports inside functions are lazy on purpose, to keep
heavy libraries out of ``import ampere_qa``, and are listed separately).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "src" / "ampere_qa"
BOTTOM = {"ampere_qa.types", "ampere_qa.errors", "ampere_qa.version", "ampere_qa.atomic"}


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _target(module: str, is_package: bool, node: ast.ImportFrom, alias: str) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - node.level + 1]
        stem = ".".join(base + ([node.module] if node.module else []))
    else:
        stem = node.module or ""
    return stem if node.module else f"{stem}.{alias}"


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports at import time."""
    modules = {_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        for node in tree.body:  # module level only
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    target = _target(module, is_package, node, alias.name)
                    stem = target.rsplit(".", 1)[0] if not node.module else target
                    # `from .x import name`: module x; `from . import sub`: module sub;
                    # `from . import name`: the package's __init__ itself.
                    for candidate in (f"{target}.{alias.name}", target, stem):
                        if candidate in modules:
                            if candidate != module:
                                graph[module].add(candidate)
                            break
            elif isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name in modules}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 20
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_data_types_and_errors_import_nothing_of_the_package():
    graph = import_graph()
    for module in BOTTOM:
        assert graph[module] == set(), (module, graph[module])


def test_the_graph_sees_known_edges_and_cycles():
    """Guards the test itself: a parser that found no edge would find no cycle either."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = import_graph()
    assert "ampere_qa.types" in graph["ampere_qa.search"]
    assert "ampere_qa.stores" in graph["ampere_qa.index"]
    assert "ampere_qa.stores.base" in graph["ampere_qa.stores.faiss"]


def _code(path: Path) -> str:
    """A module's source less its comments: its code, strings and docstrings."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return " ".join(t.string for t in tokens if t.type != tokenize.COMMENT)


def test_no_module_outside_stores_knows_milvus():
    """Callers ask the backend object (stores.BACKENDS): options, manifest entry, files, messages
    and the build summary are the backend's. Comments may still mention a store."""
    stores = PACKAGE / "stores"
    found = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
             if stores not in p.parents and "milvus" in _code(p).lower()]
    assert found == []
    assert "milvus" in _code(stores / "milvus" / "backend.py").lower()  # the test sees a mention
