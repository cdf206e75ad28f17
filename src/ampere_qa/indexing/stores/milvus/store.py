"""The Milvus vector store: one collection of (id INT64, vector FLOAT_VECTOR) rows, read and
written by the rows callers name (stores/base.py), keyed in Milvus by a content hash (names.py).

Which collection a build writes and a load opens, and which may go, is generations.py's job;
connecting and masking secrets, client.py's.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from ....errors import BadInputError, IndexMismatchError, StoreUnavailableError
from ..base import first_decrease
from ..faiss import EXACT_MAX_VECTORS
from . import client as milvus_client
from .client import muted, redact, remember, shown_uri
from .names import DEFAULT_COLLECTION, META_PROPERTY, OWNER, OWNER_PROPERTY

_BATCH = 2000  # rows per upsert / get / delete request (well under Milvus's 64 MB message limit)
# A server answers reads at a consistency level. What a build and a load check read (ids, row
# count) must see every write before it: Strong. Searching, on every question: Bounded, since
# Strong waits for the next time tick (206 ms a search on the 2.3 server against 7.8 ms); a
# search within the server's staleness bound (seconds) of a build may miss its newest rows.
# get_keys re-reads at Strong whatever it did not find.
EXACT, FAST = "Strong", "Bounded"
# On a server, collections created for more sentence rows than FAISS searches exactly get an
# HNSW index, as FAISS then switches to IVF; smaller ones stay exact (FLAT). ef: candidates a
# search keeps. Measured at 100k (scripts/benchmark_stores.py): recall@10 0.999, 7.9 ms p50
# against 65 ms for FLAT. Milvus Lite stays FLAT: its HNSW was slower and less exact (218 ms, 0.943).
HNSW_BUILD = {"M": 16, "efConstruction": 200}
HNSW_EF = 128


class MilvusStore:
    """A Milvus collection of (id INT64, vector FLOAT_VECTOR) rows, exact (FLAT) inner product."""

    kind = "milvus"

    def __init__(self, uri: str, collection: str = DEFAULT_COLLECTION, keys: np.ndarray | None = None,
                 client: Any = None):
        # Shown in messages, info and logs, and recorded: never with credentials (client.remember).
        self.uri = remember(uri)
        self.collection = collection
        self.client = client or milvus_client.connect(self.uri)
        self._index_type: str | None = None
        self.hint = ""  # the rebuild command, once opened for an index (generations.open_milvus)
        self.number_rows(np.zeros(0, np.int64) if keys is None else keys)

    def number_rows(self, keys: np.ndarray) -> None:
        """Once opened for an index: the key of each sentence row (and back, by binary search in
        the sorted keys: a dict of millions of keys would cost seconds and hundreds of MB)."""
        self.keys = keys
        self._order = np.argsort(keys, kind="stable")
        self._sorted = np.asarray(keys)[self._order]

    def keys_distinct(self) -> bool:
        """Whether the rows' keys are positive (sentence_key) and each its own: a repeated key
        would give two rows one vector, and rows_of one row for both. Checked in the sorted copy
        rows_of searches anyway."""
        return not len(self._sorted) or (int(self._sorted[0]) >= 0
                                         and first_decrease(self._sorted, strict=True) is None)

    def rows_of(self, keys: np.ndarray) -> np.ndarray:
        """The row of each key; -1 for a key that is no sentence of the index."""
        keys = np.asarray(keys, np.int64)
        if not len(self._sorted):
            return np.full(len(keys), -1, np.int64)
        at = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        return np.where(self._sorted[at] == keys, self._order[at], -1).astype(np.int64)

    def config(self) -> dict[str, str]:
        return {"kind": self.kind, "uri": self.uri, "collection": self.collection}

    # -- schema and metadata
    def exists(self) -> bool:
        return bool(self.client.has_collection(self.collection))

    def owned(self) -> bool:
        """Whether ampere-qa created this (existing) collection: only then may it write to it."""
        props = self.client.describe_collection(self.collection).get("properties") or {}
        return props.get(OWNER_PROPERTY) == OWNER or META_PROPERTY in props

    def foreign_error(self) -> str:
        return (f"Milvus collection {self.collection!r} at {shown_uri(self.uri)} was not created "
                f"by ampere-qa (no {OWNER_PROPERTY} property), so it is left untouched: choose another "
                f"--collection")

    def create(self, dimension: int, meta: dict[str, Any], rows: int = 0,
               index_type: str | None = None, properties: dict[str, str] | None = None) -> None:
        """A new collection: exact (FLAT), or HNSW on a server above EXACT_MAX_VECTORS rows,
        unless ``index_type`` says which."""
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, description="ampere-qa sentence vectors")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        params = self.client.prepare_index_params()
        large = rows > EXACT_MAX_VECTORS and "://" in self.uri
        kind = index_type or ("HNSW" if large else "FLAT")
        params.add_index(field_name="vector", index_type=kind, metric_type="IP",
                         params=HNSW_BUILD if kind == "HNSW" else {})
        self.client.create_collection(self.collection, schema=schema, index_params=params,
                                      consistency_level=EXACT,
                                      properties={OWNER_PROPERTY: OWNER,
                                                  META_PROPERTY: json.dumps(meta, sort_keys=True),
                                                  **(properties or {})})

    def index_type(self) -> str:
        """FLAT or HNSW: how the collection's vectors are indexed (read once)."""
        if self._index_type is None:
            info = self.client.describe_index(self.collection, "vector") or {}
            self._index_type = str(info.get("index_type", "FLAT"))
        return self._index_type

    def load(self) -> None:
        """Make the collection searchable (a server releases collections; Lite after a restart)."""
        self.client.load_collection(self.collection)

    def flush(self) -> None:
        """Seal written rows into indexed segments (Milvus Lite searches unsealed rows ~100x slower)."""
        self.client.flush(self.collection)

    def drop(self) -> None:
        if not self.owned():  # the one irreversible call: guarded here too, whoever the caller
            raise BadInputError(self.foreign_error())
        self.client.drop_collection(self.collection)

    def properties(self) -> dict[str, str]:
        return dict(self.client.describe_collection(self.collection).get("properties") or {})

    def alias_target(self) -> str | None:
        """The collection this name is an alias of; None when it is no alias."""
        try:  # pymilvus logs the "alias not found" it then raises, with a traceback
            with muted("pymilvus", logging.CRITICAL + 1):
                return str(self.client.describe_alias(self.collection)["collection_name"])
        except Exception:
            return None

    @property
    def dimension(self) -> int:
        return self.collection_dimension()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "uri": shown_uri(self.uri), "collection": self.collection}

    def collection_dimension(self) -> int:
        fields = self.client.describe_collection(self.collection)["fields"]
        return int(next(f for f in fields if f["name"] == "vector")["params"]["dim"])

    def meta(self) -> dict[str, Any]:
        raw = self.client.describe_collection(self.collection).get("properties", {}).get(META_PROPERTY)
        try:
            return dict(json.loads(raw)) if raw else {}
        except (TypeError, ValueError):
            return {}

    def set_meta(self, meta: dict[str, Any]) -> None:
        self.client.alter_collection_properties(
            self.collection, properties={META_PROPERTY: json.dumps(meta, sort_keys=True)})

    # -- rows
    def count(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"],
                                 consistency_level=EXACT)
        return int(rows[0]["count(*)"])

    def ids(self) -> np.ndarray:
        """Every id in the collection (what a rebuild compares with the new passages)."""
        out: list[int] = []
        # pymilvus warns on every iterator that Milvus Lite serves no server timestamp.
        with muted("pymilvus", logging.ERROR):
            it = self.client.query_iterator(self.collection, batch_size=10_000, filter="",
                                            output_fields=["id"], consistency_level=EXACT)
        try:
            while batch := it.next():
                out += [int(r["id"]) for r in batch]
        finally:
            it.close()
        return np.array(out, dtype=np.int64)

    # -- rows, as callers name them (base.py): positions translated to keys
    def upsert(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        self.upsert_keys(self.keys[np.asarray(rows, np.int64)], vectors)

    def delete(self, rows: np.ndarray) -> None:
        self.delete_keys(self.keys[np.asarray(rows, np.int64)])

    def search(self, qv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, keys = self.search_keys(qv, k)
        return scores, self.rows_of(keys)

    def get(self, rows: np.ndarray) -> np.ndarray:
        return self.get_keys(self.keys[np.asarray(rows, np.int64)])

    # -- rows by Milvus key (what a build writes)
    def upsert_keys(self, ids: np.ndarray, vectors: np.ndarray, new: bool = False) -> None:
        """Write rows by key; ``new``: the keys are not in the collection (a plain insert)."""
        vectors = np.asarray(vectors, np.float32)
        call = self.client.insert if new else self.client.upsert
        for a in range(0, len(ids), _BATCH):
            rows = [{"id": int(i), "vector": v.tolist()}
                    for i, v in zip(ids[a:a + _BATCH], vectors[a:a + _BATCH], strict=True)]
            call(self.collection, rows)

    def delete_keys(self, ids: np.ndarray) -> None:
        for a in range(0, len(ids), _BATCH):
            self.client.delete(self.collection, ids=[int(i) for i in ids[a:a + _BATCH]])

    def search_keys(self, qv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.index_type() == "HNSW":
            params["params"] = {"ef": max(HNSW_EF, k)}
        try:
            res = self.client.search(self.collection, [np.asarray(qv, np.float32).tolist()], limit=k,
                                     output_fields=["id"], search_params=params,
                                     consistency_level=FAST)[0]
        except Exception as exc:
            raise self._unavailable(exc) from None
        return (np.array([h["distance"] for h in res], np.float32),
                np.array([h["id"] for h in res], np.int64))

    def _unavailable(self, exc: Exception) -> StoreUnavailableError:
        """A failed read, said in one line: the collection may be gone because a newer build
        replaced it (a generation is kept one build longer, not forever)."""
        return StoreUnavailableError(
            f"cannot read Milvus collection {self.collection!r} at {shown_uri(self.uri)} ({redact(exc)}); "
            f"if a newer build replaced it, restart to load the new index")

    def get_keys(self, ids: np.ndarray) -> np.ndarray:
        """Vectors of ``ids``, in that order (a missing id is an error). Read at the fast level,
        then any id not found again at the exact one: rows written in the last seconds (a build
        reading the index it just wrote) are not missed."""
        found: dict[int, list[float]] = {}
        todo = [int(i) for i in ids]
        for level in (FAST, EXACT):
            for a in range(0, len(todo), _BATCH):
                try:
                    got = self.client.get(self.collection, ids=todo[a:a + _BATCH],
                                          output_fields=["vector"], consistency_level=level)
                except Exception as exc:
                    raise self._unavailable(exc) from None
                for r in got:
                    found[int(r["id"])] = r["vector"]
            todo = [i for i in todo if i not in found]
            if not todo:
                break
        if todo:  # the saved keys name rows the collection lacks: not a question's fault
            raise IndexMismatchError(
                f"Milvus collection {self.collection!r} at {shown_uri(self.uri)} lacks {len(todo)} "
                f"of the sentence rows the index names" + (f": {self.hint}" if self.hint else ""))
        return np.array([found[int(i)] for i in ids], np.float32).reshape(len(ids), -1)
