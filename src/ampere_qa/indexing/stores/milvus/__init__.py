"""A vector store in a Milvus collection (``ampere-qa build --store milvus --uri ...``).

The manifest stays the source of truth: it records the collection (``"store": {"kind":
"milvus", "uri": ..., "collection": ..., "generation": ...}``), and a collection that does not
match it is refused on load. One module per job:

* ``backend.py``: :class:`MilvusBackend`, what callers ask of the store (stores/base.py);
* ``client.py``: the pymilvus client, credentials (``$AMPERE_QA_MILVUS_TOKEN``, ``--token``)
  and the masking of every secret shown (:func:`redact`);
* ``names.py``: collection names (checked before anything connects), ownership properties, keys;
* ``store.py``: :class:`MilvusStore`, the collection as a ``VectorStore``;
* ``generations.py``: a collection per build, the alias, ownership, what may be dropped. A build
  killed at any point leaves the previous index answering, exactly as with FAISS. The cost:
  every changed build writes every row (a full copy), where updating in place would write only
  the changed ones; a build already reads every vector back to reuse them.

``pymilvus`` is an optional extra (``pip install 'ampere-qa[milvus]'``), imported only when a
client connects. A local path (``x.db``) as URI runs Milvus Lite in-process;
``http://host:19530`` reaches a Milvus server or cluster (the tests run both: Milvus Lite, and
the Milvus 2.3 standalone server of the PyPI package ``milvus`` with authentication on).
"""

from __future__ import annotations

from .backend import MilvusBackend
from .client import TOKEN_ENV, normalize_uri, redact, shown_uri, split_credentials
from .generations import open_milvus
from .names import (
    ALIAS_PROPERTY,
    DEFAULT_COLLECTION,
    GENERATION,
    INDEX_PROPERTY,
    MAX_COLLECTION,
    MAX_NAME,
    META_PROPERTY,
    OWNER,
    OWNER_PROPERTY,
    check_name,
    name_problem,
    sentence_key,
    sentence_keys,
)
from .store import HNSW_BUILD, HNSW_EF, MilvusStore

__all__ = [
    "ALIAS_PROPERTY", "DEFAULT_COLLECTION", "GENERATION", "HNSW_BUILD", "HNSW_EF", "INDEX_PROPERTY",
    "MAX_COLLECTION", "MAX_NAME", "META_PROPERTY", "OWNER", "OWNER_PROPERTY", "TOKEN_ENV",
    "MilvusBackend", "MilvusStore", "check_name", "name_problem", "normalize_uri", "open_milvus",
    "redact", "sentence_key", "sentence_keys", "shown_uri", "split_credentials",
]
