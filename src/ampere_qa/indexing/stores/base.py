"""The interfaces every vector store implements, and what a write reports back.

A store keeps the sentence vectors, the one part of an index that grows with the archive and
that every query scans. Callers name sentences by their *row*: the sentence's position when the
passages are read in order (passage by passage, sentence by sentence). How a backend keys its
rows (FAISS by position, Milvus by a content hash) stays inside the backend.

Two interfaces: :class:`VectorStore`, the opened store that search reads, and :class:`Backend`,
one kind of store and its whole life cycle (its command-line options, the manifest entry it
records, its files in the index folder, write, open, the tidying after a commit, how ``info``
and messages show it). ``stores.BACKENDS`` maps each kind's name to its class: callers ask the
backend object and never branch on the kind.
"""

from __future__ import annotations

import io
import mmap
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import numpy as np

from .faiss_format import LayoutError

if TYPE_CHECKING:
    from ...types import Passage
    from ..manifest import Manifest


class VectorStore(Protocol):
    """What search and build need from wherever the sentence vectors are kept."""

    kind: str

    @property
    def dimension(self) -> int: ...

    def count(self) -> int: ...

    def search(self, qv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (inner product) and rows of the ``k`` nearest vectors, best first (-1: none)."""
        ...

    def get(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows``, in that order."""
        ...

    def upsert(self, rows: np.ndarray, vectors: np.ndarray) -> None: ...

    def delete(self, rows: np.ndarray) -> None: ...

    def describe(self) -> dict[str, Any]:
        """What the store is, for ``info`` and logs (never a secret)."""
        ...


# A data file's content: its bytes, an array (saved as ``.npy``), or a function that writes it
# into a file-like ``sink`` given the paths of the data files written before it (so a big file
# goes to disk as it is produced, never whole in memory); what the function returns is handed
# back to the writer's caller.
FileContent = bytes | memoryview | np.ndarray | Callable[[Any, Mapping[str, Path]], object]


@dataclass
class Written:
    """What a backend's ``write`` did: data files for the index folder (by role), entries for
    the manifest, and the rows it really wrote (for the build report; rows removed are counted
    by ``after_commit``)."""

    files: dict[str, FileContent] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    upserted: int = 0
    deleted: int = 0


# The files a load hands a backend, by role: each one's path, and its bytes when it was small
# enough to be read and hashed whole (None: memory-map it).
CheckedFiles = Mapping[str, tuple[Path, bytes | None]]


@dataclass(frozen=True)
class Option:
    """A command-line option of a backend, described without click (cli/options.py makes it one), so
    that the CLI offers what the backends take and names none of them. With ``env``, it is an
    option of every command that opens an index and only sets that environment variable (a
    secret reaches the store there, never an argument, a manifest or a message); without, it is
    a ``build`` option, handed to :meth:`Backend.configure` under its :attr:`key`."""

    name: str
    help: str
    env: str | None = None

    @property
    def key(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


class Backend(ABC):
    """One kind of vector store, owning its whole life cycle. An instance stands for one
    manifest ``store`` entry (``config``; empty when the kind records none)."""

    kind: ClassVar[str]
    label: ClassVar[str]  # what it is, for --store's help ("a Milvus collection")
    # Data files it keeps in the index folder (role -> extension): ``files`` every index of this
    # kind has; ``optional_files`` builds write since they exist, an older index may lack them.
    files: ClassVar[Mapping[str, str]] = {}
    optional_files: ClassVar[Mapping[str, str]] = {}
    options: ClassVar[tuple[Option, ...]] = ()
    example: ClassVar[str] = ""  # ``ampere-qa build`` arguments that write here, for its help
    schema: ClassVar[Mapping[str, type]] = {}  # its manifest entry's fields, type-checked on read

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})

    @classmethod
    def implied(cls, given: Mapping[str, Any]) -> bool:
        """Whether a build given these options (of any backend) but no ``--store`` writes here
        rather than where the index it replaces is."""
        return False

    @classmethod
    @abstractmethod
    def configure(cls, given: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Self:
        """The backend a build writes to, from its own options that were given and the
        previous manifest's entry when it is of this kind (what a rebuild keeps by default);
        refuses (BadInputError) what cannot work before anything is read."""

    def check_writable(self) -> None:  # noqa: B027 - a hook: the index folder needs no check
        """Refuse, before a build reads or embeds anything, a store it may not write to."""

    @abstractmethod
    def write(self, passages: list[Passage], vectors: np.ndarray, meta: dict[str, Any],
              options: dict[str, Any]) -> Written:
        """Store this build's sentence vectors; ``meta`` ties them to the build (build_meta).
        ``options``: ``previous_store`` (the replaced manifest's entry), ``index_id``, and
        options of one backend (``faiss_kind``), which the others ignore."""

    @classmethod
    def after_commit(cls, new: Mapping[str, Any] | None, previous: Mapping[str, Any] | None,
                     index_id: str) -> int:
        """Once the manifest naming ``new`` (entries of any kind) is committed: drop what this
        kind kept for ``previous`` outside the index folder; returns the rows removed."""
        return 0

    @abstractmethod
    def open(self, manifest: Manifest, files: CheckedFiles, passages: Sequence[Passage],
             hint: str) -> VectorStore:
        """The store of a checked index, refused (with ``hint``) unless it is the manifest's."""

    def shown(self) -> dict[str, Any]:
        """The manifest entry as ``info --json`` shows it (no secret)."""
        return dict(self.config) or {"kind": self.kind}

    @abstractmethod
    def where(self) -> str:
        """Where the vectors are, for ``info``'s text (no secret)."""

    def rebuild_options(self) -> str:
        """What the rebuild command adds to write here again (no secret)."""
        return ""

    def report(self, details: Mapping[str, Any]) -> str:
        """What the build's summary line adds about the rows it wrote and removed."""
        return ""


def build_meta(model_fingerprint: str, corpus_fingerprint: str, passages_sha256: str,
               dimension: int, sentence_count: int) -> dict[str, Any]:
    """What ties a store's contents to one build; a store kept outside the index folder records
    it and is checked against the manifest on every load."""
    return {
        "model_fingerprint": model_fingerprint,
        "corpus_fingerprint": corpus_fingerprint,
        "passages_sha256": passages_sha256,
        "dimension": dimension,
        "sentence_count": sentence_count,
    }


def load_npy(path: Path, raw: bytes | None, kind: tuple[str, int] = ("f", 2)) -> np.ndarray:
    """A data file's array (``raw``: its bytes, when it was read whole; else memory-mapped) of
    the expected kind (a float32 matrix by default; else a dtype kind and a number of
    dimensions), its header checked against the file's size before any allocation."""
    fh: Any = io.BytesIO(raw) if raw is not None else path.open("rb")
    with fh:
        fmt = np.lib.format
        read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(
            fmt.read_magic(fh))
        if read_header is None:
            raise LayoutError(f"{path.name}: unknown .npy version")
        shape, fortran, dtype = read_header(fh)
        size = len(raw) if raw is not None else os.fstat(fh.fileno()).st_size
        wrong = dtype != np.float32 if kind == ("f", 2) else dtype.kind != kind[0] or dtype.hasobject
        if wrong or len(shape) != kind[1] or fortran or \
                fh.tell() + int(np.prod(shape)) * dtype.itemsize != size:
            raise LayoutError(f"{path.name}: {dtype} array shaped {shape} in {size} bytes")
    if raw is not None:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    return np.load(path, mmap_mode="r", allow_pickle=False)



# Elements an array is checked by at a time (16 MB of float32): a check of a memory-mapped array
# at a million passages never holds a copy of it, and the pages it read are handed back to the
# kernel after each chunk (they stay in the page cache, out of the process's resident memory).
CHECK_CHUNK = 1 << 22


def _release(chunk: np.ndarray) -> None:
    """Drop a memory-mapped chunk's pages from this process (read-only, file-backed mapping:
    nothing is lost, a later read maps them again from the page cache)."""
    mm = getattr(chunk, "_mmap", None)
    if not isinstance(mm, mmap.mmap) or not hasattr(mm, "madvise") or not chunk.nbytes:
        return
    try:
        base = np.frombuffer(mm, np.uint8).ctypes.data
        start = chunk.ctypes.data - base
        low = start // mmap.PAGESIZE * mmap.PAGESIZE
        mm.madvise(mmap.MADV_DONTNEED, low, start + chunk.nbytes - low)
    except (OSError, ValueError, AttributeError):  # only an optimisation
        pass


def chunks(a: np.ndarray, size: int | None = None) -> Iterator[np.ndarray]:
    """``a``'s elements in order, ``size`` (default ``CHECK_CHUNK``) at a time, without copying
    it (a view per chunk)."""
    size = size or CHECK_CHUNK
    flat = a.reshape(-1) if a.flags.c_contiguous else a
    if flat.ndim != 1:
        flat = np.ravel(flat)  # not contiguous and not 1-D: a copy, only for small arrays
    for i in range(0, len(flat), size):
        chunk = flat[i:i + size]
        yield chunk
        _release(chunk)


def all_finite(a: np.ndarray) -> bool:
    """No NaN and no infinity anywhere in ``a`` (checked chunk by chunk)."""
    return all(bool(np.isfinite(c).all()) for c in chunks(a))


def value_range(a: np.ndarray) -> tuple[int, int] | None:
    """The smallest and largest of ``a``'s integers (None: ``a`` is empty), chunk by chunk."""
    bounds: tuple[int, int] | None = None
    for c in chunks(a):
        lo, hi = int(c.min()), int(c.max())
        bounds = (lo, hi) if bounds is None else (min(bounds[0], lo), max(bounds[1], hi))
    return bounds


def first_decrease(a: np.ndarray, strict: bool = False) -> int | None:
    """The first position where the 1-D ``a`` goes down (``strict``: or stays level) from the
    element before; None when it never does. Chunk by chunk, each chunk's first element compared
    with the last of the one before."""
    at, last = 0, None
    for c in chunks(a):
        if last is not None and (c[0] <= last if strict else c[0] < last):
            return at
        down = c[1:] <= c[:-1] if strict else c[1:] < c[:-1]
        if down.any():
            return at + int(np.argmax(down)) + 1
        at, last = at + len(c), c[-1]
    return None
