"""The index on disk: passages, their vectors (sentences in FAISS), and the manifest.

Layout of an index folder::

    manifest.json                  what was built, from what, with which model; checked on load
    passages.<hash>.jsonl          one passage a line (text, locations, sentence spans)
    sentences.<hash>.faiss         FAISS inner-product index over every sentence's vector
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
or a file from another build, change the size or the ends). Big ``.npy`` arrays are memory-mapped.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .atomic import fsync_dir, write_atomic
from .errors import IndexMismatchError, IndexNotFoundError
from .passages import Passage

FORMAT_VERSION = 1
# Above this many sentence vectors, build writes an approximate (IVF) index instead of an exact one.
EXACT_MAX_VECTORS = 200_000
# Share of the inverted lists an IVF query visits (recall@10 0.96 at 1/16 on 10k real-shaped
# vectors, BENCHMARKS.md; still to be confirmed at 1M by the full benchmark run).
IVF_PROBE_SHARE = 1 / 16
# Files larger than this are verified by size and a hash of their ends, not hashed whole, on load.
FULL_HASH_MAX_BYTES = 64 * 2**20
SAMPLE_BYTES = 2**20
MANIFEST = "manifest.json"
REBUILD_HINT = "rebuild it with: ampere-qa build --corpus CORPUS_DIR --index {index}"
ARRAYS = ("passage_vectors", "leave_one_out", "background")
# Data files written by any version of write_index: superseded ones are removed after a commit.
_DATA_FILE = re.compile(r"^[a-z_]+\.[0-9a-f]{12}\.(?:jsonl|faiss|npy)$")
# Temporary files of a build killed mid-write (_write_atomic): removed by the next commit.
_TEMP_FILE = re.compile(r"^\.(?:[a-z_]+\.[0-9a-f]{12}\.(?:jsonl|faiss|npy)|manifest\.json)\..+\.tmp$")


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
    passages: list[Passage]
    sentence_index: Any  # faiss.IndexFlatIP (or IndexIVFFlat when large) over Vectors.sentences
    vectors: Vectors  # .sentences is empty: FAISS holds them
    sentence_owner: np.ndarray  # sentence row -> passage number
    sentence_start: np.ndarray  # passage number -> its first sentence row
    store: Any = None  # stores.VectorStore holding the sentence vectors (FaissStore by default)
    sentence_keys: np.ndarray | None = None  # store id of each sentence row, when not the row itself


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def _sample_sha256(data: bytes | memoryview, size: int) -> str:
    """Hash of a file's size, first and last ``SAMPLE_BYTES``: the cheap check for big files."""
    h = hashlib.sha256(str(size).encode())
    h.update(data[:SAMPLE_BYTES])
    h.update(data[max(0, size - SAMPLE_BYTES):])
    return h.hexdigest()


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 2*sqrt(n), a power of two (2,048 at a million)."""
    return 1 << max(4, round(np.log2(2 * np.sqrt(max(n, 1)))))


def make_faiss(vectors: np.ndarray, kind: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The sentence index for ``vectors`` and its manifest description.

    ``kind`` is ``IndexFlatIP`` (exact) or ``IndexIVFFlat``; by default exact up to
    ``EXACT_MAX_VECTORS`` vectors. IVF over inner product on normalised vectors: k-means
    centroids (trained on a sample of 64 points per list), ``nprobe`` lists visited per query.
    """
    import faiss

    n, dim = vectors.shape
    kind = kind or ("IndexFlatIP" if n <= EXACT_MAX_VECTORS else "IndexIVFFlat")
    index: Any
    if kind == "IndexFlatIP":
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index, {"faiss_index": kind}
    if kind != "IndexIVFFlat":
        raise ValueError(f"unknown FAISS index kind {kind!r}")
    nlist = min(ivf_lists(n), max(1, n // 39))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = vectors if n <= 64 * nlist else vectors[np.sort(rng.choice(n, 64 * nlist, replace=False))]
    index.cp.max_points_per_centroid = 64
    index.train(np.ascontiguousarray(sample))
    index.add(vectors)
    nprobe = max(8, round(nlist * IVF_PROBE_SHARE))
    index.nprobe = nprobe
    return index, {"faiss_index": kind, "faiss_params": {"nlist": nlist, "nprobe": nprobe}}


def serialize_faiss(vectors: np.ndarray, kind: str | None = None) -> bytes:
    import faiss

    return faiss.serialize_index(make_faiss(vectors, kind)[0]).tobytes()


def write_index(
    index_dir: Path,
    passages: list[Passage],
    vectors: Vectors,
    manifest: dict[str, Any],
    faiss_kind: str | None = None,
    store: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write data files, then commit them by replacing the manifest; remove superseded files.

    With ``store`` (``{"kind": "milvus", "uri": ..., "collection": ...}``) the sentence vectors
    go to that Milvus collection instead of a FAISS file: rows of new passages are upserted,
    rows of passages gone deleted, before the manifest is replaced. A build killed in between
    leaves a collection the old manifest no longer matches, which load refuses with the rebuild
    command. The result's ``"store_changes"`` (not written) counts rows upserted and deleted.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in passages)
    blobs: dict[str, tuple[str, Any]] = {  # bytes-like: bytes, numpy buffers, memoryviews
        "passages": ("jsonl", lines.encode()),
    }
    faiss_info: dict[str, Any] = {}
    if store is None:
        import faiss

        sentence_index, faiss_info = make_faiss(np.ascontiguousarray(vectors.sentences, np.float32),
                                                faiss_kind)
        blobs["sentences"] = ("faiss", faiss.serialize_index(sentence_index))
        del sentence_index
    for role in ARRAYS:
        npy = io.BytesIO()
        np.save(npy, np.ascontiguousarray(getattr(vectors, role), dtype=np.float32))
        blobs[role] = ("npy", npy.getbuffer())
    files: dict[str, dict[str, Any]] = {}
    for role, (ext, data) in blobs.items():
        view = memoryview(data).cast("B")
        digest = _sha256(view)
        name = f"{role}.{digest[:12]}.{ext}"
        files[role] = {"name": name, "sha256": digest, "bytes": len(view)}
        if len(view) > FULL_HASH_MAX_BYTES:
            files[role]["sample_sha256"] = _sample_sha256(view, len(view))
        if not _intact(index_dir, files[role]):  # same name, same content: a file can be kept
            write_atomic(index_dir / name, view)
    del blobs
    manifest = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **manifest,
        "passage_count": len(passages),
        "sentence_count": int(vectors.sentences.shape[0]),
        "dimension": int(vectors.sentences.shape[1]),
        "normalization": "l2",
        "metric": "inner_product",
        **faiss_info,
        **({"store": store} if store else {}),
        "files": files,
    }
    changes = (0, 0)
    if store is not None:
        from . import stores

        changes = stores.write_milvus(
            store, stores.sentence_keys(passages), vectors.sentences, manifest["model"]["fingerprint"],
            stores.collection_meta(manifest, files["passages"]["sha256"]))
    fsync_dir(index_dir)
    write_atomic(index_dir / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    fsync_dir(index_dir)
    keep = {f["name"] for f in files.values()}
    for old in index_dir.iterdir():
        superseded = _DATA_FILE.match(old.name) or _TEMP_FILE.match(old.name)
        if old.name not in keep and superseded and old.is_file():
            with contextlib.suppress(OSError):
                old.unlink()
    return {**manifest, "store_changes": {"upserted": changes[0], "deleted": changes[1]}}


def read_manifest(index_dir: Path) -> dict[str, Any]:
    hint = REBUILD_HINT.format(index=index_dir)
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(f"no index in {index_dir} (no {MANIFEST}): {hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"{path} is unreadable or corrupted ({exc}): {hint}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexMismatchError(
            f"{path} has format version {found!r}, this ampere-qa reads {FORMAT_VERSION}: {hint}"
        )
    for key in ("model", "files", "passage_count", "dimension", "corpus"):
        if key not in manifest:
            raise IndexMismatchError(f"{path} lacks {key!r}: {hint}")
    return manifest


def _check_file(index_dir: Path, entry: dict[str, Any], hint: str) -> tuple[Path, bytes | None]:
    """The file's path, and its bytes when it was small enough to read and hash whole.

    A big file is checked by its size and the hash of its ends (see the module docstring) and
    left for the caller to read or memory-map.
    """
    path = index_dir / str(entry.get("name", ""))
    mismatch = IndexMismatchError(f"index file {path} does not match its manifest (corrupted or "
                                  f"changed since the build): {hint}")
    try:
        size = path.stat().st_size
        if size > FULL_HASH_MAX_BYTES and "sample_sha256" in entry:
            if size != entry.get("bytes"):
                raise mismatch
            with path.open("rb") as fh:
                head = fh.read(SAMPLE_BYTES)
                fh.seek(max(0, size - SAMPLE_BYTES))
                tail = fh.read()
            h = hashlib.sha256(str(size).encode())
            h.update(head)
            h.update(tail)
            if h.hexdigest() != entry["sample_sha256"]:
                raise mismatch
            return path, None
        data = path.read_bytes()
    except OSError:
        raise IndexMismatchError(f"index file {path} is missing or unreadable: {hint}") from None
    if _sha256(data) != entry.get("sha256"):
        raise mismatch
    return path, data


def _intact(index_dir: Path, entry: dict[str, Any]) -> bool:
    try:
        _check_file(index_dir, entry, "")
    except IndexMismatchError:
        return False
    return True


def _open_faiss(path: Path, data: bytes | None, manifest: dict[str, Any]) -> Any:
    import faiss

    if data is not None:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    else:
        index = faiss.read_index(str(path))
    if manifest.get("faiss_index", "IndexFlatIP") == "IndexIVFFlat":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = int(manifest.get("faiss_params", {}).get("nprobe", ivf.nprobe))
        ivf.make_direct_map()  # search reconstructs the sentences of passages found by words
    elif not isinstance(index, faiss.IndexFlat):
        raise ValueError(f"unexpected FAISS index {type(index).__name__}")
    return index


def load_index(index_dir: Path | str) -> IndexData:
    """Read and cross-check every file against the manifest before FAISS sees any of them."""
    index_dir = Path(index_dir)
    hint = REBUILD_HINT.format(index=index_dir)
    manifest = read_manifest(index_dir)
    files = manifest["files"]
    kind = store_kind(manifest)
    if kind not in ("faiss", "milvus"):
        raise IndexMismatchError(f"index in {index_dir} keeps its vectors in an unknown store "
                                 f"{kind!r}: {hint}")
    if kind == "milvus":
        store = manifest["store"]
        hint = REBUILD_HINT.format(index=index_dir) + (f" --store milvus --uri {store.get('uri')} "
                                                       f"--collection {store.get('collection')}")
    roles = ("passages", "sentences", *ARRAYS) if kind == "faiss" else ("passages", *ARRAYS)
    if manifest.get("faiss_index", "IndexFlatIP") not in ("IndexFlatIP", "IndexIVFFlat"):
        raise IndexMismatchError(f"index in {index_dir} uses FAISS index "
                                 f"{manifest.get('faiss_index')!r}, unknown to this ampere-qa: {hint}")
    try:
        checked = {role: _check_file(index_dir, files[role], hint)
                   for role in roles}
    except (KeyError, TypeError, AttributeError):
        raise IndexMismatchError(f"{index_dir / MANIFEST} lists no valid data files: {hint}") from None

    try:
        path, raw = checked["passages"]
        text = (raw if raw is not None else path.read_bytes()).decode("utf-8")
        passages = [Passage.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]
        del text
        arrays = {
            role: np.load(io.BytesIO(raw), allow_pickle=False) if raw is not None
            else np.load(path, mmap_mode="r", allow_pickle=False)
            for role in ARRAYS for path, raw in (checked[role],)
        }
        sentence_index = _open_faiss(*checked["sentences"], manifest) if kind == "faiss" else None
    except Exception as exc:  # any parse failure of a hash-checked file means a broken build
        raise IndexMismatchError(f"index files in {index_dir} cannot be read ({exc}): {hint}") from None

    n, dim = manifest["passage_count"], manifest["dimension"]
    n_sent = sum(len(p.sentences) for p in passages)
    shapes = {"passage_vectors": (n, dim), "leave_one_out": (n_sent, dim)}
    if sentence_index is not None:
        from .stores import FaissStore

        store_rows, store_dim, keys = sentence_index.ntotal, sentence_index.d, None
        vector_store: Any = FaissStore(sentence_index)
    else:  # the collection is checked against the manifest's counts and fingerprints
        from .stores import open_milvus, sentence_keys

        vector_store = open_milvus(manifest, hint)
        store_rows, store_dim, keys = manifest["sentence_count"], dim, sentence_keys(passages)
    problems = [
        (len(passages) != n, f"{len(passages)} passages, manifest says {n}"),
        (store_rows != n_sent, f"{store_rows} sentence vectors for {n_sent} sentences"),
        (store_dim != dim, f"vectors of dimension {store_dim}, manifest says {dim}"),
        *((arrays[role].shape != shape, f"{role} shaped {arrays[role].shape}, expected {shape}")
          for role, shape in shapes.items()),
        (arrays["background"].ndim != 2 or arrays["background"].shape[1] != dim,
         f"background vectors shaped {arrays['background'].shape}"),
    ]
    for bad, what in problems:
        if bad:
            raise IndexMismatchError(f"index in {index_dir} is inconsistent ({what}): {hint}")

    counts = np.array([len(p.sentences) for p in passages], dtype=np.int64)
    empty = np.zeros((0, dim), np.float32)
    return IndexData(
        path=index_dir,
        manifest=manifest,
        passages=passages,
        sentence_index=sentence_index,
        vectors=Vectors(sentences=empty, **{r: a.astype(np.float32, copy=False) for r, a in arrays.items()}),
        sentence_owner=np.repeat(np.arange(len(passages)), counts),
        sentence_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if len(passages) else np.zeros(0, np.int64),
        store=vector_store,
        sentence_keys=keys,
    )


def store_kind(manifest: dict[str, Any]) -> str:
    """Where the index keeps its sentence vectors: ``faiss`` (no ``store`` entry) or ``milvus``."""
    store = manifest.get("store")
    return str(store.get("kind")) if isinstance(store, dict) else "faiss"
