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

All vectors are float32 and L2-normalised, so inner product is cosine similarity. Data files
carry their content hash in their name and the manifest names them, so replacing
``manifest.json`` (one atomic rename) is the single moment a new build becomes visible: a build
killed at any point before leaves the previous index whole and loadable.

Scale (measured in BENCHMARKS.md): up to ``EXACT_MAX_VECTORS`` sentence vectors the FAISS index
is exact (``IndexFlatIP``); above, build writes an inverted-file index (``IndexIVFFlat``, its
``nprobe`` recorded in the manifest), which answers a query over a million vectors tens of times
faster for a recall@10 above 0.95. Files up to ``FULL_HASH_MAX_BYTES`` are hashed whole on every
load; larger ones are checked by size and by a hash of their first and last blocks (hashing
gigabytes would add seconds to every start, and the failures seen in practice, a truncated copy
or a file from another build, change the size or the ends). Big files are memory-mapped (arrays,
the FAISS index, the passages), and passages are parsed when asked for (passage_file.py), so a
load parses nothing in proportion to the archive but the BM25 vocabulary (capped:
lexical.MAX_VOCABULARY).

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

import hashlib
import json
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..atomic import NotRegularFile, fsync_dir, open_regular, temp_file, write_atomic
from ..errors import BadInputError, IndexMismatchError
from ..settings import DEFAULT_LANGUAGES
from ..types import Passage
from ..version import __version__
from . import folder, stores
from . import lexical as _lexical  # its caps, read when used (so tests may lower them)
from .lexical import ANALYZER_VERSION, SAVED_ARRAYS, LexicalIndex
from .manifest import (
    FORMAT_VERSION,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    file_names,
    read_manifest,
    rebuild_hint,
)
from .passage_file import PassageFile, encode, table_problem
from .stores import Backend, VectorStore
from .stores.base import FileContent, all_finite, build_meta, load_npy

# Files larger than this are verified by size and a hash of their ends, not hashed whole, on load.
FULL_HASH_MAX_BYTES = 64 * 2**20
SAMPLE_BYTES = 2**20
ARRAYS = ("passage_vectors", "leave_one_out", "background")
# Written by every build since they exist; an index without them is read the slow way (every
# passage parsed, BM25 rebuilt at load).
LAZY = ("passage_index", *SAVED_ARRAYS, "lexical_vocab")
# Extension of each data file; a manifest may name only ``{role}.{12 hex digits}.{ext}``.
# The stores' own files are theirs to name (_extension asks the backends).
EXTENSIONS = {"passages": "jsonl", "lexical_vocab": "json",
              **{role: "npy" for role in (*ARRAYS, "passage_index", *SAVED_ARRAYS)}}
# What each non-vector array may hold (bm25s's dtypes may change between its versions).
_ARRAY_KINDS = {"passage_index": ("i", 2), "lexical_data": ("f", 1), "lexical_indices": ("i", 1),
                "lexical_indptr": ("i", 1)}


@dataclass
class Vectors:
    """What build embeds, row-aligned with the passages and, passage by passage, their sentences."""

    sentences: np.ndarray
    passage_vectors: np.ndarray
    leave_one_out: np.ndarray
    background: np.ndarray


@dataclass
class IndexData:
    """A loaded, checked index: what search needs, nothing more."""

    path: Path
    manifest: dict[str, Any]
    passages: Sequence[Passage]  # parsed on demand (passage_file.py), or a list (older indexes)
    vectors: Vectors  # .sentences is empty: the store holds them
    sentence_owner: np.ndarray  # sentence row -> passage number
    sentence_start: np.ndarray  # passage number -> its first sentence row
    store: VectorStore  # the sentence vectors, by row (stores/)
    lexical: LexicalIndex | None = None  # the saved BM25; None: built from the passages


def _extension(role: str) -> str | None:
    """The extension of ``role``'s data file: this module's, or a backend's (Backend.files)."""
    return EXTENSIONS.get(role) or stores.extensions().get(role)


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _ends_sha256(size: int, head: bytes | memoryview, tail: bytes | memoryview) -> str:
    """Hash of a file's size, first and last ``SAMPLE_BYTES``: the cheap check for big files."""
    h = hashlib.sha256(str(size).encode())
    h.update(head)
    h.update(tail)
    return h.hexdigest()


def analyzer_languages(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The languages whose stemmer and stop words the index's BM25 uses (its answer settings)."""
    answer = manifest.get("answer")
    languages = answer.get("languages") if isinstance(answer, dict) else None
    return tuple(languages) if isinstance(languages, list) and languages else DEFAULT_LANGUAGES


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
            entry = _file_entry(role, sink, tmp)
            path = self.index_dir / entry["name"]
            if _intact(self.index_dir, entry):  # same name, same content: kept as it is
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


def _file_entry(role: str, sink: _HashingFile, tmp: str) -> dict[str, Any]:
    digest = sink.sha.hexdigest()
    entry: dict[str, Any] = {"name": f"{role}.{digest[:12]}.{_extension(role)}", "sha256": digest,
                             "bytes": sink.size}
    if sink.size > FULL_HASH_MAX_BYTES:
        with open(tmp, "rb") as fh:
            head = fh.read(SAMPLE_BYTES)
            fh.seek(sink.size - SAMPLE_BYTES)
            entry["sample_sha256"] = _ends_sha256(sink.size, head, fh.read(SAMPLE_BYTES))
    return entry


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
    head = {
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
    index_id = str(index_dir.resolve())
    # Before any file is written: a vocabulary over the cap refuses the build, leaving no trace.
    lexical_files = _lexical_files(passages, analyzer_languages(manifest))
    data = _DataFiles(index_dir, previous)
    try:  # in the order the kill tests name: passages, sentences, passage_vectors, ...
        table = data.write("passages", lambda sink, _: encode(passages, sink))
        # The store's rows are tied to this build by the passages file's hash (build_meta).
        meta = build_meta(head, data.entries["passages"]["sha256"])
        backend = store or stores.backend(stores.DEFAULT)()
        written = backend.write(passages, vectors.sentences, meta,
                                {**(options or {}), "previous_store": previous_store, "index_id": index_id})
        for role in list(written.files):
            data.write(role, written.files.pop(role))  # popped: FAISS's index goes once written
        for role in ARRAYS:
            data.write(role, np.asarray(getattr(vectors, role), dtype=np.float32))
        for role, content in {"passage_index": table, **lexical_files}.items():
            data.write(role, content)
        del lexical_files
    except BaseException:
        data.undo()
        raise
    files = data.entries
    manifest = {**head, **written.manifest, "files": files}
    fsync_dir(index_dir)
    write_atomic(index_dir / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(),
                 prefix=folder.TEMP_PREFIX)
    fsync_dir(index_dir)
    folder.finish(index_dir, keep=file_names(manifest))
    removed = stores.after_commit(manifest.get("store"), previous_store, index_id)
    return {**manifest, "store_changes": {"upserted": written.upserted, "deleted": removed}}


def _data_path(index_dir: Path, role: str, entry: dict[str, Any], hint: str) -> Path:
    """Where the manifest's file for ``role`` is, refused unless it is a plain data-file name
    of that role (no folder, no link out): a manifest must not make ampere-qa read ``/dev/zero``
    or a file outside the index folder."""
    name = entry.get("name")
    ok = (isinstance(name, str) and folder.DATA_FILE.match(name) and name.startswith(f"{role}.")
          and name.endswith(f".{_extension(role)}"))
    path = index_dir / str(name)
    if ok and path.is_symlink():
        ok = path.resolve().parent == index_dir.resolve()
    if not ok:
        raise IndexMismatchError(f"{index_dir / MANIFEST} names {name!r} for its {role} file, "
                                 f"not a data file of this index folder: {hint}")
    return path


def _check_file(index_dir: Path, role: str, entry: dict[str, Any], hint: str) -> tuple[Path, bytes | None]:
    """The file's path, and its bytes when it was small enough to read and hash whole.

    Its name and size are checked before a byte is read. A big file is checked by its size and
    the hash of its ends (see the module docstring) and left for the caller to memory-map.
    """
    path = _data_path(index_dir, role, entry, hint)
    mismatch = IndexMismatchError(f"index file {path} does not match its manifest (corrupted or "
                                  f"changed since the build): {hint}")
    try:
        with open_regular(path) as fh:
            st = os.fstat(fh.fileno())
            if st.st_size != entry["bytes"]:
                raise mismatch
            if st.st_size > FULL_HASH_MAX_BYTES and "sample_sha256" in entry:
                head = fh.read(SAMPLE_BYTES)
                fh.seek(st.st_size - SAMPLE_BYTES)
                if _ends_sha256(st.st_size, head, fh.read()) != entry["sample_sha256"]:
                    raise mismatch
                return path, None
            data = fh.read(st.st_size + 1)
    except NotRegularFile:
        raise mismatch from None
    except OSError:
        raise IndexMismatchError(f"index file {path} is missing or unreadable: {hint}") from None
    if _sha256(data) != entry.get("sha256"):
        raise mismatch
    return path, data


def _intact(index_dir: Path, entry: dict[str, Any]) -> bool:
    role = str(entry["name"]).split(".", 1)[0]
    try:
        _check_file(index_dir, role, entry, "")
    except IndexMismatchError:
        return False
    return True


def check_files(index_dir: Path, manifest: dict[str, Any]) -> None:
    """Every data file the manifest names is there, a plain file of the recorded size (cheap:
    no hashing). ``info`` uses it; loading checks the hashes as well."""
    hint = rebuild_hint(index_dir, manifest)
    for role, entry in manifest["files"].items():
        path = _data_path(index_dir, role, entry, hint)
        try:
            st = path.stat()
        except OSError:
            raise IndexMismatchError(f"index file {path} is missing or unreadable: {hint}") from None
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry["bytes"]:
            raise IndexMismatchError(f"index file {path} does not match its manifest (size "
                                     f"{st.st_size}, manifest says {entry['bytes']}): {hint}")


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
    backend = stores.find(manifest.get("store"))
    if backend is None:
        raise IndexMismatchError(f"index in {index_dir} keeps its vectors in an unknown store "
                                 f"{stores.kind_of(manifest.get('store'))!r}: {hint}")
    roles = ("passages", *backend.files, *ARRAYS)
    missing = [role for role in roles if role not in manifest["files"]]
    if missing:
        raise IndexMismatchError(f"{index_dir / MANIFEST} lists no {missing[0]} file: {hint}")
    lazy = all(role in manifest["files"] for role in LAZY)
    saved_bm25 = lazy and manifest.get("lexical", {}).get("analyzer_version") == ANALYZER_VERSION
    vocab_bytes = manifest["files"]["lexical_vocab"]["bytes"] if saved_bm25 else 0
    if vocab_bytes > _lexical.MAX_VOCABULARY_BYTES:  # before a byte of it is read, let alone parsed
        raise IndexMismatchError(
            f"index in {index_dir} has a BM25 vocabulary of {vocab_bytes:,} bytes, more than the "
            f"{_lexical.MAX_VOCABULARY_BYTES:,} an index may hold (lexical.MAX_VOCABULARY_BYTES): {hint}")
    optional = [role for role in backend.optional_files if role in manifest["files"]]
    checked = {role: _check_file(index_dir, role, manifest["files"][role], hint)
               for role in (*roles, *(LAZY if lazy else ()), *optional)}
    lexical = None
    passages: Sequence[Passage]
    try:
        arrays = {role: load_npy(*checked[role]) for role in ARRAYS}
        if lazy:
            passages = _passage_file(checked, manifest, hint)
            if saved_bm25:
                saved = {role: load_npy(*checked[role], kind=_ARRAY_KINDS[role]) for role in SAVED_ARRAYS}
                stems = len(saved["lexical_indptr"]) - 1
                if stems > _lexical.MAX_VOCABULARY:  # the count, known before the words are parsed
                    raise ValueError(f"a BM25 vocabulary of {stems:,} stems, more than the "
                                     f"{_lexical.MAX_VOCABULARY:,} an index may hold")
                path, raw = checked["lexical_vocab"]
                vocabulary = json.loads(raw if raw is not None else path.read_bytes())
                if not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary):
                    raise ValueError("the BM25 vocabulary is not a list of words")
                lexical = LexicalIndex.from_saved(saved, vocabulary, len(passages),
                                                  analyzer_languages(manifest))
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
    return data


def _passage_file(checked: dict[str, tuple[Path, bytes | None]], manifest: dict[str, Any],
                  hint: str) -> PassageFile:
    """The passages, to be parsed on demand, once their table fits the file and the manifest.
    Each passage parsed is checked against its table row (PassageFile); the first and last are
    parsed now, so that a broken file is refused at load."""
    path, raw = checked["passages"]
    table = load_npy(*checked["passage_index"], kind=_ARRAY_KINDS["passage_index"])
    problem = table_problem(np.asarray(table), manifest["files"]["passages"]["bytes"],
                            manifest["passage_count"], manifest["sentence_count"])
    if problem:
        raise ValueError(problem)
    passages = PassageFile(path, raw, np.asarray(table), hint)
    for i in {0, len(passages) - 1} if len(passages) else ():
        _ = passages[i]  # parsed, and checked against its table row
    return passages


def _assemble(index_dir: Path, manifest: dict[str, Any], passages: Sequence[Passage],
              arrays: dict[str, np.ndarray], store: VectorStore, hint: str) -> IndexData:
    """Cross-check the parts' counts and shapes, then put them together."""
    n, dim = manifest["passage_count"], manifest["dimension"]
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

    return IndexData(
        path=index_dir,
        manifest=manifest,
        passages=passages,
        vectors=Vectors(sentences=np.zeros((0, dim), np.float32),
                        **{r: a.astype(np.float32, copy=False) for r, a in arrays.items()}),
        sentence_owner=np.repeat(np.arange(len(passages)), counts),
        sentence_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if len(passages) else np.zeros(0, np.int64),
        store=store,
    )


