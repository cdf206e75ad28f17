"""The query tokenizer: the same token ids as the model's ``tokenizer.json``, at a fraction of
its start-up cost.

``tokenizers`` builds a trie over all 250,002 Unigram pieces when it loads ``tokenizer.json``:
~1 s and ~260 MB, more than the rest of a cold ``ask`` together. A question needs a few dozen
lookups. So ``tokenizers`` keeps the steps that are easy to get subtly wrong (the normalisation
map over graphemes, collapsing spaces, Metaspace), loaded from the same pipeline without its
vocabulary, and the pieces go into a dict searched here, the way ``tokenizers``' Unigram
``encode_optimized`` does (same candidates in the same order, same float64 sums, the same tie
rule, unknown characters fused into one ``<unk>``). The special tokens are split out of the raw
text first, as ``tokenizers``' added vocabulary does (none of them is normalised; ``<mask>``
takes the white space on its left). Tests compare the ids with ``tokenizers`` itself on the
reference texts, the evaluation questions and generated text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

PIECES_FILE = "pieces.txt"
SCORES_FILE = "scores.npy"
PIPELINE_FILE = "pipeline.json"
# sentencepiece's and tokenizers' penalty below the lowest piece score for an unknown character.
UNK_PENALTY = 10.0
# Rust's char::is_whitespace (Unicode White_Space), which <mask>'s lstrip uses; Python's \s differs.
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def write_files(tokenizer_json: Path, out_dir: Path) -> None:
    """Split a Unigram ``tokenizer.json`` into the three files :class:`QueryTokenizer` reads."""
    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    model = spec["model"]
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        raise ValueError("only a Unigram tokenizer without byte fallback can be split")
    added = spec["added_tokens"]
    pieces = [p for p, _ in model["vocab"]]
    if any("\n" in p for p in pieces):
        raise ValueError("a piece holds a line break")
    (out_dir / PIECES_FILE).write_text("\n".join(pieces), encoding="utf-8")
    np.save(out_dir / SCORES_FILE, np.array([s for _, s in model["vocab"]], dtype=np.float64))
    # The pipeline without its vocabulary: only the unknown piece, so it loads in milliseconds.
    spec["model"] = {"type": "Unigram", "unk_id": 0, "vocab": [[pieces[model["unk_id"]], 0.0]],
                     "byte_fallback": False}
    spec["added_tokens"] = []
    keys = ("content", "id", "lstrip", "rstrip", "normalized", "single_word")
    spec["ampere_qa"] = {
        "unk_id": model["unk_id"],
        "min_score": min(s for _, s in model["vocab"]),
        "specials": [{k: t[k] for k in keys} for t in added],
    }
    (out_dir / PIPELINE_FILE).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


class QueryTokenizer:
    """Token ids and attention masks for a batch of texts, padded and truncated like the model's
    own tokenizer (``<s> … </s>``, at most ``max_length`` ids, padding with ``pad_id``)."""

    def __init__(self, folder: Path, max_length: int = 512, bos: int = 0, eos: int = 2,
                 pad_id: int = 1):
        from tokenizers import Tokenizer

        folder = Path(folder)
        spec = json.loads((folder / PIPELINE_FILE).read_text(encoding="utf-8"))
        extra = spec.pop("ampere_qa")
        pipeline = Tokenizer.from_str(json.dumps(spec))
        self._normalize = pipeline.normalizer.normalize_str if pipeline.normalizer else None
        self._pre_tokenize = pipeline.pre_tokenizer.pre_tokenize_str
        pieces = (folder / PIECES_FILE).read_text(encoding="utf-8").split("\n")
        self._scores: list[float] = np.load(folder / SCORES_FILE).tolist()
        if len(pieces) != len(self._scores):
            raise ValueError(f"{folder}: {len(pieces)} pieces but {len(self._scores)} scores")
        self._ids = dict(zip(pieces, range(len(pieces)), strict=True))  # a repeat keeps its last id
        self._longest = max(map(len, pieces))
        self._unk = int(extra["unk_id"])
        self._unk_score = float(extra["min_score"]) - UNK_PENALTY
        self._specials, self._split = _special_splitter(extra["specials"])
        self.max_length, self.bos, self.eos, self.pad_id = max_length, bos, eos, pad_id

    def ids(self, text: str) -> list[int]:
        """The ids of one text, with ``<s>`` and ``</s>``, truncated to ``max_length``."""
        out: list[int] = []
        for segment, special in self._segments(text):
            if special is not None:
                out.append(special)
                continue
            normalized = self._normalize(segment) if self._normalize else segment
            if not normalized:
                continue
            for word, _ in self._pre_tokenize(normalized):
                out.extend(self._viterbi(word))
        return [self.bos, *out[: self.max_length - 2], self.eos]

    def batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask`` (int64), padded to the longest text."""
        rows = [self.ids(t) for t in texts]
        width = max(map(len, rows))
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask

    def _segments(self, text: str) -> list[tuple[str, int | None]]:
        """The text split around special tokens written in it (``(text, None)`` or ``("", id)``)."""
        if self._split is None:
            return [(text, None)]
        out: list[tuple[str, int | None]] = []
        at = 0
        for m in self._split.finditer(text):
            if m.start() > at:
                out.append((text[at:m.start()], None))
            out.append(("", self._specials[str(m.lastgroup)]))
            at = m.end()
        if at < len(text):
            out.append((text[at:], None))
        return out

    def _viterbi(self, word: str) -> list[int]:
        """The best segmentation of one pre-tokenized word into pieces (tokenizers'
        ``Unigram::encode_optimized``): each position keeps the best path ending there; a later
        candidate replaces it only if strictly better; a character no single piece covers is
        ``<unk>`` at the lowest score minus 10, and neighbouring unknowns fuse into one."""
        n = len(word)
        score = [0.0] * (n + 1)
        start: list[int | None] = [None] * (n + 1)
        start[0] = 0
        ids, scores, longest = self._ids, self._scores, self._longest
        for i in range(n):
            here = score[i]
            single = False
            for end in range(i + 1, min(n, i + longest) + 1):
                pid = ids.get(word[i:end])
                if pid is None:
                    continue
                s = scores[pid] + here
                if start[end] is None or s > score[end]:
                    score[end], start[end] = s, i
                if end == i + 1:
                    single = True
            if not single:
                s = self._unk_score + here
                if start[i + 1] is None or s > score[i + 1]:
                    score[i + 1], start[i + 1] = s, i
        pieces: list[str] = []
        unknown: list[str] = []
        end = n
        while end > 0:
            begin = start[end]
            assert begin is not None
            piece = word[begin:end]
            # A span is <unk> when no piece spells it (fuse_unk): consecutive ones join.
            if piece not in ids:
                unknown.append(piece)
            else:
                if unknown:
                    pieces.append("".join(reversed(unknown)))
                    unknown = []
                pieces.append(piece)
            end = begin
        if unknown:
            pieces.append("".join(reversed(unknown)))
        return [ids.get(p, self._unk) for p in reversed(pieces)]


def _special_splitter(specials: list[dict[str, Any]]) -> tuple[dict[str, int], re.Pattern[str] | None]:
    """Special tokens as written in raw text, found left to right (none is a prefix of another
    in the models this reads, so leftmost-longest needs no tie rule)."""
    if not specials:
        return {}, None
    if any(t["normalized"] or t["rstrip"] or t["single_word"] for t in specials):
        raise ValueError("only non-normalised special tokens without rstrip or single_word are read")
    ordered = sorted(specials, key=lambda t: -len(t["content"]))
    alternatives = [
        (f"[{_WHITE_SPACE}]*" if t["lstrip"] else "") + f"(?P<t{i}>{re.escape(t['content'])})"
        for i, t in enumerate(ordered)
    ]
    return {f"t{i}": int(t["id"]) for i, t in enumerate(ordered)}, re.compile("|".join(alternatives))
