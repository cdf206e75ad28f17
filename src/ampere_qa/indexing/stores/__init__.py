"""Where the sentence vectors live: one backend class per kind behind one interface (base.py).

``faiss`` (default): a FAISS file in the index folder. ``milvus``: a Milvus collection, chosen at
build time and recorded in the manifest (``"store": {"kind": "milvus", ...}``; no entry means
FAISS). :data:`BACKENDS` maps each kind to its class; the functions below are what the rest of
the package asks, so that no caller names or branches on a kind. Importing a backend imports
neither FAISS nor pymilvus (an optional extra): they load when a store is written or opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import BadInputError
from .base import Backend, Option, VectorStore, Written
from .faiss import FaissBackend
from .milvus import MilvusBackend

BACKENDS: dict[str, type[Backend]] = {b.kind: b for b in (FaissBackend, MilvusBackend)}
KINDS = tuple(BACKENDS)
DEFAULT = FaissBackend.kind

__all__ = ["BACKENDS", "DEFAULT", "KINDS", "Backend", "Option", "VectorStore", "Written", "after_commit",
           "backend", "configure", "extensions", "find", "kind_of", "options", "rebuild_options",
           "schema", "shown", "where"]


def kind_of(config: Mapping[str, Any] | None) -> str:
    """The backend a manifest's ``store`` entry names (none: FAISS)."""
    return str(config.get("kind")) if isinstance(config, Mapping) else DEFAULT


def backend(kind: str) -> type[Backend]:
    """The backend class of ``kind``."""
    if kind not in BACKENDS:
        raise ValueError(f"unknown vector store {kind!r}")
    return BACKENDS[kind]


def find(config: Mapping[str, Any] | None) -> Backend | None:
    """The backend of a manifest's ``store`` entry; None for a kind this ampere-qa does not know."""
    cls = BACKENDS.get(kind_of(config))
    return cls(config) if cls else None


def options(env: bool) -> list[Option]:
    """Every backend's command-line options: ``env`` ones (every command), else build ones."""
    return [o for b in BACKENDS.values() for o in b.options if (o.env is not None) == env]


def configure(kind: str | None, given: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Backend:
    """The backend a build writes to: ``kind`` (``--store``), else the one its options imply,
    else the previous manifest's (a rebuild stays where it is), else FAISS. ``given`` holds
    build options by key (None: not given); one of another backend's, or of none, is refused."""
    known = {o.key: b for b in BACKENDS.values() for o in b.options if o.env is None}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TypeError(f"unexpected store option {unknown[0]!r}")
    chosen = {k: v for k, v in given.items() if v}
    prior = previous if find(previous) else None
    implied = next((k for k, b in BACKENDS.items() if b.implied(chosen)), None)
    kind = kind or implied or (kind_of(prior) if prior else DEFAULT)
    if kind not in BACKENDS:
        raise BadInputError(f"unknown vector store {kind!r}: use {' or '.join(BACKENDS)}")
    foreign = [known[k] for k in chosen if known[k].kind != kind]
    if foreign:
        names = " and ".join(o.name for o in foreign[0].options if o.env is None)
        raise BadInputError(f"{names} only apply to --store {foreign[0].kind}")
    cls = BACKENDS[kind]
    mine = {o.key: chosen.get(o.key) for o in cls.options if o.env is None}
    return cls.configure(mine, prior if kind_of(prior) == kind else None)


def after_commit(new: Mapping[str, Any] | None, previous: Mapping[str, Any] | None, index_id: str) -> int:
    """Once the manifest naming ``new`` is committed: each backend of the two entries tidies
    what it kept for the previous one; returns the rows removed."""
    kinds = sorted({kind_of(new), kind_of(previous)} & set(BACKENDS))
    return sum(BACKENDS[k].after_commit(new, previous, index_id) for k in kinds)


def extensions() -> dict[str, str]:
    """The data files any backend keeps in an index folder: role -> extension."""
    return {role: ext for b in BACKENDS.values() for role, ext in {**b.files, **b.optional_files}.items()}


def schema() -> dict[str, type]:
    """The fields a manifest's ``store`` entry may hold, and their types."""
    return {"kind": str, **{k: t for b in BACKENDS.values() for k, t in b.schema.items()}}


def shown(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A manifest's ``store`` entry as ``info`` shows it (no secret; an unknown kind as it is)."""
    found = find(config)
    return found.shown() if found else dict(config or {})


def where(config: Mapping[str, Any] | None) -> str:
    """Where the vectors of a manifest's ``store`` entry are, in words."""
    found = find(config)
    return found.where() if found else f"a {kind_of(config)!r} store, unknown to this ampere-qa"


def rebuild_options(config: Mapping[str, Any] | None) -> str:
    """What the rebuild command adds to write into a manifest's store again."""
    found = find(config)
    return found.rebuild_options() if found else ""
