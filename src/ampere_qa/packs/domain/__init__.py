"""Domain packs: the kinds of fact a corpus's readers ask for, and nouns of named things, as
data. ``general`` serves any corpus; others (``automotive``) add what news of one field asks
for. A corpus chooses its packs in ``ampere-qa.toml`` (``[answer] domains``).

Each kind of fact (a *concept*) lists, per language, the words that ask for it (over the folded
question) and the words that give it (over the folded sentence); a later pack's concept of the
same name adds to the earlier one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ...errors import PackError
from .. import read, shipped

DEFAULT = ("general",)
# The answer types a concept applies to unless it says: a sentence, a number, a share, an amount.
_DEFAULT_TYPES = ("", "number", "percent", "money")


@dataclass(frozen=True)
class ConceptData:
    """One kind of fact as the packs give it, its patterns by language ("any": all)."""

    name: str
    labels: dict[str, str]
    asks: dict[str, tuple[str, ...]]
    gives: dict[str, tuple[str, ...]]
    gives_raw: dict[str, tuple[str, ...]] = field(default_factory=dict)
    money: bool = False
    types: frozenset[str | None] = frozenset()


@dataclass(frozen=True)
class Domain:
    """The packs chosen, merged: concepts in order, nouns of named things by language."""

    names: tuple[str, ...]
    concepts: tuple[ConceptData, ...]
    things: dict[str, tuple[str, ...]]


def available() -> tuple[str, ...]:
    return shipped(__name__)


@functools.cache
def _read(name: str) -> dict[str, Any]:
    data = read(__name__, name, "no domain pack")
    if data.get("name") != name:
        raise PackError(f"domain pack {name}.toml says name = {data.get('name')!r}")
    return data


def _by_language(table: Any) -> dict[str, tuple[str, ...]]:
    return {lang: tuple(v) for lang, v in (table or {}).items()}


def _merge(a: dict[str, tuple[str, ...]], b: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return {lang: a.get(lang, ()) + b.get(lang, ()) for lang in {**a, **b}}


def _concept(raw: dict[str, Any], earlier: ConceptData | None) -> ConceptData:
    types = raw.get("types")
    if types is None:
        kinds = earlier.types if earlier else frozenset(t or None for t in _DEFAULT_TYPES)
    else:
        kinds = frozenset(t or None for t in types)
    base = earlier or ConceptData(raw["name"], {}, {}, {})
    return ConceptData(
        name=raw["name"],
        labels={**base.labels, **raw.get("label", {})},
        asks=_merge(base.asks, _by_language(raw.get("asks"))),
        gives=_merge(base.gives, _by_language(raw.get("gives"))),
        gives_raw=_merge(base.gives_raw, _by_language(raw.get("gives_raw"))),
        money=bool(raw.get("money", base.money)),
        types=kinds,
    )


@functools.cache
def domain(names: tuple[str, ...] = DEFAULT) -> Domain:
    """The packs ``names`` merged, in order; :class:`PackError` for an unknown one."""
    concepts: dict[str, ConceptData] = {}
    things: dict[str, tuple[str, ...]] = {}
    for name in names:
        data = _read(name)
        for raw in data.get("concept", []):
            if not isinstance(raw, dict) or "name" not in raw:
                raise PackError(f"domain pack {name}.toml: a [[concept]] has no name")
            concepts[raw["name"]] = _concept(raw, concepts.get(raw["name"]))
        things = _merge(things, _by_language(data.get("things")))
    return Domain(tuple(names), tuple(concepts.values()), things)
