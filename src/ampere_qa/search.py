"""Searching the index and answering questions: the :class:`Retriever` other apps embed.

It wires an index and a model to the stages: :mod:`.retrieve.ranker` ranks, :mod:`.qa.pipeline`
reads the question, checks it is answered and composes the reply, with the answer settings the
index records (:class:`~ampere_qa.settings.AnswerSettings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .embed.embedding import Embedder, load_embedder
from .indexing.index import IndexData, check_embedder, load_index
from .indexing.lexical import LexicalIndex
from .indexing.manifest import StaleWatch, corpus_is_stale, page_info
from .qa.pipeline import Pipeline
from .qa.question import DEFAULT_K, clean_history, clean_question
from .qa.rules import rules
from .qa.select import Selector
from .qa.understand import QUESTION
from .retrieve.ranker import HybridRanker, relevance
from .settings import AnswerSettings
from .types import Answer, Hit, PageInfo


class Retriever:
    """Loads a checked index and its model once; answers many questions.

    >>> r = Retriever.load("index")
    >>> r.answer("Qui dirige Ampere ?").answer
    "D'après l'article : « Luca de Meo, directeur général du groupe, ... » [1]"
    """

    def __init__(self, data: IndexData, embedder: Embedder, settings: AnswerSettings | None = None):
        self.data = data
        self.embedder = embedder
        self.settings = settings or AnswerSettings.from_dict(dict(data.manifest.answer))
        self.lexical = data.lexical or LexicalIndex([p.indexed_text for p in data.passages],
                                                    languages=self.settings.languages)
        s = self.settings
        self.ranker = HybridRanker(data, self.lexical, sentences_per_hit=s.sentences_per_hit,
                                   lexical_weight=s.lexical_weight, whole_passages=s.whole_passages,
                                   document_weight=s.document_weight)
        selector = Selector(data, self.lexical, rules(s.languages, s.domains), s)
        self.pipeline = Pipeline(self.ranker, selector, self.lexical, s, self._embed)
        self._stale = StaleWatch(self.is_stale)

    @classmethod
    def load(
        cls,
        index_dir: str | Path = "index",
        model: str | None = None,
        *,
        embedder: Embedder | None = None,
    ) -> Retriever:
        """Open ``index_dir`` with the model it was built with (or ``model``, which must be the
        same weights, e.g. a local copy). Raises an :class:`AmpereError` subclass on mismatch."""
        data = load_index(index_dir)
        if embedder is None:
            embedder = load_embedder(model or data.manifest.model_name)
        check_embedder(data, embedder)
        return cls(data, embedder)

    @property
    def manifest(self) -> dict[str, Any]:
        """The index's manifest as written (``data.manifest`` is the typed one)."""
        return dict(self.data.manifest.raw)

    @property
    def page(self) -> PageInfo:
        """The page's title, description and example questions, as the build recorded them
        (derived from the corpus folder's name for an index built before they were)."""
        return page_info(self.data.path, self.data.manifest)

    def is_stale(self) -> bool | None:
        """True when the corpus changed since the build; None when it cannot be found here.
        Reads no file when the corpus's names, sizes and times are those of the build."""
        return corpus_is_stale(self.data.path, self.data.manifest)

    def stale_status(self) -> bool | None:
        """:meth:`is_stale` at O(1) a call, for servers: checked on the first call, then
        refreshed in the background at most every STALE_REFRESH_S (see :class:`StaleWatch`)."""
        return self._stale()

    def _embed(self, question: str) -> np.ndarray:
        vector: np.ndarray = self.embedder.embed_queries([question])[0]
        return vector

    @property
    def cutoff(self) -> float:
        """Relevance below this is answered "not found" (see :meth:`relevance`)."""
        return self.settings.min_relevance

    def relevance(self, question: str) -> float:
        """How much closer the question is to the corpus than to unrelated everyday text.

        Raw similarities cannot tell off-topic questions apart: to this model any two French
        sentences look alike (cosine ~0.75-0.85), so "how to make crêpes" scores as high as
        real questions. Measured against generic anchor sentences instead, a question about
        the article comes out closer to the article, an unrelated one closer to the anchors.
        """
        text = clean_question(question)
        qv = self._embed(text)
        return relevance(self.data, qv, self.ranker.rank(text, qv, 1).best_sentence)

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The ``k`` passages that best match the question, best first."""
        text = clean_question(question)
        return self.ranker.rank(text, self._embed(text), k).hits

    def answer(self, question: str, k: int = DEFAULT_K, history: Sequence[str] = ()) -> Answer:
        """The short answer and the sentence(s) that give it, quoted with citations from the top
        ``k`` passages, or a "not found" that says why (see :mod:`.qa.answerability`).

        ``history`` is the user's earlier questions, oldest first: a follow-up ("Et où ?",
        "What is its purpose?") is understood against them (see :mod:`.qa.followup`); a
        standalone question is never changed.
        """
        text = clean_question(question)
        return self.pipeline.answer(text, k, clean_history(history, self.settings.max_history))


    def understood(self, question: str, history: Sequence[str] = ()) -> str | None:
        """What ``question`` asks after ``history``, as the retrieval reads it; None when it is
        not a question (a greeting, a request)."""
        text = clean_question(question)
        reading = self.pipeline.read(text)
        if reading.intents[0].kind != QUESTION:
            return None
        past = clean_history(history, self.settings.max_history)
        return self.pipeline.resolve(text, past, reading) if past else text
