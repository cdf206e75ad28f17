"""Two plain baselines over the indexed paragraphs: BM25 and dense retrieval.

They rank whole paragraphs (no sentences, no stemming, no "not found"), to show what the
retriever adds. Both are :class:`~.systems.System`s that only rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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


class Bm25Paragraphs:
    """Plain BM25 (bm25s, lower-cased words, no stemming) over the given paragraphs."""

    name = "bm25-paragraphs"

    def __init__(self, passages: Sequence[str]) -> None:
        import bm25s

        self.passages = passages
        self.bm25 = bm25s.BM25()
        self.bm25.index(bm25s.tokenize(list(passages), stopwords=None, show_progress=False),
                        show_progress=False)

    def respond(self, question: str) -> Response:
        import bm25s

        tokens = bm25s.tokenize([question], stopwords=None, show_progress=False)
        if not tokens.vocab:
            return Response([])
        k = min(DEPTH, len(self.passages))
        docs, _ = self.bm25.retrieve(tokens, k=k, show_progress=False)
        return Response([self.passages[int(i)] for i in docs[0]])


class DenseParagraphs:
    """Plain dense retrieval: cosine between the question and each whole paragraph."""

    name = "dense-paragraphs"

    def __init__(self, embedder: Embedder, passages: Sequence[str]) -> None:
        self.embedder = embedder
        self.passages = passages
        self.vectors = embedder.embed_passages(list(passages))

    def respond(self, question: str) -> Response:
        sims = self.vectors @ self.embedder.embed_queries([question])[0]
        return Response([self.passages[int(i)] for i in np.argsort(-sims)[:DEPTH]])
