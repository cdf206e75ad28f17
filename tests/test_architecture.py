"""The package's shape: no import cycle, the data types at the bottom of the graph, and every
module importing only modules below it in the pipeline's order (``LAYERS``).

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
# The modules in pipeline order, lowest first (docs/architecture.md, "Modules"): each imports, at
# import time, only modules listed before it. An entry names a module or a subpackage (all its
# modules, which may import one another: the cycle test covers them); the package itself, last,
# names only its __init__.
LAYERS = (
    "ampere_qa.types", "ampere_qa.errors", "ampere_qa.version", "ampere_qa.atomic",
    "ampere_qa.settings", "ampere_qa.packs", "ampere_qa.question", "ampere_qa.markup",
    "ampere_qa.page", "ampere_qa.corpus", "ampere_qa.passages", "ampere_qa.model",
    "ampere_qa.embedding", "ampere_qa.folder", "ampere_qa.stores", "ampere_qa.manifest",
    "ampere_qa.bilingual", "ampere_qa.lexical", "ampere_qa.passage_file", "ampere_qa.index",
    # the answer: ranking, then the question read, checked, answered and composed
    "ampere_qa.retrieve", "ampere_qa.qa", "ampere_qa.qa.rules", "ampere_qa.qa.language",
    "ampere_qa.qa.understand", "ampere_qa.qa.followup", "ampere_qa.qa.spans",
    "ampere_qa.qa.answerability", "ampere_qa.qa.select", "ampere_qa.qa.compose",
    "ampere_qa.qa.pipeline", "ampere_qa.search",
    "ampere_qa.build", "ampere_qa.eval", "ampere_qa.web", "ampere_qa.cli",
    "ampere_qa.__main__", "ampere_qa",
)


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


def _layer(module: str) -> int | None:
    """The index of ``module``'s entry in LAYERS (the longest that names it), or None."""
    found = [(len(entry), i) for i, entry in enumerate(LAYERS)
             if module == entry or (entry != "ampere_qa" and module.startswith(entry + "."))]
    return max(found)[1] if found else None


def test_every_module_imports_only_modules_below_it():
    graph = import_graph()
    assert [m for m in sorted(graph) if _layer(m) is None] == []  # a new module takes its place
    upward = sorted((m, t) for m, targets in graph.items() for t in targets
                    if LAYERS[_layer(t)] != LAYERS[_layer(m)] and _layer(t) > _layer(m))
    assert upward == [], "imports of a later layer: " + ", ".join(f"{m} -> {t}" for m, t in upward)


def test_the_layer_entries_resolve_as_meant():
    """Guards the check itself: its entries resolve as meant."""
    assert LAYERS[_layer("ampere_qa.qa.spans")] == "ampere_qa.qa.spans"
    assert LAYERS[_layer("ampere_qa.stores.milvus")] == "ampere_qa.stores"
    assert LAYERS[_layer("ampere_qa.packs.lang")] == "ampere_qa.packs"
    assert LAYERS[_layer("ampere_qa")] == "ampere_qa" and _layer("ampere_qa.nowhere") is None
    assert _layer("ampere_qa.retrieve.ranker") < _layer("ampere_qa.qa.pipeline") < \
        _layer("ampere_qa.search")
    assert _layer("ampere_qa.settings") < _layer("ampere_qa.lexical")


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
