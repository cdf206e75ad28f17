"""Word matching: BM25 (bm25s) over passages, stemmed (PyStemmer), accents folded.

The corpus and the questions go through the stemmer of the corpus's first language and lose
the stop words of all its languages (language packs, :mod:`.packs.lang`; French and English by
default); accents are folded after stemming, so "Cleon" finds "Cléon". English question words
are bridged to French through the lexicon in :mod:`bilingual` ("employees" -> "salariés"), so an
English question matches more than the names and numbers it shares with a French text.

Built once, at build time, and saved in the index folder (:meth:`LexicalIndex.saved`): the
BM25 score matrix as bm25s keeps it (CSC arrays, memory-mapped on load) and the vocabulary, in
sorted order so that the same passages always give the same bytes. Loading then parses the
vocabulary and nothing proportional to the archive (at a million passages, rebuilding took
minutes). An index without these files (built before they existed, or by an analyzer of another
``ANALYZER_VERSION``) gets its BM25 rebuilt from the passages at load, as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BadInputError
from ..packs.lang import pack, strip_accents
from ..settings import DEFAULT_LANGUAGES
from .stores.base import all_finite, first_decrease, value_range

_WORD = re.compile(r"\w\w+")
# Most French stems one English word adds to the BM25 query (its first translations).
MAX_BRIDGES = 4
# Bumped whenever analyze() or the BM25 parameters change what a saved index holds.
ANALYZER_VERSION = 1
# The saved parts: bm25s's CSC score matrix (one column per stem) and the sorted vocabulary.
SAVED_ARRAYS = ("lexical_data", "lexical_indices", "lexical_indptr")
_EMPTY = "\x00"  # stands for a passage with no content word: bm25s rejects empty documents
# Most stems a saved vocabulary may hold, and most bytes its JSON file may take. The vocabulary is
# the one part of an index a load parses whole: each stem costs 165-230 bytes once loaded (a
# string and two dict entries; 165 measured on 842,851 short stems), so a crafted 60 MB file of
# 6 million words took 1.4 GB. A million-passage archive has 270,311 stems in 3 MB (BENCHMARKS.md):
# these caps leave 7x and 10x that, and hold a load's vocabulary to 0.3-0.5 GB. A load checks the
# file's size before reading it and the stem count before parsing it; a build that would write
# more refuses (BadInputError) before writing any file.
MAX_VOCABULARY = 2_000_000
MAX_VOCABULARY_BYTES = 32 * 2**20


_fold = strip_accents


@dataclass(frozen=True)
class Term:
    """A content word of a question: as typed, its own stem, and the French stems it may stand
    for (its translations, for an English word the lexicon knows)."""

    word: str
    stem: str
    options: tuple[tuple[str, ...], ...]


def saved_problem(arrays: Mapping[str, np.ndarray], stems: int, passages: int) -> str | None:
    """What makes saved BM25 arrays unfit for ``stems`` columns over ``passages`` passages, or
    None. bm25s trusts them: an index out of range, a pointer past the end or going back, a short
    data array, a NaN, and every question fails (IndexError, ValueError) or scores garbage. Each
    check is a pass over memory-mapped arrays, chunk by chunk (stores/base.py), never a copy."""
    data, indices, indptr = (arrays[role] for role in SAVED_ARRAYS)
    if indptr.ndim != 1 or len(indptr) != stems + 1:
        return f"{stems} stems for {len(indptr) - 1} BM25 columns"
    if data.ndim != 1 or indices.ndim != 1 or len(data) != len(indices):
        return f"{len(data)} BM25 scores for {len(indices)} passage numbers"
    if int(indptr[0]) != 0 or int(indptr[-1]) != len(data):
        return f"BM25 column pointers run from {int(indptr[0])} to {int(indptr[-1])}, not 0 to {len(data)}"
    back = first_decrease(indptr)
    if back is not None:
        return f"BM25 column pointers go back at column {back}"
    bounds = value_range(indices)
    if bounds is not None and (bounds[0] < 0 or bounds[1] >= passages):
        return f"BM25 passage numbers {bounds[0]}..{bounds[1]} outside 0..{passages - 1}"
    if not all_finite(data):
        return "BM25 scores hold NaN or infinite values"
    return None


class DocFrequency(Mapping[str, int]):
    """In how many passages each stem occurs, read off the score matrix: a stem's column holds
    one entry per passage containing it (BM25 scores of a present term are positive)."""

    def __init__(self, vocab: Mapping[str, int], indptr: np.ndarray):
        self._vocab, self._indptr = vocab, indptr

    def __getitem__(self, stem: str) -> int:
        i = self._vocab[stem]
        return int(self._indptr[i + 1] - self._indptr[i])

    def __contains__(self, stem: object) -> bool:
        return stem in self._vocab

    def __iter__(self) -> Iterator[str]:
        return iter(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)


class LexicalIndex:
    """BM25 scores of every passage for a question, and the corpus vocabulary.

    ``LexicalIndex(texts)`` builds it; :meth:`from_saved` opens what :meth:`saved` wrote.
    """

    def __init__(self, texts: Sequence[str] | None = None, *,
                 saved: tuple[dict[str, np.ndarray], list[str], int] | None = None,
                 languages: tuple[str, ...] = DEFAULT_LANGUAGES):
        import bm25s
        import Stemmer
        from bm25s.tokenization import _infer_stopwords  # how bm25s picks stop words by language

        packs = [pack(code) for code in languages]
        self.languages = tuple(languages)
        self._stem = Stemmer.Stemmer(packs[0].stemmer).stemWords
        # Question words say what kind of answer is wanted (qa/understand.py), not what it is about.
        asking = [w for p in packs for w in p.section("question").get("question_words", "").split()]
        self._stop = {_fold(w) for p in packs for w in _infer_stopwords(p.stopwords)} | \
            {_fold(w) for w in asking}
        self._bm25 = bm25s.BM25()
        self._reduced: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}
        if saved is None:
            corpus = [self.analyze(t) or [_EMPTY] for t in texts or ()]
            self.vocabulary = sorted({s for doc in corpus for s in doc})
            vocab = {s: i for i, s in enumerate(self.vocabulary)}
            # Ids from the sorted vocabulary (bm25s numbers a set's order, which varies by run).
            self._bm25.index(([[vocab[s] for s in doc] for doc in corpus], dict(vocab)),
                             show_progress=False)
            self.size = len(corpus)
        else:
            arrays, self.vocabulary, self.size = saved
            vocab = {s: i for i, s in enumerate(self.vocabulary)}
            self._bm25.scores = {"data": arrays["lexical_data"],
                                 "indices": arrays["lexical_indices"],
                                 "indptr": arrays["lexical_indptr"], "num_docs": self.size}
            self._bm25.vocab_dict = {**vocab, "": len(vocab)}
            self._bm25.nonoccurrence_array = None  # what index() sets for the default method
        # In how many passages each stem occurs: rare stems are what a question is about.
        self.frequency: Mapping[str, int] = DocFrequency(vocab, self._bm25.scores["indptr"])

    @classmethod
    def from_saved(cls, arrays: dict[str, np.ndarray], vocabulary: list[str], size: int,
                   languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> LexicalIndex:
        """The index :meth:`saved` wrote, its arrays as loaded (memory-mapped when big), once
        :func:`saved_problem` finds nothing wrong with them (ValueError otherwise)."""
        problem = saved_problem(arrays, len(vocabulary), size)
        if problem:
            raise ValueError(problem)
        return cls(saved=(arrays, vocabulary, size), languages=languages)

    def saved(self) -> tuple[dict[str, np.ndarray], list[str]]:
        """What the index folder keeps of it: the score matrix's arrays, the sorted vocabulary.
        Refused (:class:`BadInputError`) when the vocabulary is over what a load accepts."""
        if len(self.vocabulary) > MAX_VOCABULARY:
            raise BadInputError(
                f"the corpus has {len(self.vocabulary):,} distinct word stems, more than the "
                f"{MAX_VOCABULARY:,} an index may hold (lexical.MAX_VOCABULARY): split it into "
                "several corpora, or leave out the files of generated text (ids, hashes, tables)")
        scores: dict[str, Any] = self._bm25.scores
        return ({"lexical_data": scores["data"], "lexical_indices": scores["indices"],
                 "lexical_indptr": scores["indptr"]}, self.vocabulary)

    def vocabulary_json(self) -> bytes:
        """The vocabulary as the index folder keeps it (a JSON list, sorted), refused like
        :meth:`saved` when over ``MAX_VOCABULARY_BYTES``."""
        data = json.dumps(self.vocabulary, ensure_ascii=False).encode()
        if len(data) > MAX_VOCABULARY_BYTES:
            raise BadInputError(
                f"the corpus's word stems take {len(data):,} bytes, more than the "
                f"{MAX_VOCABULARY_BYTES:,} an index may hold (lexical.MAX_VOCABULARY_BYTES): split "
                "it into several corpora, or leave out the files of generated text")
        return data

    def analyze(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if _fold(w) not in self._stop]
        return [_fold(w) for w in self._stem(words)]

    @property
    def stop_words(self) -> frozenset[str]:
        """The words matching ignores (the languages' stop and question words), folded."""
        return frozenset(self._stop)

    def knows(self, stems: Sequence[str]) -> bool:
        return all(s in self.frequency for s in stems)

    def terms(self, question: str) -> list[Term]:
        """The question's content words with what each may match in the corpus."""
        from .bilingual import lexicon

        raw = _WORD.findall(question)
        found = {i: (j, self._reduce(french)) for i, j, french in lexicon().translate(raw)}
        out: list[Term] = []
        i = 0
        while i < len(raw):
            word = raw[i]
            if i in found:
                j, opts = found[i]
                phrase = " ".join(raw[i:j])
                own = tuple(self.analyze(phrase))
                if own and self.knows(own):
                    opts = (own, *opts)
                if own or any(_fold(w.lower()) not in self._stop for w in raw[i:j]):
                    out.append(Term(phrase, own[0] if own else "", opts))
                i = j
                continue
            own = tuple(self.analyze(word))
            if own:
                out.append(Term(word, own[0], (own,)))
            i += 1
        return out

    def _reduce(self, french: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
        """Translations as stem tuples, reduced like the corpus; repeats (dirige, diriger) once."""
        key = french
        if key not in self._reduced:
            seen: dict[tuple[str, ...], None] = {}
            for f in french:
                stems = tuple(self.analyze(f))
                if stems:
                    seen.setdefault(stems)
            self._reduced[key] = tuple(seen)
        return self._reduced[key]

    def query_tokens(self, question: str) -> list[str]:
        """What BM25 searches for: the question's own stems, and for a word the corpus does not
        know, the stems of its first translations the corpus does know."""
        tokens: list[str] = []
        for t in self.terms(question):
            if t.stem and t.stem in self.frequency:
                tokens.append(t.stem)
                continue
            known = [o for o in t.options if self.knows(o)]
            for option in known[:MAX_BRIDGES]:
                tokens += option
        return tokens

    def scores(self, question: str) -> np.ndarray:
        tokens = self.query_tokens(question)
        if not tokens:
            return np.zeros(self.size, np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
