"""Word matching: BM25 (bm25s) over passages, French-stemmed (PyStemmer), accents folded.

The article is French, so both it and the questions go through the French stemmer; accents
are folded after stemming, so "Cleon" finds "Cléon". English question words are bridged to
French through the lexicon in :mod:`bilingual` ("employees" -> "salariés"), so an English
question matches more than the names and numbers it shares with the article. Built from the
passages when the index loads: for a few thousand passages this takes milliseconds and needs
no file of its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w\w+")
# Question words say what kind of answer is wanted (see understand.py), not what it is about.
QUESTION_WORDS = """who whom whose what which when where why how qui quoi quand ou où comment
combien pourquoi quel quelle quels quelles lequel laquelle lesquels lesquelles many much""".split()
# Most French stems one English word adds to the BM25 query (its first translations).
MAX_BRIDGES = 4


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


@dataclass(frozen=True)
class Term:
    """A content word of a question: as typed, its own stem, and the French stems it may stand
    for (its translations, for an English word the lexicon knows)."""

    word: str
    stem: str
    options: tuple[tuple[str, ...], ...]


class LexicalIndex:
    """BM25 scores of every passage for a question, and the corpus vocabulary."""

    def __init__(self, texts: Sequence[str]):
        import bm25s
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH

        self._stem = Stemmer.Stemmer("french").stemWords
        self._stop = {_fold(w) for w in (*STOPWORDS_FRENCH, *STOPWORDS_EN, *QUESTION_WORDS)}
        self._bm25 = bm25s.BM25()
        self.size = len(texts)
        corpus = [self.analyze(t) or ["\x00"] for t in texts]  # bm25s rejects empty documents
        # In how many passages each stem occurs: rare stems are what a question is about.
        self.frequency: Counter[str] = Counter(s for doc in corpus for s in set(doc))
        self._bm25.index(corpus, show_progress=False)
        self._reduced: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}

    def analyze(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if _fold(w) not in self._stop]
        return [_fold(w) for w in self._stem(words)]

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
