"""The passages of an index, read lazily: one JSON line parsed when a passage is asked for.

The passages file (``passages.<hash>.jsonl``) stays the format it always was. Beside it,
``passage_index.<hash>.npy`` holds one int64 row per passage: the byte offset of its line and
the row of its first sentence, plus a last row holding the file's size and the sentence count.
Loading then reads that table and nothing proportional to the archive: at a million passages,
parsing every line took longer than the rest of the load together. A big passages file is
memory-mapped; the few passages a question touches are parsed and kept in a small cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..atomic import map_regular
from ..errors import IndexMismatchError
from ..types import Passage
from .stores.base import first_decrease

# Passages kept parsed: the ones recent questions touched (a question touches a few dozen).
CACHE = 4096


def encode(passages: Sequence[Passage], sink: Any) -> np.ndarray:
    """Write the passages file into ``sink`` (anything with ``write``), one line at a time, and
    return its table (see the module docstring)."""
    table = np.zeros((len(passages) + 1, 2), np.int64)
    offset = rows = 0
    for i, p in enumerate(passages, start=1):
        offset += sink.write((json.dumps(p.to_dict(), ensure_ascii=False) + "\n").encode())
        rows += len(p.sentences)
        table[i] = offset, rows
    return table


def table_problem(table: np.ndarray, size: int, passages: int, sentences: int) -> str | None:
    """What makes ``table`` unfit for a passages file of ``size`` bytes, or None."""
    if table.dtype != np.int64 or table.shape != (passages + 1, 2):
        return f"passage table {table.dtype} {table.shape}, expected int64 ({passages + 1}, 2)"
    offsets, starts = table[:, 0], table[:, 1]  # checked chunk by chunk: the table may be mapped
    if offsets[0] != 0 or offsets[-1] != size or first_decrease(offsets, strict=True) is not None:
        return "passage offsets do not cut the passages file into lines"
    if starts[0] != 0 or starts[-1] != sentences or first_decrease(starts) is not None:
        return f"sentence rows do not add up to {sentences} sentences"
    return None


class PassageFile(Sequence[Passage]):
    """The passages of an index, parsed on demand from their (checked) file and table.

    A passage is refused (:class:`IndexMismatchError`, ending with ``hint``, the rebuild
    command) when its line does not parse or holds another number of sentences than its table
    row says: the table numbers every sentence row of the index, so a passage that disagrees
    with it would send a question to another passage's vectors, or past the last one.
    """

    def __init__(self, path: Path, raw: bytes | None, table: np.ndarray, hint: str = ""):
        self.path = path
        self.table = table
        self.hint = hint
        if raw is None:  # big: mapped, so only the pages of the lines read are ever loaded
            self._data: Any = map_regular(path)
        else:
            self._data = raw
        self._parse = lru_cache(maxsize=CACHE)(self._read)

    def _read(self, i: int) -> Passage:
        a, b = int(self.table[i, 0]), int(self.table[i + 1, 0])
        try:
            passage = Passage.from_dict(json.loads(bytes(self._data[a:b])))
        except Exception as exc:  # a hash-checked file that does not parse: a broken build
            problem = f"cannot be read ({exc})"
        else:
            rows = int(self.table[i + 1, 1] - self.table[i, 1])
            if len(passage.sentences) == rows:
                return passage
            problem = f"has {len(passage.sentences)} sentences, its table row says {rows}"
        raise IndexMismatchError(f"passage {i} of {self.path} {problem}"
                                 + (f": {self.hint}" if self.hint else ""))

    def __len__(self) -> int:
        return len(self.table) - 1

    @overload
    def __getitem__(self, i: int) -> Passage: ...

    @overload
    def __getitem__(self, i: slice) -> list[Passage]: ...

    def __getitem__(self, i: int | slice) -> Passage | list[Passage]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        return self._parse(int(i) % n)

    def __iter__(self) -> Iterator[Passage]:
        for i in range(len(self)):  # in order, without filling the cache with every passage
            yield self._read(i)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def sentence_counts(self) -> np.ndarray:
        return np.diff(self.table[:, 1])
