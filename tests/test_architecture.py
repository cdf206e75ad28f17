"""The package's shape: no import cycle, the data types at the bottom of the graph, and every
module importing only modules below it in the pipeline's order (``LAYERS``).

The graph is read from the source with ``ast``: an edge for every import of another module of
the package made when a module is imported (imports inside functions are lazy on purpose, to keep
heavy libraries out of ``import ampere_qa``, and are listed separately).
"""

from __future__ import annotations

import ast
import functools
import io
import tokenize
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "src" / "ampere_qa"
BOTTOM = {"ampere_qa.types", "ampere_qa.errors", "ampere_qa.version", "ampere_qa.atomic"}
# The package's top level in pipeline order (docs/architecture.md): the bottom modules, then one
# sub-package per stage. Each imports, at import time, only what comes before it.
STAGES = (
    "ampere_qa.types", "ampere_qa.errors", "ampere_qa.version", "ampere_qa.atomic",
    "ampere_qa.settings", "ampere_qa.packs",
    "ampere_qa.ingest", "ampere_qa.embed", "ampere_qa.indexing", "ampere_qa.retrieve", "ampere_qa.qa",
    "ampere_qa.search", "ampere_qa.eval", "ampere_qa.web", "ampere_qa.cli", "ampere_qa.__main__",
    "ampere_qa",
)
# Inside a stage, its modules in order too (an entry not listed, like a backend package, may
# import anything of its own entry: the cycle test covers it).
INNER = {
    "ampere_qa.ingest": ("markup", "page", "corpus", "passages"),
    "ampere_qa.embed": ("model", "embedding"),
    "ampere_qa.indexing": ("folder", "stores", "manifest", "bilingual", "lexical", "passage_file",
                           "checks", "write", "index", "build"),
    "ampere_qa.qa": ("question", "rules", "language", "understand", "followup", "spans",
                     "answerability", "select", "compose", "pipeline"),
}
# An entry names a module or a subpackage; the package itself, last, names only its __init__.
LAYERS = tuple(e for stage in STAGES
               for e in (stage, *(f"{stage}.{m}" for m in INNER.get(stage, ()))))


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
    """Module -> the package modules it imports at import time (a copy of the one parse)."""
    return {module: set(targets) for module, targets in _parsed_graph().items()}


@functools.cache
def _parsed_graph() -> dict[str, set[str]]:
    """The graph from one parse of the package's source, which a run does not change."""
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


def _stage(module: str) -> int:
    found = [i for i, st in enumerate(STAGES)
             if module == st or (st != "ampere_qa" and module.startswith(st + "."))]
    return found[0]


def test_the_stages_come_in_pipeline_order():
    """ingest, embed, indexing, retrieve, qa, search, eval, web, cli: no stage imports a later one."""
    graph = import_graph()
    top = {name for name in graph if name.count(".") == 1}
    assert set(STAGES) - {"ampere_qa"} <= top  # every stage exists...
    assert top <= set(STAGES)  # ... and a new top-level module or package takes its place
    later = sorted({(STAGES[_stage(m)], STAGES[_stage(t)]) for m, targets in graph.items()
                    for t in targets if _stage(t) > _stage(m)})
    assert later == [], "a stage imports a later one: " + ", ".join(f"{a} -> {b}" for a, b in later)


def test_the_layer_entries_resolve_as_meant():
    """Guards the check itself: its entries resolve as meant."""
    assert LAYERS[_layer("ampere_qa.qa.spans")] == "ampere_qa.qa.spans"
    assert LAYERS[_layer("ampere_qa.indexing.stores.milvus")] == "ampere_qa.indexing.stores"
    assert LAYERS[_layer("ampere_qa.packs.lang")] == "ampere_qa.packs"
    assert LAYERS[_layer("ampere_qa")] == "ampere_qa" and _layer("ampere_qa.nowhere") is None
    assert _layer("ampere_qa.retrieve.ranker") < _layer("ampere_qa.qa.pipeline") < \
        _layer("ampere_qa.search")
    assert _layer("ampere_qa.settings") < _layer("ampere_qa.indexing.lexical")


def test_data_types_and_errors_import_nothing_of_the_package():
    graph = import_graph()
    for module in BOTTOM:
        assert graph[module] == set(), (module, graph[module])


def test_the_graph_sees_known_edges_and_cycles():
    """Guards the test itself: a parser that found no edge would find no cycle either."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = import_graph()
    assert "ampere_qa.types" in graph["ampere_qa.search"]
    assert "ampere_qa.indexing.stores" in graph["ampere_qa.indexing.index"]
    assert "ampere_qa.indexing.stores.base" in graph["ampere_qa.indexing.stores.faiss"]


def _code(path: Path) -> str:
    """A module's source less its comments: its code, strings and docstrings."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return " ".join(t.string for t in tokens if t.type != tokenize.COMMENT)


def test_no_module_outside_stores_knows_milvus():
    """Callers ask the backend object (stores.BACKENDS): options, manifest entry, files, messages
    and the build summary are the backend's. Comments may still mention a store."""
    stores = PACKAGE / "indexing" / "stores"
    found = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
             if stores not in p.parents and "milvus" in _code(p).lower()]
    assert found == []
    assert "milvus" in _code(stores / "milvus" / "backend.py").lower()  # the test sees a mention
