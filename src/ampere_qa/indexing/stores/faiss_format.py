"""Checking a serialised FAISS index's layout before FAISS parses it.

FAISS trusts the sizes written in its files: a 20 KB file whose header claims a hundred million
vectors makes ``deserialize_index`` allocate gigabytes before failing. The manifest's hash only
proves that the file is the one the manifest names, and a manifest can be crafted too. So the
two layouts ampere-qa writes (``IndexFlatIP``, and ``IndexIVFFlat`` over a flat quantizer) are
walked here field by field, every count checked against the bytes that are really there and
against the manifest, and anything else is refused.
"""

from __future__ import annotations

import struct

import numpy as np

_HEADER = struct.Struct("<iqqq?i")  # d, ntotal, two unused fields, is_trained, metric type
_U64 = struct.Struct("<Q")
_METRIC_INNER_PRODUCT = 0


class LayoutError(ValueError):
    """The bytes are not an index of the expected shape."""


class _Reader:
    def __init__(self, data: bytes | memoryview):
        self.data = memoryview(data).cast("B")
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise LayoutError(f"truncated at byte {self.pos} (wants {n} more)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u64(self) -> int:
        return int(_U64.unpack(self.take(8))[0])

    def fourcc(self) -> bytes:
        return bytes(self.take(4))

    def header(self, dim: int) -> int:
        d, ntotal, _, _, _, metric = _HEADER.unpack(self.take(_HEADER.size))
        if d != dim or metric != _METRIC_INNER_PRODUCT or ntotal < 0:
            raise LayoutError(f"dimension {d}, metric {metric}, {ntotal} vectors")
        return int(ntotal)

    def array(self, item_bytes: int, expected: int | None = None) -> int:
        """A length-prefixed array; its length must fit in what is left (and match ``expected``)."""
        n = self.u64()
        if expected is not None and n != expected:
            raise LayoutError(f"array of {n} items, expected {expected}")
        self.take(n * item_bytes)
        return n


def _flat(r: _Reader, dim: int) -> int:
    if r.fourcc() != b"IxFI":
        raise LayoutError("not an inner-product flat index")
    ntotal = r.header(dim)
    r.array(4, ntotal * dim)  # the vectors, counted in floats
    return ntotal


def _ivf_flat(r: _Reader, dim: int, lists: list[tuple[int, int]] | None = None) -> int:
    ntotal = r.header(dim)
    nlist, _nprobe = r.u64(), r.u64()
    if _flat(r, dim) != nlist:  # the quantizer holds one centroid per list
        raise LayoutError("quantizer and list count disagree")
    r.take(1)  # direct map type: ampere-qa writes none (0), load builds it
    r.array(8)
    if r.fourcc() != b"ilar" or r.u64() != nlist or r.u64() != 4 * dim or r.fourcc() != b"full":
        raise LayoutError("unexpected inverted lists")
    start = r.pos + 8
    r.array(8, nlist)
    sizes = struct.unpack_from(f"<{nlist}Q", r.data, start)
    if sum(sizes) != ntotal:
        raise LayoutError("list sizes do not add up to the vector count")
    for n in sizes:
        if lists is not None:
            lists.append((r.pos, n))
        r.take(n * (4 * dim + 8))  # vectors, then their ids
    return ntotal


def check_layout(data: bytes | memoryview, dim: int, count: int,
                 lists: list[tuple[int, int]] | None = None) -> None:
    """Raise :class:`LayoutError` unless ``data`` is a flat or IVF-flat inner-product index of
    exactly ``count`` vectors of ``dim`` floats, with no byte missing or left over. For an IVF
    index, ``lists`` (when given) receives each inverted list's (byte offset of its vectors, rows)."""
    r = _Reader(data)
    if bytes(r.data[:4]) == b"IwFl":
        r.take(4)
        ntotal = _ivf_flat(r, dim, lists)
    else:
        ntotal = _flat(r, dim)
    if ntotal != count:
        raise LayoutError(f"{ntotal} vectors, the manifest says {count}")
    if r.pos != len(r.data):
        raise LayoutError(f"{len(r.data) - r.pos} unexpected bytes at the end")



def row_offsets(data: bytes | memoryview, dim: int) -> np.ndarray:
    """For an IVF-flat index's bytes: where each row's vector starts in them (by row id).

    Saved by the build beside the index, so that a load can read a row's vector without FAISS's
    direct map, whose construction reads every list's ids, i.e. the whole file.
    """
    r = _Reader(data)
    if r.fourcc() != b"IwFl":
        raise LayoutError("not an IVF index")
    lists: list[tuple[int, int]] = []
    ntotal = _ivf_flat(r, dim, lists)
    out = np.full(ntotal, -1, np.int64)
    for start, n in lists:
        ids = np.frombuffer(r.data, np.int64, n, start + n * 4 * dim)
        out[ids] = start + np.arange(n, dtype=np.int64) * 4 * dim
    if np.any(out < 0):
        raise LayoutError("row ids do not cover every row")
    return out
