"""The index on disk: passages, their vectors (sentences in a store, stores/), and the manifest.

Layout of an index folder::

    manifest.json                  what was built, from what, with which model; checked on load
    passages.<hash>.jsonl          one passage a line (text, locations, sentence spans)
    passage_index.<hash>.npy       per passage: its line's byte offset, its first sentence's row
    lexical_*.<hash>.npy/.json     BM25 over the passages, saved at build time (lexical.py)
    sentences.<hash>.faiss         the default store (stores/faiss.py): every sentence's vector;
                                   a backend names its own files (Backend.files), if any
    passage_vectors.<hash>.npy     one vector per passage
    leave_one_out.<hash>.npy       per sentence, the vector of its passage without it
    background.<hash>.npy          generic unrelated sentences: what "off-topic" looks like
    window_*.<hash>.npy            each document cut in ~1,000-character windows: their vectors,
                                   documents and text hashes (write.Windows; absent: none)

All vectors are float32 and L2-normalised, so inner product is cosine similarity. This module
loads an index; write.py writes one (data files named by their content hash, then the manifest
replaced by one atomic rename, the single moment a new build becomes visible: a build killed at
any point before leaves the previous index whole and loadable), and checks.py checks each file
against its manifest entry. Both are imported from here as well.

Scale (measured in BENCHMARKS.md): up to ``EXACT_MAX_VECTORS`` sentence vectors the FAISS index
is exact (``IndexFlatIP``); above, build writes an inverted-file index (``IndexIVFFlat``, its
``nprobe`` recorded in the manifest), which answers a query over a million vectors tens of times
faster for a recall@10 above 0.95. Files up to ``checks.FULL_HASH_MAX_BYTES`` are hashed whole on
every load; larger ones are checked by size and by a hash of their ends (checks.py). Big files are
memory-mapped (arrays, the FAISS index, the passages), and passages are parsed when asked for
(passage_file.py), so a load parses nothing in proportion to the archive but the BM25 vocabulary
(capped: lexical.MAX_VOCABULARY).

What a load checks beyond the hashes (a crafted index can have hashes that match): every array's
structure and values before a question can trip on them. The passage table cuts the passages file
into lines and adds up to the sentence count; each passage, when parsed, has the sentences its row
says (passage_file.py). The BM25 arrays fit together (lexical.saved_problem: pointers from 0 to
the data's length, never going back, one column per stem, passage numbers in range, finite
scores). The vector arrays hold no NaN or infinity. The sentence vectors are the backend's to
check (Backend.open; FAISS: layout at load, row offsets of a mapped IVF file against its lists,
and every row and vector a question reads). The value checks pass
once over each array, chunk by chunk, memory-mapped ones included (stores/base.py CHECK_CHUNK): a
copy of an array is never made, and its pages do not stay resident. That pass is what a load now
reads in proportion to the archive, the FAISS file aside.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import open_regular
from ..errors import IndexMismatchError
from ..ingest import corpus as _corpus  # its file-size cap, read when used (tests lower it)
from ..types import Passage
from . import lexical as _lexical  # its caps, read when used (so tests may lower them)
from . import stores
from .checks import ARRAYS, WINDOW_ARRAYS, check_file, check_files
from .lexical import ANALYZER_VERSION, SAVED_ARRAYS, LexicalIndex
from .manifest import MANIFEST, MAX_MANIFEST_BYTES, Manifest, analyzer_languages, read_manifest, rebuild_hint
from .passage_file import PassageFile, table_problem
from .stores import VectorStore
from .stores.base import all_finite, load_npy, value_range
from .write import WINDOW_KEY_BYTES, Vectors, Windows, window_keys, write_index

if TYPE_CHECKING:
    from ..embed.embedding import Embedder

# What others import from here: the loader's own names, and the writer's and the checks'.
__all__ = ["ARRAYS", "LAZY", "MANIFEST", "IndexData", "Vectors", "Windows", "check_embedder",
           "check_files", "load_index", "read_manifest", "window_keys", "write_index"]

# Written by every build since they exist; an index without them is read the slow way (every
# passage parsed, BM25 rebuilt at load).
LAZY = ("passage_index", *SAVED_ARRAYS, "lexical_vocab")
# What each non-vector array may hold (bm25s's dtypes may change between its versions).
_ARRAY_KINDS = {"passage_index": ("i", 2), "lexical_data": ("f", 1), "lexical_indices": ("i", 1),
                "lexical_indptr": ("i", 1)}


@dataclass
class IndexData:
    """A loaded, checked index: what search needs, nothing more."""

    path: Path
    manifest: Manifest
    passages: Sequence[Passage]  # parsed on demand (passage_file.py), or a list (older indexes)
    vectors: Vectors  # .sentences is empty: the store holds them
    sentence_owner: np.ndarray  # sentence row -> passage number
    sentence_start: np.ndarray  # passage number -> its first sentence row
    store: VectorStore  # the sentence vectors, by row (stores/)
    lexical: LexicalIndex | None = None  # the saved BM25; None: built from the passages


def load_index(index_dir: Path | str) -> IndexData:
    """Read and cross-check every file against the manifest before FAISS sees any of them.

    A build may commit a new manifest and remove the files of the old one while this reads
    them: when a file is found missing and the manifest changed meanwhile, start again.
    """
    index_dir = Path(index_dir)
    for _ in range(5):
        before = _manifest_bytes(index_dir)
        try:
            return _load_index(index_dir)
        except IndexMismatchError:
            if before is None or _manifest_bytes(index_dir) == before:
                raise
    return _load_index(index_dir)


def _manifest_bytes(index_dir: Path) -> bytes | None:
    try:
        with open_regular(index_dir / MANIFEST) as fh:
            return fh.read(MAX_MANIFEST_BYTES)
    except OSError:
        return None


def _load_index(index_dir: Path) -> IndexData:
    manifest = read_manifest(index_dir)
    hint = rebuild_hint(index_dir, manifest)
    backend = stores.find(manifest.store)
    if backend is None:
        raise IndexMismatchError(f"index in {index_dir} keeps its vectors in an unknown store "
                                 f"{manifest.store_kind!r}: {hint}")
    roles = ("passages", *backend.files, *ARRAYS)
    missing = [role for role in roles if role not in manifest.files]
    if missing:
        raise IndexMismatchError(f"{index_dir / MANIFEST} lists no {missing[0]} file: {hint}")
    lazy = all(role in manifest.files for role in LAZY)
    saved_bm25 = lazy and manifest.analyzer_version == ANALYZER_VERSION
    vocab_bytes = manifest.files["lexical_vocab"].bytes if saved_bm25 else 0
    if vocab_bytes > _lexical.MAX_VOCABULARY_BYTES:  # before a byte of it is read, let alone parsed
        raise IndexMismatchError(
            f"index in {index_dir} has a BM25 vocabulary of {vocab_bytes:,} bytes, more than the "
            f"{_lexical.MAX_VOCABULARY_BYTES:,} an index may hold (lexical.MAX_VOCABULARY_BYTES): {hint}")
    optional = [role for role in backend.optional_files if role in manifest.files]
    if all(role in manifest.files for role in WINDOW_ARRAYS):
        optional += WINDOW_ARRAYS
    checked = {role: check_file(index_dir, role, manifest.files[role], hint)
               for role in (*roles, *(LAZY if lazy else ()), *optional)}
    lexical = None
    passages: Sequence[Passage]
    try:
        arrays = {role: load_npy(*checked[role]) for role in ARRAYS}
        windows = [load_npy(*checked[role], kind=kind) for role, kind in
                   zip(WINDOW_ARRAYS, (("f", 2), ("i", 1), ("u", 2)), strict=True) if role in checked]
        if lazy:
            passages = _passage_file(checked, manifest, hint)
            if saved_bm25:
                lexical = _saved_lexical(checked, manifest, len(passages))
        else:
            path, raw = checked["passages"]
            text = (raw if raw is not None else path.read_bytes()).decode("utf-8")
            passages = [Passage.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]
            del text
    except IndexMismatchError:  # already said, with the hint
        raise
    except Exception as exc:  # any parse failure of a hash-checked file means a broken build
        raise IndexMismatchError(f"index files in {index_dir} cannot be read ({exc}): {hint}") from None
    # The backend checks its own part against the manifest (a file's layout, a collection's rows
    # and metadata) and refuses with the hint.
    store = backend.open(manifest, checked, passages, hint)
    data = _assemble(index_dir, manifest, passages, arrays, store, hint)
    data.lexical = lexical
    if windows:
        data.vectors.windows = _windows(*windows, manifest=manifest, index_dir=index_dir, hint=hint)
    return data


def _windows(vectors: np.ndarray, docs: np.ndarray, keys: np.ndarray, *, manifest: Manifest,
             index_dir: Path, hint: str) -> Windows:
    """The documents' windows, once their arrays fit together and name documents the manifest
    lists, in order (the ranker reads a document's windows as one run of rows)."""
    n = len(docs)
    bounds = value_range(docs)
    # What a question reads is its candidates' documents' windows: no document may hold more
    # than the largest corpus file can make (two windows hold more than window_chars together).
    size = manifest.split.get("window_chars") if manifest.split else None
    most = 2 * _corpus.MAX_FILE_BYTES // size + 1 if isinstance(size, int) and size > 0 else 0
    counted = n and bounds is not None and bounds[0] >= 0  # negatives: refused below
    widest = int(np.bincount(np.asarray(docs, dtype=np.int64)).max()) if counted else 0
    problems = [
        (vectors.shape != (n, manifest.dimension), f"window vectors shaped {vectors.shape} for {n} windows"),
        (keys.shape != (n, WINDOW_KEY_BYTES), f"window keys shaped {keys.shape} for {n} windows"),
        (bounds is not None and not (bounds[0] >= 0 and bounds[1] < len(manifest.corpus.files)),
         f"windows of documents {bounds} for {len(manifest.corpus.files)} files"),
        (n > 1 and bool((np.diff(docs) < 0).any()), "windows out of document order"),
        (widest > most, f"a document of {widest} windows, more than a corpus file makes ({most})"),
        (not all_finite(vectors), "window vectors hold NaN or infinite values"),
    ]
    for bad, what in problems:
        if bad:
            raise IndexMismatchError(f"index in {index_dir} is inconsistent ({what}): {hint}")
    return Windows(vectors.astype(np.float32, copy=False), docs, keys)


def _saved_lexical(checked: dict[str, tuple[Path, bytes | None]], manifest: Manifest,
                   passages: int) -> LexicalIndex:
    """The BM25 saved at build time, once its arrays and vocabulary are what a load accepts."""
    saved = {role: load_npy(*checked[role], kind=_ARRAY_KINDS[role]) for role in SAVED_ARRAYS}
    stems = len(saved["lexical_indptr"]) - 1
    if stems > _lexical.MAX_VOCABULARY:  # the count, known before the words are parsed
        raise ValueError(f"a BM25 vocabulary of {stems:,} stems, more than the "
                         f"{_lexical.MAX_VOCABULARY:,} an index may hold")
    path, raw = checked["lexical_vocab"]
    vocabulary = json.loads(raw if raw is not None else path.read_bytes())
    if not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary):
        raise ValueError("the BM25 vocabulary is not a list of words")
    return LexicalIndex.from_saved(saved, vocabulary, passages, analyzer_languages(manifest.answer))


def _passage_file(checked: dict[str, tuple[Path, bytes | None]], manifest: Manifest,
                  hint: str) -> PassageFile:
    """The passages, to be parsed on demand, once their table fits the file and the manifest.
    Each passage parsed is checked against its table row (PassageFile); the first and last are
    parsed now, so that a broken file is refused at load."""
    path, raw = checked["passages"]
    table = load_npy(*checked["passage_index"], kind=_ARRAY_KINDS["passage_index"])
    problem = table_problem(np.asarray(table), manifest.files["passages"].bytes,
                            manifest.passage_count, manifest.sentence_count)
    if problem:
        raise ValueError(problem)
    passages = PassageFile(path, raw, np.asarray(table), hint)
    for i in {0, len(passages) - 1} if len(passages) else ():
        _ = passages[i]  # parsed, and checked against its table row
    return passages


def _assemble(index_dir: Path, manifest: Manifest, passages: Sequence[Passage],
              arrays: dict[str, np.ndarray], store: VectorStore, hint: str) -> IndexData:
    """Cross-check the parts' counts and shapes, then put them together."""
    n, dim = manifest.passage_count, manifest.dimension
    counts = (passages.sentence_counts() if isinstance(passages, PassageFile)
              else np.array([len(p.sentences) for p in passages], dtype=np.int64))
    n_sent = int(counts.sum())
    shapes = {"passage_vectors": (n, dim), "leave_one_out": (n_sent, dim)}
    store_rows = store.count()
    problems = [
        (len(passages) != n, f"{len(passages)} passages, manifest says {n}"),
        (store_rows != n_sent, f"{store_rows} sentence vectors for {n_sent} sentences"),
        (store.dimension != dim, f"vectors of dimension {store.dimension}, manifest says {dim}"),
        *((arrays[role].shape != shape, f"{role} shaped {arrays[role].shape}, expected {shape}")
          for role, shape in shapes.items()),
        (arrays["background"].ndim != 2 or arrays["background"].shape[1] != dim,
         f"background vectors shaped {arrays['background'].shape}"),
    ]
    for bad, what in problems:
        if bad:
            raise IndexMismatchError(f"index in {index_dir} is inconsistent ({what}): {hint}")
    # NaN or infinity in a vector makes every score it enters NaN: comparisons then say nothing
    # and the answer's JSON holds NaN. Checked chunk by chunk (stores/base.py): memory-mapped
    # arrays are read, never copied nor left resident.
    for role in ARRAYS:
        if not all_finite(arrays[role]):
            raise IndexMismatchError(f"index in {index_dir} is inconsistent ({role} holds NaN or "
                                     f"infinite values): {hint}")

    passage_vectors, leave_one_out, background = (arrays[r].astype(np.float32, copy=False) for r in ARRAYS)
    return IndexData(
        path=index_dir,
        manifest=manifest,
        passages=passages,
        vectors=Vectors(np.zeros((0, dim), np.float32), passage_vectors, leave_one_out, background),
        sentence_owner=np.repeat(np.arange(len(passages)), counts),
        sentence_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if len(passages) else np.zeros(0, np.int64),
        store=store,
    )


def check_embedder(data: IndexData, embedder: Embedder) -> None:
    """Refuse a model other than the one the index was built with (its dimension, then its
    weights' fingerprint), with the command that rebuilds or reinstalls."""
    hint = rebuild_hint(data.path, data.manifest)
    if embedder.dimension != data.manifest.dimension:
        raise IndexMismatchError(
            f"model {embedder.name!r} makes {embedder.dimension}-dimensional vectors, the "
            f"index in {data.path} holds {data.manifest.dimension}: {hint}"
        )
    if embedder.fingerprint() != data.manifest.model_fingerprint:
        from ..embed.model.source import BUNDLED_MODEL_NAME

        reinstall = ("reinstall the model with: ampere-qa model install"
                     if embedder.name == BUNDLED_MODEL_NAME else
                     "load the model the index was built with (--model)")
        raise IndexMismatchError(
            f"the index in {data.path} was built with other model weights than those of "
            f"{embedder.name!r} here: the index records {data.manifest.model_name!r} with weights "
            f"fingerprint {data.manifest.model_fingerprint!r}, the model here has "
            f"{embedder.fingerprint()!r}; {hint}, or, if the model's files changed, "
            f"{reinstall}"
        )
