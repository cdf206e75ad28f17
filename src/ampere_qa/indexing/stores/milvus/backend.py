"""The Milvus backend: what callers ask of ``--store milvus`` (options, configuration, write,
open, tidying, how it is shown), put together from client.py, store.py and generations.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from ....errors import BadInputError, IndexMismatchError
from ....types import Passage
from ..base import Backend, CheckedFiles, FileContent, Option, Written, load_npy
from . import generations
from .client import TOKEN_ENV, normalize_uri, shown_uri, split_credentials
from .names import DEFAULT_COLLECTION, check_name, sentence_keys
from .store import MilvusStore

if TYPE_CHECKING:
    from ...manifest import Manifest


class MilvusBackend(Backend):
    """A collection per build (a generation, generations.py) at ``uri``, under the alias
    ``collection``; the manifest's ``store`` entry records both and the generation."""

    kind = "milvus"
    label = "a Milvus collection"
    # The rows are in the collection; the index folder keeps only each sentence row's key, so
    # that a load need not hash every passage's text.
    optional_files: ClassVar[Mapping[str, str]] = {"sentence_keys": "npy"}
    options = (
        Option("--uri", "Milvus: a local file (x.db, runs Milvus Lite) or http://host:19530."),
        Option("--collection", f"Milvus collection name [default: {DEFAULT_COLLECTION}]."),
        Option("--token", f"Milvus credentials, user:password or an API key [default: ${TOKEN_ENV}]; "
                          "never written anywhere.", env=TOKEN_ENV),
    )
    example = "--store milvus --uri vectors.db      # Milvus Lite"
    schema: ClassVar[Mapping[str, type]] = {"uri": str, "collection": str, "generation": str}

    @classmethod
    def implied(cls, given: Mapping[str, Any]) -> bool:
        """A ``--uri`` says where the collection is: no ``--store`` needed."""
        return bool(given.get("uri"))

    @classmethod
    def configure(cls, given: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Self:
        """``--uri`` and ``--collection``, else the previous manifest's; the URI recorded
        without credentials (client.normalize_uri)."""
        before = previous or {}
        uri = given.get("uri") or before.get("uri")
        if not uri:
            raise BadInputError("--store milvus needs --uri: a local file (x.db, Milvus Lite) or "
                                "http://host:19530 (a Milvus server)")
        return cls({"kind": cls.kind, "uri": normalize_uri(uri),
                    "collection": given.get("collection") or before.get("collection") or DEFAULT_COLLECTION})

    @property
    def collection(self) -> str:
        return str(self.config.get("collection", DEFAULT_COLLECTION))

    def check_writable(self) -> None:
        """Refuse a name Milvus would refuse (before connecting), someone else's collection, or
        an alias of one."""
        check_name(self.config.get("collection", DEFAULT_COLLECTION))
        store = MilvusStore(self.config["uri"], self.collection)
        if store.exists() and not store.owned():
            raise BadInputError(store.foreign_error())

    def write(self, passages: list[Passage], vectors: np.ndarray, meta: dict[str, Any],
              options: dict[str, Any]) -> Written:
        """This build's rows in a generation: the previous manifest's when it holds exactly
        them, else a new one (generations.py). The manifest records which."""
        previous = options.get("previous_store") or {}
        keys = sentence_keys(passages)
        files: dict[str, FileContent] = {"sentence_keys": keys}
        recorded = {**self.config, "uri": split_credentials(self.config["uri"])[0]}  # never a password
        if generations.reusable(self.config, previous, meta):
            reused = previous["generation"]
            return Written(files=files, manifest={"store": {**recorded, "generation": reused}})
        generation = generations.write_generation(self.config, keys, vectors, meta,
                                                  str(options.get("index_id", "")))
        return Written(files=files, manifest={"store": {**recorded, "generation": generation}},
                       upserted=len(vectors))

    @classmethod
    def after_commit(cls, new: Mapping[str, Any] | None, previous: Mapping[str, Any] | None,
                     index_id: str) -> int:
        def mine(entry: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
            return entry if entry and entry.get("kind") == cls.kind else None

        return generations.after_commit(mine(new), mine(previous), index_id)

    def open(self, manifest: Manifest, files: CheckedFiles, passages: Sequence[Passage],
             hint: str) -> MilvusStore:
        """The collection of a checked index, its rows numbered like the passages' sentences
        (by the keys the build saved; an index from before they were saved hashes every passage)."""
        store = generations.open_milvus(manifest, hint)
        if "sentence_keys" not in files:
            store.number_rows(sentence_keys(passages))
            return store
        path, raw = files["sentence_keys"]
        try:
            keys = load_npy(path, raw, kind=("i", 1))
        except ValueError:  # LayoutError included
            keys = None
        if keys is None or keys.dtype != np.int64 or keys.shape != (manifest.sentence_count,):
            raise IndexMismatchError(f"index file {path} does not hold one key per sentence: {hint}")
        store.number_rows(keys)
        if not store.keys_distinct():
            raise IndexMismatchError(f"index file {path} does not hold one distinct key per sentence: {hint}")
        return store

    def _shown_uri(self) -> Any:
        uri = self.config.get("uri")
        return shown_uri(uri) if isinstance(uri, str) else uri

    def shown(self) -> dict[str, Any]:
        """The entry, its URI masked should an older build have recorded credentials in it."""
        return {**self.config, "uri": self._shown_uri()} if "uri" in self.config else dict(self.config)

    def where(self) -> str:
        return f"Milvus collection {self.config.get('collection')} at {self._shown_uri()}"

    def rebuild_options(self) -> str:
        return f" --store {self.kind} --uri {self._shown_uri()} --collection {self.config.get('collection')}"

    def report(self, details: Mapping[str, Any]) -> str:
        return f"; Milvus rows written {details.get('upserted', 0)}, removed {details.get('deleted', 0)}"
