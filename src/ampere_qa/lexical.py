"""Word matching: BM25 (bm25s) over passages, French-stemmed (PyStemmer), accents folded.

The article is French, so both it and the questions go through the French stemmer; accents
are folded after stemming, so "Cleon" finds "Cléon". An English question still matches the
names and numbers it shares with the article. Built from the passages when the index loads:
for a few thousand passages this takes milliseconds and needs no file of its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w\w+")


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


class LexicalIndex:
    """BM25 scores of every passage for a question."""

    def __init__(self, texts: Sequence[str]):
        import bm25s
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH

        self._stem = Stemmer.Stemmer("french").stemWords
        self._stop = {_fold(w) for w in (*STOPWORDS_FRENCH, *STOPWORDS_EN)}
        self._bm25 = bm25s.BM25()
        self._size = len(texts)
        corpus = [self.analyze(t) or ["\x00"] for t in texts]  # bm25s rejects empty documents
        self._bm25.index(corpus, show_progress=False)

    def analyze(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if _fold(w) not in self._stop]
        return [_fold(w) for w in self._stem(words)]

    def scores(self, question: str) -> np.ndarray:
        tokens = self.analyze(question)
        if not tokens:
            return np.zeros(self._size, np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
