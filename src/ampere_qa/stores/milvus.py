"""A vector store in a Milvus collection (``ampere-qa build --store milvus --uri ...``).

The manifest stays the source of truth: it records the collection (``"store": {"kind":
"milvus", "uri": ..., "collection": ...}``), and a collection that does not match it is refused
on load.

Generations. Each build that changes anything writes its rows into a new collection, a
*generation* named ``<collection>__g<12 hex>``; the manifest records it (``"generation"``) and
loads open it, never the alias. Once the manifest naming it is committed, the alias
``<collection>`` is moved to it (other applications can query that name) and the generations this
index folder no manifest refers to any more are dropped: those of killed builds, and all but the
one the previous manifest named, which is kept until the next build so that a server still
running on the previous manifest keeps answering. So a build killed at any point leaves the
previous index answering, exactly as with FAISS. A build that changes nothing reuses the current
generation. The cost: every changed build writes every row (a full copy), where updating in
place would write only the changed ones; a build already reads every vector back to reuse them.

Keys. Milvus rows carry a 63-bit key hashed from the passage's text and the sentence's number in
it (:func:`sentence_key`). Callers name sentences by row (base.py); the store translates.

``pymilvus`` is an optional extra (``pip install 'ampere-qa[milvus]'``), imported only here. A
local path (``x.db``) as URI runs Milvus Lite in-process; ``http://host:19530`` reaches a Milvus
server or cluster (the tests run both: Milvus Lite, and the Milvus 2.3 standalone server of the
PyPI package ``milvus`` with authentication on).

Credentials. A server that requires them gets ``$AMPERE_QA_MILVUS_TOKEN`` (``user:password`` or an
API key; the CLI's ``--token`` sets it). The token is read when a client connects and is never
written to the manifest, a collection property or a message. Credentials written into the URI
(``http://user:password@host:19530``) are taken out of it before it is recorded or shown: they
open this process's connections (kept in memory, :data:`_CREDENTIALS`), the manifest records the
URI without them, and a later command needs the token. Every URI and message shown goes
through :func:`redact` (credentials in a URI, the token, ``token=``-style parameters masked).

Names. A ``--collection`` name is checked before anything connects (:func:`check_name`):
Milvus's rule, less the room the generation suffix takes.

Ownership. A collection is ours when it carries ``OWNER_PROPERTY`` (set when ampere-qa creates
it) or ``META_PROPERTY`` (what collections created before that marker carry). Anything else at
the chosen name, or an alias there to anything else, is someone else's data: build and load
refuse it before loading, writing or dropping anything, so ``--collection`` can never overwrite
another application's vectors. A generation records the index folder that wrote it
(``INDEX_PROPERTY``): a build drops only its own folder's generations, so two index folders may
share a ``--collection`` name (the alias follows the last build).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from ..errors import BadInputError, IndexMismatchError, StoreUnavailableError
from ..types import Passage
from .base import FileContent, Written, build_meta, first_decrease, load_npy
from .faiss import EXACT_MAX_VECTORS

KIND = "milvus"
FILES: tuple[str, ...] = ()  # the rows are in the collection; the index folder needs nothing
# ... but keeps each sentence row's key, so that a load need not hash every passage's text.
OPTIONAL_FILES = ("sentence_keys",)

DEFAULT_COLLECTION = "ampere_qa"
META_PROPERTY = "ampere_qa.meta"  # collection property: JSON tying the rows to one manifest
OWNER_PROPERTY, OWNER = "ampere_qa.owner", "ampere-qa"  # set at creation: this collection is ours
ALIAS_PROPERTY = "ampere_qa.alias"  # a generation's: the --collection name its alias is
INDEX_PROPERTY = "ampere_qa.index"  # a generation's: the index folder whose build wrote it
GENERATION = re.compile(r"^(?P<alias>.+)__g[0-9a-f]{12}$")
GENERATION_SUFFIX = len("__g") + 12  # what write_generation appends to the --collection name
# Milvus's rule for collection and alias names: a letter or an underscore, then letters, digits
# and underscores, at most MAX_NAME characters (the server's default proxy.maxNameLength; Milvus
# Lite's too). The --collection name leaves room for the suffix: 240 characters.
MAX_NAME = 255
MAX_COLLECTION = MAX_NAME - GENERATION_SUFFIX
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BATCH = 2000  # rows per upsert / get / delete request (well under Milvus's 64 MB message limit)
TOKEN_ENV = "AMPERE_QA_MILVUS_TOKEN"
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


def sentence_key(passage_text: str, number: int) -> int:
    """The Milvus primary key of a passage's ``number``-th sentence (positive int64)."""
    digest = hashlib.blake2b(f"{number}\0{passage_text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sentence_keys(passages: Sequence[Any]) -> np.ndarray:
    """Keys of every sentence row, in row order (passage by passage)."""
    return np.array([sentence_key(p.text, j) for p in passages for j in range(len(p.sentences))],
                    dtype=np.int64)


@contextlib.contextmanager
def _muted(logger_name: str, level: int) -> Iterator[None]:
    """Raise a library logger's level for the block only, then put back whatever it was."""
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def name_problem(name: object, longest: int = MAX_COLLECTION) -> str | None:
    """Why Milvus would refuse ``name`` as a collection or alias name (at most ``longest``
    characters), or None."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return ("must start with a letter or an underscore and hold only letters, digits and "
                "underscores")
    if len(name) > longest:
        return (f"is {len(name)} characters long, more than {longest}"
                + (f" (Milvus allows {MAX_NAME}; ampere-qa appends {GENERATION_SUFFIX} to name each "
                   "build's collection)" if longest == MAX_COLLECTION else ""))
    return None


def check_name(name: object) -> None:
    """Refuse (:class:`BadInputError`, exit 2) a ``--collection`` name Milvus would refuse
    once a build has connected and embedded everything."""
    problem = name_problem(name)
    if problem:
        text = str(name)
        shown = text if len(text) <= 60 else f"{text[:60]}…"
        raise BadInputError(f"--collection {shown!r} is not a Milvus collection name: it {problem}")


# Credentials taken out of a URI (normalize_uri, MilvusStore): the URI without them -> the token
# they stand for. This process's connections use them; nothing writes them anywhere.
_CREDENTIALS: dict[str, str] = {}
# A URI's userinfo (user:password@, up to its last @ before the host) and secret parameters.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
_SECRET_PARAM = re.compile(r"(?i)(?P<key>\b(?:token|password|passwd|secret|api_?key)=)[^&#\s]+")
_MIN_SECRET_PART = 4  # the password part of a user:password token is masked alone from this length


def split_credentials(uri: str) -> tuple[str, str]:
    """``uri`` without its userinfo, and the token that userinfo stands for (``user:password``,
    percent-decoded; "" when it has none). A local path has none."""
    m = re.match(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#]*)(?P<rest>.*)\Z", uri, re.S)
    if not m or "@" not in m["netloc"]:
        return uri, ""
    userinfo, _, host = m["netloc"].rpartition("@")
    user, colon, password = userinfo.partition(":")
    return m["scheme"] + host + m["rest"], unquote(user) + (":" + unquote(password) if colon else "")


def _secrets() -> list[str]:
    tokens = [t for t in (os.environ.get(TOKEN_ENV, ""), *_CREDENTIALS.values()) if t]
    parts = [t.partition(":")[2] for t in tokens if ":" in t]
    found = {*tokens, *(p for p in parts if len(p) >= _MIN_SECRET_PART)}
    return sorted(found, key=len, reverse=True)  # a token before the password inside it


def redact(text: object) -> str:
    """``text`` (a message, an exception, a URI) as it may be shown: the userinfo of any URI in
    it, ``token=``-style parameters, the token and any credentials taken from a URI, masked."""
    out = _SECRET_PARAM.sub(r"\g<key>***", _USERINFO.sub(r"\g<scheme>***@", str(text)))
    for secret in _secrets():
        out = out.replace(secret, "***")
    return out


def shown_uri(uri: str) -> str:
    """A URI as messages, ``info`` and logs show it (:func:`redact`)."""
    return redact(uri)


def _same_uri(a: object, b: object) -> bool:
    """Whether two recorded URIs name the same Milvus (credentials aside)."""
    return isinstance(a, str) and isinstance(b, str) and split_credentials(a)[0] == split_credentials(b)[0]


def _client(uri: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise StoreUnavailableError(
            "this index keeps its vectors in Milvus, which needs pymilvus: "
            "pip install 'ampere-qa[milvus]'"
        ) from None
    # Milvus Lite logs a full traceback (logger.exception, e.g. the lock another process holds)
    # before pymilvus raises; the error below already says it in one line. AMPERE_QA_DEBUG=1
    # (the CLI's traceback switch) lets it through.
    debug = os.environ.get("AMPERE_QA_DEBUG")
    bare, inline = split_credentials(uri)
    if inline:
        _CREDENTIALS[bare] = inline
    # Credentials given in this process's URI first (as pymilvus itself does), else the token.
    token = _CREDENTIALS.get(bare) or os.environ.get(TOKEN_ENV, "")
    try:
        with contextlib.nullcontext() if debug else _muted("milvus_lite", logging.CRITICAL + 1):
            return MilvusClient(uri=bare, token=token)
    except Exception as exc:
        if "://" not in uri:
            why = "; a Milvus Lite file is opened by one process at a time"
        else:
            why = ("; if the server requires credentials, set $AMPERE_QA_MILVUS_TOKEN or --token"
                   if not token else "; check the server and the token")
        raise StoreUnavailableError(f"cannot reach Milvus at {shown_uri(uri)} ({redact(exc)}){why}") from None


def normalize_uri(uri: str) -> str:
    """The URI a manifest records: a local Milvus Lite file as an absolute path; a server's URI
    as given, less any credentials in it (``user:password@``). Those are kept in this process's
    memory for its connections (so the build given them works) and never recorded: a warning
    says that later commands need ``$AMPERE_QA_MILVUS_TOKEN`` or ``--token``."""
    if "://" not in uri:
        return str(Path(uri).expanduser().resolve())
    bare, token = split_credentials(uri)
    if token:
        _CREDENTIALS[bare] = token
        logging.getLogger("ampere_qa").warning(
            "the credentials in the Milvus URI %s serve this command only and are not recorded in "
            "the index: later commands need $%s or --token", shown_uri(uri), TOKEN_ENV)
    return bare


class MilvusStore:
    """A Milvus collection of (id INT64, vector FLOAT_VECTOR) rows, exact (FLAT) inner product."""

    kind = "milvus"

    def __init__(self, uri: str, collection: str = DEFAULT_COLLECTION, keys: np.ndarray | None = None,
                 client: Any = None):
        # Shown in messages, info and logs, and recorded: never with credentials (split_credentials).
        self.uri, token = split_credentials(uri)
        if token:
            _CREDENTIALS[self.uri] = token
        self.collection = collection
        self.client = client or _client(self.uri)
        self._index_type: str | None = None
        self.hint = ""  # the rebuild command, once opened for an index (open_milvus)
        self.number_rows(np.zeros(0, np.int64) if keys is None else keys)

    def number_rows(self, keys: np.ndarray) -> None:
        """Once opened for an index: the key of each sentence row (and back, by binary search in
        the sorted keys: a dict of millions of keys would cost seconds and hundreds of MB)."""
        self.keys = keys
        self._order = np.argsort(keys, kind="stable")
        self._sorted = np.asarray(keys)[self._order]

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
            with _muted("pymilvus", logging.CRITICAL + 1):
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
        with _muted("pymilvus", logging.ERROR):
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


def check_writable(config: dict[str, Any]) -> None:
    """Refuse, before a build reads or embeds anything, a name ampere-qa may not write under:
    one Milvus would refuse (before connecting), someone else's collection, or an alias of one."""
    check_name(config.get("collection", DEFAULT_COLLECTION))
    store = MilvusStore(config["uri"], config.get("collection", DEFAULT_COLLECTION))
    if store.exists() and not store.owned():
        raise BadInputError(store.foreign_error())


def _reusable(config: dict[str, Any], previous: dict[str, Any] | None, meta: dict[str, Any]) -> bool:
    """Whether the previous manifest's generation already holds exactly this build's rows."""
    if not previous or not _same_uri(previous.get("uri"), config["uri"]) or not previous.get("generation"):
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


def write_generation(config: dict[str, Any], keys: np.ndarray, sentences: np.ndarray,
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


def write(config: dict[str, Any], passages: list[Passage], vectors: np.ndarray,
          meta: dict[str, Any], options: dict[str, Any]) -> Written:
    """This build's rows in a generation: the previous manifest's when it holds exactly them,
    else a new one (see the module docstring). The manifest records which."""
    previous = options.get("previous_store") or {}
    keys = sentence_keys(passages)
    files: dict[str, FileContent] = {"sentence_keys": keys}
    recorded = {**config, "uri": split_credentials(config["uri"])[0]}  # never a password
    if _reusable(config, previous, meta):
        return Written(files=files, manifest={"store": {**recorded, "generation": previous["generation"]}})
    generation = write_generation(config, keys, vectors, meta, str(options.get("index_id", "")))
    return Written(files=files, manifest={"store": {**recorded, "generation": generation}},
                   upserted=len(vectors))


def after_commit(new: dict[str, Any] | None, previous: dict[str, Any] | None, index_id: str) -> int:
    """Once the manifest naming ``new`` (None: FAISS) is committed: point the alias at its
    generation, then drop this index folder's generations no manifest refers to any more, all
    but the previous manifest's (kept one build longer, for servers still running on it).
    Switching to FAISS drops them all. Returns the rows dropped.

    The build has succeeded by now: a failure here is logged, and the next build tries again.
    """
    log = logging.getLogger("ampere_qa")
    dropped = 0
    new_m = new if new and new.get("kind") == KIND else None
    prev_m = previous if previous and previous.get("kind") == KIND else None
    same_uri = bool(new_m and prev_m and _same_uri(prev_m["uri"], new_m["uri"]))
    for config in [c for c in (new_m, prev_m) if c]:
        if config is prev_m and same_uri:
            continue  # one pass per uri
        # Kept: the new generation, and the previous one where the index still is (an index
        # moved to FAISS or to another Milvus leaves nothing behind).
        keep = {str(c["generation"]) for c in (new_m, prev_m if same_uri else None)
                if c and c.get("generation") and config is new_m}
        try:
            dropped += _tidy(config, new_m, prev_m, keep, index_id)
        except Exception as exc:
            log.warning("Milvus at %s was not tidied (%s); the next build will try again",
                        shown_uri(config["uri"]), redact(exc))
    return dropped


def _tidy(config: dict[str, Any], new: dict[str, Any] | None, previous: dict[str, Any] | None,
          keep: set[str], index_id: str) -> int:
    client = _client(config["uri"])

    def at(name: str) -> MilvusStore:
        return MilvusStore(config["uri"], name, client=client)

    def drop(store: MilvusStore) -> int:
        if not store.exists() or store.alias_target() is not None or not store.owned():
            return 0
        for alias in client.list_aliases(store.collection).get("aliases", []):
            client.drop_alias(alias)  # an alias of a dropped collection would dangle
        # Counted from the stats, not a query: a generation whose build was killed between
        # creating it and indexing it cannot be loaded, and must go all the same.
        rows = int(client.get_collection_stats(store.collection).get("row_count", 0))
        store.drop()
        return rows

    dropped = 0
    # A collection from before generations (rows updated in place under the --collection name)
    # that the previous manifest named: superseded now, and in the way of the alias.
    if previous and not previous.get("generation") and _same_uri(previous["uri"], config["uri"]):
        dropped += drop(at(str(previous.get("collection", DEFAULT_COLLECTION))))
    if new and _same_uri(new["uri"], config["uri"]):
        _point_alias(client, at(new["collection"]), str(new["generation"]))
    failed: list[str] = []
    for name in client.list_collections():
        if GENERATION.match(name) and name not in keep:
            try:  # one that fails does not keep the others
                props = at(name).properties()
                if props.get(OWNER_PROPERTY) == OWNER and props.get(INDEX_PROPERTY) == index_id:
                    dropped += drop(at(name))
            except Exception as exc:
                failed.append(f"{name}: {redact(exc)}")
    if failed:
        raise StoreUnavailableError(f"{len(failed)} generation(s) not dropped ({'; '.join(failed)})")
    return dropped


def _point_alias(client: Any, alias: MilvusStore, generation: str) -> None:
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


def open(config: dict[str, Any], manifest: dict[str, Any],
         files: dict[str, tuple[Path, bytes | None]], passages: Sequence[Passage], hint: str) -> MilvusStore:
    """The collection of a checked index, its rows numbered like the passages' sentences (by
    the keys the build saved; an index from before they were saved hashes every passage)."""
    store = open_milvus(manifest, hint)
    if "sentence_keys" not in files:
        store.number_rows(sentence_keys(passages))
        return store
    path, raw = files["sentence_keys"]
    try:
        keys = load_npy(path, raw, kind=("i", 1))
    except ValueError:  # LayoutError included
        keys = None
    if keys is None or keys.dtype != np.int64 or keys.shape != (manifest["sentence_count"],):
        raise IndexMismatchError(f"index file {path} does not hold one key per sentence: {hint}")
    store.number_rows(keys)
    # Keys are positive (sentence_key) and one per row: a repeated key would give two rows one
    # vector, and rows_of one row for both. Checked in the sorted copy rows_of searches anyway.
    if len(keys) and (int(store._sorted[0]) < 0 or first_decrease(store._sorted, strict=True) is not None):
        raise IndexMismatchError(f"index file {path} does not hold one distinct key per sentence: {hint}")
    return store


def open_milvus(manifest: dict[str, Any], hint: str) -> MilvusStore:
    """The manifest's collection, refused unless its rows and metadata are the manifest's."""
    config = manifest.get("store", {})
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
    expected = build_meta(manifest, manifest["files"]["passages"]["sha256"])
    checks = [
        ("dimension", found_dim, manifest["dimension"]),
        ("row count", found_rows, manifest["sentence_count"]),
        *((key.replace("_", " "), meta.get(key), value) for key, value in expected.items()),
    ]
    for what, found, wanted in checks:
        if found != wanted:
            raise IndexMismatchError(
                f"{where} does not match the index manifest ({what}: {found!r}, manifest says "
                f"{wanted!r}): {hint}")
    return store
