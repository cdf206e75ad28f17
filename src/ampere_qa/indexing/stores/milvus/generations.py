"""The life cycle of a Milvus index: one collection per build (a *generation*), the alias moved
to it once the manifest naming it is committed, ownership, and what may be dropped.

Each build that changes anything writes its rows into a new generation named
``<collection>__g<12 hex>``; the manifest records it (``"generation"``) and loads open it, never
the alias. Once that manifest is committed, the alias ``<collection>`` is moved to it (other
applications can query that name) and the generations no manifest of this index folder refers to
any more are dropped: those of killed builds, and all but the one the previous manifest named,
kept until the next build so that a server still running on it keeps answering. A build that
changes nothing reuses the current generation.

Ownership. A collection is ours when it carries ``OWNER_PROPERTY`` (set when ampere-qa creates
it) or ``META_PROPERTY`` (what collections created before that marker carry). Anything else at
the chosen name, or an alias there to anything else, is someone else's data: build and load
refuse it before loading, writing or dropping anything. A generation records the index folder
that wrote it (``INDEX_PROPERTY``): a build drops only its own folder's generations.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ....errors import IndexMismatchError, StoreUnavailableError
from ..base import build_meta
from . import client as milvus_client
from .client import redact, same_uri, shown_uri
from .names import (
    ALIAS_PROPERTY,
    DEFAULT_COLLECTION,
    GENERATION,
    INDEX_PROPERTY,
    MAX_NAME,
    OWNER,
    OWNER_PROPERTY,
    name_problem,
)
from .store import MilvusStore

if TYPE_CHECKING:
    from ...manifest import Manifest

Entry = Mapping[str, Any]  # a manifest's store entry


def reusable(config: Entry, previous: Entry | None, meta: dict[str, Any]) -> bool:
    """Whether the previous manifest's generation already holds exactly this build's rows."""
    if not previous or not same_uri(previous.get("uri"), config["uri"]) or not previous.get("generation"):
        return False
    if previous.get("collection") != config.get("collection", DEFAULT_COLLECTION):
        return False
    try:
        store = MilvusStore(config["uri"], str(previous["generation"]))
        if not store.exists() or not store.owned() or store.meta() != meta:
            return False
        store.load()
        return store.count() == meta["sentence_count"]
    except Exception:  # unreadable: write a new generation
        return False


def write_generation(config: Entry, keys: np.ndarray, sentences: np.ndarray,
                     meta: dict[str, Any], index_id: str) -> str:
    """A new generation of ``config``'s collection holding exactly ``keys``; returns its name.

    Its metadata is set last, after the rows are flushed: a generation whose build was killed
    half-way matches no manifest (and none names it: the next build drops it).
    """
    alias = config.get("collection", DEFAULT_COLLECTION)
    name = f"{alias}__g{uuid.uuid4().hex[:12]}"
    store = MilvusStore(config["uri"], name)
    store.create(int(sentences.shape[1]), {}, rows=len(keys),
                 properties={ALIAS_PROPERTY: alias, INDEX_PROPERTY: index_id})
    store.load()
    store.upsert_keys(keys, sentences, new=True)
    store.flush()
    store.set_meta(meta)
    return name


def after_commit(new: Entry | None, previous: Entry | None, index_id: str) -> int:
    """Once the manifest naming ``new`` is committed (Milvus entries; None: another store):
    point the alias at its generation, then drop this index folder's generations no manifest
    refers to any more, all but the previous manifest's (kept one build longer, for servers
    still running on it). Leaving Milvus drops them all. Returns the rows dropped.

    The build has succeeded by now: a failure here is logged, and the next build tries again.
    """
    log = logging.getLogger("ampere_qa")
    dropped = 0
    same = bool(new and previous and same_uri(previous["uri"], new["uri"]))
    for config in [c for c in (new, previous) if c]:
        if config is previous and same:
            continue  # one pass per uri
        # Kept: the new generation, and the previous one where the index still is (an index
        # moved to another store or another Milvus leaves nothing behind).
        keep = {str(c["generation"]) for c in (new, previous if same else None)
                if c and c.get("generation") and config is new}
        try:
            dropped += tidy(config, new, previous, keep, index_id)
        except Exception as exc:
            log.warning("Milvus at %s was not tidied (%s); the next build will try again",
                        shown_uri(config["uri"]), redact(exc))
    return dropped


def tidy(config: Entry, new: Entry | None, previous: Entry | None, keep: set[str], index_id: str) -> int:
    """At ``config``'s URI: the pre-generation collection the previous manifest named, the
    alias moved to ``new``'s generation, and this folder's generations not in ``keep``."""
    client = milvus_client.connect(config["uri"])

    def at(name: str) -> MilvusStore:
        return MilvusStore(config["uri"], name, client=client)

    dropped = 0
    # A collection from before generations (rows updated in place under the --collection name)
    # that the previous manifest named: superseded now, and in the way of the alias.
    if previous and not previous.get("generation") and same_uri(previous["uri"], config["uri"]):
        dropped += _drop(at(str(previous.get("collection", DEFAULT_COLLECTION))))
    if new and same_uri(new["uri"], config["uri"]):
        point_alias(client, at(new["collection"]), str(new["generation"]))
    failed: list[str] = []
    for name in client.list_collections():
        if GENERATION.match(name) and name not in keep:
            try:  # one that fails does not keep the others
                props = at(name).properties()
                if props.get(OWNER_PROPERTY) == OWNER and props.get(INDEX_PROPERTY) == index_id:
                    dropped += _drop(at(name))
            except Exception as exc:
                failed.append(f"{name}: {redact(exc)}")
    if failed:
        raise StoreUnavailableError(f"{len(failed)} generation(s) not dropped ({'; '.join(failed)})")
    return dropped


def _drop(store: MilvusStore) -> int:
    """Drop an existing collection of ours that is no alias, with its aliases; its rows."""
    if not store.exists() or store.alias_target() is not None or not store.owned():
        return 0
    for alias in store.client.list_aliases(store.collection).get("aliases", []):
        store.client.drop_alias(alias)  # an alias of a dropped collection would dangle
    # Counted from the stats, not a query: a generation whose build was killed between
    # creating it and indexing it cannot be loaded, and must go all the same.
    rows = int(store.client.get_collection_stats(store.collection).get("row_count", 0))
    store.drop()
    return rows


def point_alias(client: Any, alias: MilvusStore, generation: str) -> None:
    """Make ``alias.collection`` an alias of ``generation``, unless the name is taken by
    something not ours to move (then the index works all the same, by its generation)."""
    target = alias.alias_target()
    if target == generation:
        return
    if target is None and not alias.exists():
        client.create_alias(generation, alias.collection)
    elif target is not None and GENERATION.match(target) and alias.owned():
        client.alter_alias(generation, alias.collection)
    else:
        logging.getLogger("ampere_qa").warning(
            "Milvus name %r is taken by a collection ampere-qa does not manage; the index reads "
            "its generation %r directly", alias.collection, generation)


def open_milvus(manifest: Manifest, hint: str) -> MilvusStore:
    """The manifest's collection, refused unless its rows and metadata are the manifest's."""
    config = manifest.store or {}
    name = config.get("generation") or config.get("collection", DEFAULT_COLLECTION)
    problem = name_problem(name, MAX_NAME)  # before connecting: a crafted manifest's name
    if problem:
        shown = str(name) if len(str(name)) <= 60 else f"{str(name)[:60]}…"
        raise IndexMismatchError(f"the index names Milvus collection {shown!r}, which {problem}: {hint}")
    store = MilvusStore(str(config.get("uri", "")), str(name))
    store.hint = hint
    where = f"Milvus collection {store.collection!r} at {shown_uri(store.uri)}"
    try:
        if not store.exists():
            raise IndexMismatchError(f"{where} does not exist: {hint}")
        if not store.owned():  # checked before load(): someone else's collection is not touched
            if config.get("generation"):  # a rebuild writes a new generation beside it
                raise IndexMismatchError(f"{where} was not created by ampere-qa (no {OWNER_PROPERTY} "
                                         f"property) and is left untouched: {hint}")
            other = hint.replace(f"--collection {store.collection}", "--collection ANOTHER_NAME")
            raise IndexMismatchError(f"{store.foreign_error()}; {other}")
        store.load()
        meta = store.meta()
        found_dim, found_rows = store.collection_dimension(), store.count()
    except IndexMismatchError:
        raise
    except Exception as exc:  # pymilvus raises its own MilvusException on any server error
        raise StoreUnavailableError(f"cannot read {where} ({redact(exc)})") from None
    _check_matches(where, meta, found_dim, found_rows, manifest, hint)
    return store


def _check_matches(where: str, meta: dict[str, Any], found_dim: int, found_rows: int,
                   manifest: Manifest, hint: str) -> None:
    """Refuse a collection whose shape or metadata is not the manifest's build."""
    expected = build_meta(manifest.model_fingerprint, manifest.corpus.fingerprint,
                          manifest.files["passages"].sha256, manifest.dimension, manifest.sentence_count)
    checks = [
        ("dimension", found_dim, manifest.dimension),
        ("row count", found_rows, manifest.sentence_count),
        *((key.replace("_", " "), meta.get(key), value) for key, value in expected.items()),
    ]
    for what, found, wanted in checks:
        if found != wanted:
            raise IndexMismatchError(
                f"{where} does not match the index manifest ({what}: {found!r}, manifest says "
                f"{wanted!r}): {hint}")
