"""Two plain baselines over the indexed paragraphs: BM25 and dense retrieval.

They rank whole paragraphs (no sentences, no stemming, no "not found"), to show what the
retriever adds. Both are :class:`~.systems.System`s that only rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .systems import DEPTH, Response

if TYPE_CHECKING:
    from ..embed.embedding import Embedder
    from ..search import Retriever


def paragraphs_of(retriever: Retriever) -> list[str]:
    """The baselines' units: the distinct paragraphs of the indexed passages."""
    from ..ingest.passages import paragraphs

    seen: dict[str, None] = {}
    for p in retriever.data.passages:
        for a, b in paragraphs(p.text):
            seen.setdefault(p.text[a:b])
    return list(seen)


class Dense:
    """Cosine between a question and each of ``texts``, embedded once."""

    def __init__(self, embedder: Embedder, texts: Sequence[str]) -> None:
        self.embedder = embedder
        self.vectors = embedder.embed_passages(list(texts))

    def order(self, question: str) -> np.ndarray:
        """Indexes of the texts, closest first."""
        return np.argsort(-(self.vectors @ self.embedder.embed_queries([question])[0]))


class Bm25:
    """bm25s over ``texts``: lower-cased words, or stemmed without stop words when a
    ``language`` (PyStemmer's name: "french") is given."""

    def __init__(self, texts: Sequence[str], language: str | None = None) -> None:
        import bm25s

        self.stemmer: Any = None
        self.stopwords: str | None = None
        if language:
            import Stemmer

            self.stemmer, self.stopwords = Stemmer.Stemmer(language), language[:2]
        self.size = len(texts)
        self.bm25 = bm25s.BM25()
        self.bm25.index(self._tokens(list(texts)), show_progress=False)

    def _tokens(self, texts: list[str]) -> Any:
        import bm25s

        return bm25s.tokenize(texts, stopwords=self.stopwords, stemmer=self.stemmer, show_progress=False)

    def order(self, question: str, k: int) -> list[int]:
        """Indexes of the ``k`` best texts (none when the question has no word)."""
        tokens = self._tokens([question])
        if not tokens.vocab:
            return []
        docs, _ = self.bm25.retrieve(tokens, k=min(k, self.size), show_progress=False)
        return [int(i) for i in docs[0]]


class Bm25Paragraphs:
    """Plain BM25 (bm25s, lower-cased words, no stemming) over the given paragraphs."""

    name = "bm25-paragraphs"

    def __init__(self, passages: Sequence[str]) -> None:
        self.passages = passages
        self.bm25 = Bm25(passages)

    def respond(self, question: str) -> Response:
        return Response([self.passages[i] for i in self.bm25.order(question, DEPTH)])


class DenseParagraphs:
    """Plain dense retrieval: cosine between the question and each whole paragraph."""

    name = "dense-paragraphs"

    def __init__(self, embedder: Embedder, passages: Sequence[str]) -> None:
        self.passages = passages
        self.dense = Dense(embedder, passages)

    def respond(self, question: str) -> Response:
        return Response([self.passages[int(i)] for i in self.dense.order(question)[:DEPTH]])
