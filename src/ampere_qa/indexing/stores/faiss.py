"""The default vector store: a FAISS index file in the index folder (``sentences.<hash>.faiss``).

Scale (measured in BENCHMARKS.md): up to ``EXACT_MAX_VECTORS`` sentence vectors the index is exact
(``IndexFlatIP``); above, build writes an inverted-file index (``IndexIVFFlat``, its ``nprobe``
recorded in the manifest), which answers a query over a million vectors tens of times faster for
a recall@10 above 0.95. FAISS is rebuilt whole on every build from reused vectors (a flat index
of a few hundred thousand rows builds in well under a second), so ``upsert`` only appends and
``delete`` renumbers the rows after the removed ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from ...atomic import map_regular
from ...errors import IndexMismatchError
from ...types import Passage
from .base import Backend, CheckedFiles, FileContent, Written, chunks, load_npy
from .faiss_format import check_layout, row_offsets

if TYPE_CHECKING:
    from ..manifest import Manifest

# Above this many sentence vectors, build writes an approximate (IVF) index instead of an exact one.
EXACT_MAX_VECTORS = 200_000
# Share of the inverted lists an IVF query visits (recall@10 0.96 at 1/16 on 10k real-shaped
# vectors, BENCHMARKS.md; still to be confirmed at 1M by the full benchmark run).
IVF_PROBE_SHARE = 1 / 16


class FaissStore:
    """A FAISS index over the sentence vectors; its ids are the rows themselves.

    FAISS is rebuilt whole on every build from reused vectors (a flat index of a few hundred
    thousand rows takes well under a second, BENCHMARKS.md), so ``upsert`` only appends and
    ``delete`` renumbers the rows after the removed ones.
    """

    kind = "faiss"

    def __init__(self, index: Any, rows: tuple[Any, np.ndarray] | None = None, hint: str = ""):
        self.index = index
        # For a mapped IVF file: the file's bytes and where each row's vector starts in them.
        self._rows = rows
        self.hint = hint  # the rebuild command, for a refusal while answering

    def _broken(self, what: str) -> IndexMismatchError:
        """What a question finds wrong in the vectors it reads: the file's values are not
        checked whole at load (gigabytes at a million passages), what is read is, every time."""
        return IndexMismatchError(f"the index's FAISS file {what}" + (f": {self.hint}" if self.hint else ""))

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def count(self) -> int:
        return int(self.index.ntotal)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "index": type(self.index).__name__, "vectors": self.count()}

    def upsert(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        n = self.count()
        if not np.array_equal(np.asarray(rows), np.arange(n, n + len(rows))):
            raise ValueError("FAISS rows are positions: only appending rows is supported, rebuild instead")
        self.index.add(np.ascontiguousarray(vectors, np.float32))

    def delete(self, rows: np.ndarray) -> None:
        self.index.remove_ids(np.asarray(rows, np.int64))

    def search(self, qv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims, rows = self.index.search(qv.reshape(1, -1), k)
        sims, rows = sims[0], rows[0]
        found = rows >= 0
        if np.any(rows[found] >= self.count()):  # an IVF list's ids are read from the file
            raise self._broken(f"returns row {int(rows.max())} of {self.count()}")
        if not np.isfinite(sims[found]).all():
            raise self._broken("holds NaN or infinite vectors")
        return sims, rows

    def get(self, ids: np.ndarray) -> np.ndarray:
        out = self._get(np.asarray(ids, np.int64))
        if not np.isfinite(out).all():
            raise self._broken("holds NaN or infinite vectors")
        return out

    def _get(self, ids: np.ndarray) -> np.ndarray:
        if self._rows is not None:
            data, offsets = self._rows
            dim = self.index.d
            out = np.zeros((len(ids), dim), np.float32)
            for j, i in enumerate(ids):
                out[j] = np.frombuffer(data, np.float32, dim, int(offsets[i]))
            return out
        if len(ids) and ids[-1] - ids[0] + 1 == len(ids) and np.all(np.diff(ids) == 1):
            return self.index.reconstruct_n(int(ids[0]), len(ids))
        return np.stack([self.index.reconstruct(int(i)) for i in ids]) if len(ids) else \
            np.zeros((0, self.index.d), np.float32)


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


class FaissBackend(Backend):
    """The default store: its index is a data file of the folder, so a build replaces it with
    the folder's other files and the manifest records no ``store`` entry."""

    kind = "faiss"
    label = "FAISS files in the index folder"
    files: ClassVar[Mapping[str, str]] = {"sentences": "faiss"}
    # An IVF index's row offsets (faiss_format.row_offsets): a big IVF file is then memory-mapped
    # and read row by row, never whole. Flat files need none (a row's place is its number).
    optional_files: ClassVar[Mapping[str, str]] = {"sentence_offsets": "npy"}

    @classmethod
    def configure(cls, given: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Self:
        """Nothing to configure: the index folder is the build's own."""
        return cls()

    def write(self, passages: list[Passage], vectors: np.ndarray, meta: dict[str, Any],
              options: dict[str, Any]) -> Written:
        """The index, written into the ``sentences`` data file when its turn comes (and for
        IVF, its row offsets, walked in that file once written).

        ``options["faiss_kind"]`` forces ``IndexFlatIP`` or ``IndexIVFFlat`` (default: by size).
        """
        import faiss

        index, info = make_faiss(np.ascontiguousarray(vectors, np.float32), options.get("faiss_kind"))
        dim = int(vectors.shape[1])

        def save(sink: Any, written: Mapping[str, Path]) -> None:  # streamed: no serialised copy
            faiss.write_index(index, faiss.PyCallbackIOWriter(sink.write))  # type: ignore[attr-defined]

        def offsets(sink: Any, written: Mapping[str, Path]) -> None:  # walked in the written file
            np.save(sink, row_offsets(memoryview(map_regular(written["sentences"])), dim))

        files: dict[str, FileContent] = {"sentences": save}
        if info["faiss_index"] == "IndexIVFFlat":
            files["sentence_offsets"] = offsets
        return Written(files=files, manifest=info)

    def open(self, manifest: Manifest, files: CheckedFiles, passages: Sequence[Passage],
             hint: str) -> FaissStore:
        """The store of a checked index; the file's layout is walked before FAISS parses it."""
        kind = manifest.faiss_index
        if kind not in ("IndexFlatIP", "IndexIVFFlat"):
            raise IndexMismatchError(
                f"the index uses FAISS index {kind!r}, unknown to this ampere-qa: {hint}")
        path, data = files["sentences"]
        try:
            if data is None and kind == "IndexIVFFlat" and "sentence_offsets" in files:
                store = _mapped_ivf(path, files["sentence_offsets"], manifest)
            else:
                store = FaissStore(_read(path, data, manifest))
        except Exception as exc:  # a hash-checked file FAISS cannot read means a broken build
            raise IndexMismatchError(f"index file {path} cannot be read ({exc}): {hint}") from None
        store.hint = hint
        return store

    def where(self) -> str:
        return self.label


def offsets_problem(offsets: np.ndarray, lists: list[tuple[int, int]], dim: int) -> str | None:
    """What makes ``offsets`` (row -> byte offset of its vector, faiss_format.row_offsets) unfit
    for an IVF file whose inverted lists are ``lists``, or None: each must be the start of a
    vector inside a list, and no two the same (so that each row reads a vector of its own, not
    a list's ids or another row's). Checked chunk by chunk, without reading the FAISS file."""
    row = 4 * dim
    lists = [(start, n) for start, n in lists if n]
    starts = np.array([start for start, _ in lists], np.int64)
    sizes = np.array([n for _, n in lists], np.int64)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)  # a list's first slot
    if offsets.dtype != np.int64 or offsets.shape != (int(sizes.sum()),):
        return f"{offsets.dtype} row offsets shaped {offsets.shape} for {int(sizes.sum())} rows"
    seen = np.zeros(len(offsets), bool)
    for c in chunks(offsets):
        j = np.searchsorted(starts, c, side="right") - 1
        if np.any(j < 0):
            return "a row offset points before the inverted lists"
        k, rest = np.divmod(c - starts[j], row)
        if np.any(rest != 0) or np.any(k >= sizes[j]):
            return "a row offset is not the start of a vector in an inverted list"
        seen[first[j] + k] = True
    if not seen.all():  # as many offsets as vectors: one left unseen means two are the same
        return "two rows have the same offset"
    return None


def _mapped_ivf(path: Path, offsets_file: tuple[Path, bytes | None], manifest: Manifest) -> FaissStore:
    """A big IVF file, memory-mapped: FAISS searches it, rows are read at their saved offsets,
    each checked to be a vector's place in the file (offsets_problem)."""
    offsets_path, raw = offsets_file
    offsets = load_npy(offsets_path, raw, kind=("i", 1))
    dim, n = manifest.dimension, manifest.sentence_count
    if offsets.dtype != np.int64 or offsets.shape != (n,):
        raise ValueError("the row offsets do not fit the index file")
    lists: list[tuple[int, int]] = []
    index = _read(path, None, manifest, direct_map=False, lists=lists)
    problem = offsets_problem(offsets, lists, dim)
    if problem:
        raise ValueError(f"the row offsets do not fit the index file ({problem})")
    return FaissStore(index, rows=(map_regular(path), offsets))


def _read(path: Path, data: bytes | None, manifest: Manifest, direct_map: bool = True,
          lists: list[tuple[int, int]] | None = None) -> Any:
    """FAISS's own reader, once the layout has been walked (faiss_format.py): a crafted header
    must not make FAISS allocate gigabytes before it notices the file is short."""
    import faiss

    view = memoryview(data) if data is not None else np.memmap(path, np.uint8, "r").data
    check_layout(view, manifest.dimension, manifest.sentence_count, lists)
    if data is not None:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    else:  # mapped: pages are read as searches touch them, not all at load (each kind has its
        # own flag; together they fail on an IVF file)
        flag = faiss.IO_FLAG_MMAP if manifest.faiss_index == "IndexIVFFlat" else faiss.IO_FLAG_MMAP_IFC
        index = faiss.read_index(str(path), flag)
    if manifest.faiss_index == "IndexIVFFlat":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = int(manifest.nprobe if manifest.nprobe is not None else ivf.nprobe)
        if direct_map:  # search reconstructs the sentences of passages found by words
            ivf.make_direct_map()
    elif not isinstance(index, faiss.IndexFlat):
        raise ValueError(f"unexpected FAISS index {type(index).__name__}")
    return index
