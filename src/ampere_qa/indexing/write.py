"""Writing an index folder: its data files one at a time, then the manifest that commits them.

Data files carry their content hash in their name and the manifest names them, so replacing
``manifest.json`` (one atomic rename) is the single moment a new build becomes visible: a build
killed at any point before leaves the previous index whole and loadable. The passage table and
BM25 are written here, at build time, so that a load parses nothing in proportion to the archive
(index.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..atomic import fsync_dir, temp_file, write_atomic
from ..errors import BadInputError
from ..types import Passage
from ..version import __version__
from . import folder, stores
from .checks import ARRAYS, WINDOW_ARRAYS, file_entry, intact
from .lexical import ANALYZER_VERSION, LexicalIndex
from .manifest import FORMAT_VERSION, MANIFEST, FileEntry, analyzer_languages
from .passage_file import encode
from .stores import Backend, Written
from .stores.base import FileContent, build_meta


@dataclass
class Windows:
    """Every document cut into pieces (ingest.passages.windows), document by document: the
    vector of each, the number of its document (in the manifest's corpus files) and the start
    of its text's sha256 (what a rebuild reuses a vector by: the texts are not kept)."""

    vectors: np.ndarray  # (n, dim) float32
    docs: np.ndarray  # (n,) int64, never decreasing
    keys: np.ndarray  # (n, WINDOW_KEY_BYTES) uint8


WINDOW_KEY_BYTES = 16


def window_keys(texts: list[str]) -> np.ndarray:
    digests = b"".join(hashlib.sha256(t.encode()).digest()[:WINDOW_KEY_BYTES] for t in texts)
    return np.frombuffer(digests, np.uint8).reshape(len(texts), WINDOW_KEY_BYTES).copy()


@dataclass
class Vectors:
    """What build embeds, row-aligned with the passages and, passage by passage, their
    sentences; and the documents' windows (None: an index built without them)."""

    sentences: np.ndarray
    passage_vectors: np.ndarray
    leave_one_out: np.ndarray
    background: np.ndarray
    windows: Windows | None = None


def _lexical_files(passages: list[Passage], languages: tuple[str, ...]) -> dict[str, FileContent]:
    """The BM25 index, built once here instead of at every load; refused (BadInputError) when
    its vocabulary is over what a load accepts (lexical.MAX_VOCABULARY)."""
    index = LexicalIndex([p.indexed_text for p in passages], languages=languages)
    arrays, _ = index.saved()
    return {**arrays, "lexical_vocab": index.vocabulary_json()}


class _HashingFile:
    """A write-only file that hashes what goes through it."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.fh.write(view)
        self.size += len(view)
        return len(view)


class _DataFiles:
    """A build's data files, written one at a time: each goes through a temporary file and
    takes its name from its hash once written, so no file's bytes wait in memory for the
    others' (a copy of every file at once was most of a million-passage build's peak).

    A file already there under its name, intact, is kept as it is. Each file is added to the
    build journal before it is renamed into place, so a killed build's files are removed by the
    next build (folder.finish); a build that fails removes them itself (``undo``).
    """

    def __init__(self, index_dir: Path, previous: set[str]):
        self.index_dir, self.previous = index_dir, previous
        self.entries: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []

    def write(self, role: str, content: FileContent) -> Any:
        """Write ``role``'s file; what a function ``content`` returns is returned."""
        result = None
        with temp_file(self.index_dir, f"{folder.TEMP_PREFIX}{role}") as (fh, tmp):
            sink = _HashingFile(fh)
            if isinstance(content, np.ndarray):  # np.save writes it 16 MB at a time, no whole copy
                np.save(sink, np.ascontiguousarray(content))
            elif callable(content):
                result = content(sink, {r: self.index_dir / e["name"] for r, e in self.entries.items()})
            else:
                sink.write(content)
            fh.flush()
            entry = file_entry(role, sink.sha.hexdigest(), sink.size, tmp)
            path = self.index_dir / entry["name"]
            if intact(self.index_dir, FileEntry.from_dict(entry)):  # same name, same content: kept as it is
                os.unlink(tmp)
            elif path.exists() and entry["name"] not in self.previous:
                # a file of that name ampere-qa cannot prove it wrote: never overwrite it
                raise BadInputError(f"{path} is in the way and was not written by ampere-qa: "
                                    "move it elsewhere, or build into another folder")
            else:
                os.fsync(fh.fileno())
                self.created.append(entry["name"])
                folder.begin(self.index_dir, created=self.created, superseded=sorted(self.previous))
                os.replace(tmp, path)
        self.entries[role] = entry
        return result

    def undo(self) -> None:
        """Remove the files this build put in place; the previous build's stay."""
        if self.created:
            folder.finish(self.index_dir, keep=self.previous)


def write_index(
    index_dir: Path,
    passages: list[Passage],
    vectors: Vectors,
    manifest: dict[str, Any],
    previous: set[str],
    store: Backend | None = None,
    options: dict[str, Any] | None = None,
    previous_store: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write data files, then commit them by replacing the manifest; remove superseded files.

    The caller holds the folder's build lock (:func:`folder.build_lock`) and gives the data
    files ``previous``ly committed there (:func:`manifest.file_names`): only those, and the files
    this build creates, are ever replaced or removed (see folder.py).

    ``store`` is the backend that writes the sentence vectors (None: the default, stores.DEFAULT)
    — data files here, or elsewhere where the manifest's ``store`` entry says.
    ``previous_store`` is the entry of the manifest being replaced: once the new one is
    committed, the backends drop what only the old one used (Backend.after_commit). ``options``
    go to the backend (``faiss_kind``). The result's ``"store_changes"`` (not written) counts
    rows written and removed.
    """
    head = _head(manifest, passages, vectors)
    index_id = str(index_dir.resolve())
    data = _DataFiles(index_dir, previous)
    try:
        languages = analyzer_languages(manifest.get("answer", {}))
        written = _write_files(data, passages, vectors, head, languages, store,
                               {**(options or {}), "previous_store": previous_store, "index_id": index_id})
    except BaseException:
        data.undo()
        raise
    files = data.entries
    manifest = {**head, **written.manifest, "files": files}
    fsync_dir(index_dir)
    write_atomic(index_dir / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(),
                 prefix=folder.TEMP_PREFIX)
    fsync_dir(index_dir)
    folder.finish(index_dir, keep={entry["name"] for entry in files.values()})
    removed = stores.after_commit(manifest.get("store"), previous_store, index_id)
    return {**manifest, "store_changes": {"upserted": written.upserted, "deleted": removed}}


def _head(manifest: dict[str, Any], passages: list[Passage], vectors: Vectors) -> dict[str, Any]:
    """The manifest to be written, less what the files and the store add."""
    return {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **manifest,
        "passage_count": len(passages),
        "sentence_count": int(vectors.sentences.shape[0]),
        "dimension": int(vectors.sentences.shape[1]),
        "normalization": "l2",
        "metric": "inner_product",
        "lexical": {"analyzer_version": ANALYZER_VERSION},
    }


def _write_files(data: _DataFiles, passages: list[Passage], vectors: Vectors, head: dict[str, Any],
                 languages: tuple[str, ...], store: Backend | None, options: dict[str, Any]) -> Written:
    """Every data file, in the order the kill tests name: passages, sentences, passage_vectors, ...
    What the store wrote is returned (its manifest entry, its row counts)."""
    # Before any file is written: a vocabulary over the cap refuses the build, leaving no trace.
    lexical_files = _lexical_files(passages, languages)
    table = data.write("passages", lambda sink, _: encode(passages, sink))
    # The store's rows are tied to this build by the passages file's hash (build_meta).
    meta = build_meta(head["model"]["fingerprint"], head["corpus"]["fingerprint"],
                      data.entries["passages"]["sha256"], head["dimension"], head["sentence_count"])
    backend = store or stores.backend(stores.DEFAULT)()
    written = backend.write(passages, vectors.sentences, meta, options)
    for role in list(written.files):
        data.write(role, written.files.pop(role))  # popped: FAISS's index goes once written
    for role in ARRAYS:
        data.write(role, np.asarray(getattr(vectors, role), dtype=np.float32))
    if vectors.windows is not None and len(vectors.windows.docs):
        w = vectors.windows
        arrays: tuple[np.ndarray, ...] = (np.asarray(w.vectors, dtype=np.float32),
                                          np.asarray(w.docs, dtype=np.int64),
                                          np.asarray(w.keys, dtype=np.uint8))  # no copy if already so
        for role, array in zip(WINDOW_ARRAYS, arrays, strict=True):
            data.write(role, array)
    for role, content in {"passage_index": table, **lexical_files}.items():
        data.write(role, content)
    return written
