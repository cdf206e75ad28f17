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
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import IndexMismatchError, IndexNotFoundError
from .passages import Passage

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REBUILD_HINT = "rebuild it with: ampere-qa build --corpus CORPUS_DIR --index {index}"
ARRAYS = ("passage_vectors", "leave_one_out", "background")
# Data files written by any version of write_index: superseded ones are removed after a commit.
_DATA_FILE = re.compile(r"^[a-z_]+\.[0-9a-f]{12}\.(?:jsonl|faiss|npy)$")


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
    sentence_index: Any  # faiss.IndexFlatIP over Vectors.sentences
    vectors: Vectors  # .sentences is empty: FAISS holds them
    sentence_owner: np.ndarray  # sentence row -> passage number
    sentence_start: np.ndarray  # passage number -> its first sentence row


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, fsync, then rename into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide the index from other users
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def serialize_faiss(vectors: np.ndarray) -> bytes:
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return faiss.serialize_index(index).tobytes()


def write_index(
    index_dir: Path, passages: list[Passage], vectors: Vectors, manifest: dict[str, Any]
) -> dict[str, Any]:
    """Write data files, then commit them by replacing the manifest; remove superseded files."""
    index_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in passages)
    blobs = {
        "passages": ("jsonl", lines.encode()),
        "sentences": ("faiss", serialize_faiss(np.ascontiguousarray(vectors.sentences, np.float32))),
    }
    for role in ARRAYS:
        npy = io.BytesIO()
        np.save(npy, np.ascontiguousarray(getattr(vectors, role), dtype=np.float32))
        blobs[role] = ("npy", npy.getvalue())
    files: dict[str, dict[str, Any]] = {}
    for role, (ext, data) in blobs.items():
        digest = _sha256(data)
        name = f"{role}.{digest[:12]}.{ext}"
        if not (index_dir / name).exists():
            _write_atomic(index_dir / name, data)
        files[role] = {"name": name, "sha256": digest, "bytes": len(data)}
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
        "faiss_index": "IndexFlatIP",
        "files": files,
    }
    _fsync_dir(index_dir)
    _write_atomic(index_dir / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    _fsync_dir(index_dir)
    keep = {f["name"] for f in files.values()}
    for old in index_dir.iterdir():
        if old.name not in keep and _DATA_FILE.match(old.name) and old.is_file():
            with contextlib.suppress(OSError):
                old.unlink()
    return manifest


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


def _read_checked(index_dir: Path, entry: dict[str, Any], hint: str) -> bytes:
    path = index_dir / str(entry.get("name", ""))
    try:
        data = path.read_bytes()
    except OSError:
        raise IndexMismatchError(f"index file {path} is missing or unreadable: {hint}") from None
    if _sha256(data) != entry.get("sha256"):
        raise IndexMismatchError(f"index file {path} does not match its manifest (corrupted or "
                                 f"changed since the build): {hint}")
    return data


def load_index(index_dir: Path | str) -> IndexData:
    """Read and cross-check every file against the manifest before FAISS sees any of them."""
    import faiss

    index_dir = Path(index_dir)
    hint = REBUILD_HINT.format(index=index_dir)
    manifest = read_manifest(index_dir)
    files = manifest["files"]
    try:
        raw = {role: _read_checked(index_dir, files[role], hint)
               for role in ("passages", "sentences", *ARRAYS)}
    except (KeyError, TypeError, AttributeError):
        raise IndexMismatchError(f"{index_dir / MANIFEST} lists no valid data files: {hint}") from None

    try:
        passages = [Passage.from_dict(json.loads(line))
                    for line in raw["passages"].decode("utf-8").splitlines() if line.strip()]
        arrays = {role: np.load(io.BytesIO(raw[role]), allow_pickle=False) for role in ARRAYS}
        sentence_index = faiss.deserialize_index(np.frombuffer(raw["sentences"], dtype=np.uint8))
    except Exception as exc:  # any parse failure of a hash-checked file means a broken build
        raise IndexMismatchError(f"index files in {index_dir} cannot be read ({exc}): {hint}") from None

    n, dim = manifest["passage_count"], manifest["dimension"]
    n_sent = sum(len(p.sentences) for p in passages)
    shapes = {"passage_vectors": (n, dim), "leave_one_out": (n_sent, dim)}
    problems = [
        (len(passages) != n, f"{len(passages)} passages, manifest says {n}"),
        (sentence_index.ntotal != n_sent, f"{sentence_index.ntotal} sentence vectors for {n_sent} sentences"),
        (sentence_index.d != dim, f"vectors of dimension {sentence_index.d}, manifest says {dim}"),
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
    )
