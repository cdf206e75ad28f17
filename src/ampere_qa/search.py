"""Searching the index and answering questions: the :class:`Retriever` other apps embed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import answer as answers
from . import language
from .embedding import Embedder, load_embedder
from .errors import IndexMismatchError
from .index import IndexData, load_index
from .lexical import LexicalIndex
from .manifest import corpus_is_stale, rebuild_hint
from .question import DEFAULT_K, clean_question
from .types import Hit

# Sentences fetched from FAISS per passage wanted, before grouping them by passage.
SENTENCES_PER_HIT = 16
# Most a word match adds to a passage's score (the best BM25 passage gets all of it).
LEXICAL_WEIGHT = 0.015
# Passages this close to the best one also lend sentences to the answer.
TIE_MARGIN = 0.005
# A second sentence joins the answer when it contributes this share of the best one's effect.
SECOND_SENTENCE_SHARE = 0.8


class Retriever:
    """Loads a checked index and its model once; answers many questions.

    >>> r = Retriever.load("index")
    >>> r.answer("Qui dirige Ampere ?").answer
    "D'après l'article : « Luca de Meo, directeur général du groupe, ... » [1]"
    """

    def __init__(self, data: IndexData, embedder: Embedder):
        self.data = data
        self.embedder = embedder
        self._row = {p.id: i for i, p in enumerate(data.passages)}
        self.lexical = LexicalIndex([p.text for p in data.passages])

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
        wanted = data.manifest["model"]
        if embedder is None:
            embedder = load_embedder(model or wanted["name"])
        hint = rebuild_hint(Path(index_dir), data.manifest)
        if embedder.dimension != data.manifest["dimension"]:
            raise IndexMismatchError(
                f"model {embedder.name!r} makes {embedder.dimension}-dimensional vectors, the "
                f"index in {index_dir} holds {data.manifest['dimension']}: {hint}"
            )
        if embedder.fingerprint() != wanted.get("fingerprint"):
            raise IndexMismatchError(
                f"the index in {index_dir} was built with other model weights "
                f"({wanted['name']!r}) than {embedder.name!r}: {hint}"
            )
        return cls(data, embedder)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.data.manifest

    def is_stale(self) -> bool | None:
        """True when the corpus changed since the build; None when it cannot be found here."""
        return corpus_is_stale(self.data.path, self.manifest)

    def _rank(self, text: str, qv: np.ndarray, k: int) -> tuple[list[Hit], float]:
        """The top ``k`` passages, and the similarity of the closest sentence of all.

        A passage scores the cosine of its closest sentence: a question usually matches one
        sentence, and the rest of a paragraph dilutes the paragraph's vector. Word matching
        (BM25, scaled so the best passage gets ``LEXICAL_WEIGHT``) breaks near-ties. Measured
        on eval/questions.jsonl, hit@1 French/English: whole paragraphs 0.79/0.71, best
        sentence 0.86/0.86, plus BM25 0.88/0.87 (reciprocal-rank fusion instead: 0.79/0.56).
        """
        data = self.data
        k = max(1, min(int(k), len(data.passages)))
        store = data.store
        sims, rows = store.search(qv, min(len(data.sentence_owner), k * SENTENCES_PER_HIT))
        dense: dict[int, float] = {}
        for sim, row in zip(sims, rows, strict=True):
            if row >= 0:
                dense.setdefault(int(data.sentence_owner[row]), float(sim))  # best comes first
        lexical = self.lexical.scores(text)
        top = float(lexical.max(initial=0.0))
        bonus = LEXICAL_WEIGHT * lexical / top if top > 0 else lexical
        for i in _top_k(lexical, k):
            if lexical[i] > 0 and int(i) not in dense:  # found by words only: score it exactly
                a = int(data.sentence_start[i])
                ids = np.arange(a, a + len(data.passages[i].sentences))
                vecs = store.get(ids)
                dense[int(i)] = float((vecs @ qv).max())
        fused = sorted(((score + float(bonus[i]), i) for i, score in dense.items()), reverse=True)[:k]
        hits = [
            Hit(rank, p.id, p.source, p.start, p.end, p.text, score)
            for rank, (score, i) in enumerate(fused, start=1)
            for p in (data.passages[i],)
        ]
        return hits, float(sims[0]) if len(rows) and rows[0] >= 0 else -1.0

    def _embed(self, question: str) -> np.ndarray:
        return self.embedder.embed_queries([question])[0]

    @property
    def cutoff(self) -> float:
        """Relevance below this is answered "not found" (see :meth:`relevance`)."""
        return float(self.manifest.get("answer", {}).get("min_relevance", answers.MIN_RELEVANCE))

    def _relevance(self, qv: np.ndarray, best_sentence: float) -> float:
        return best_sentence - float((self.data.vectors.background @ qv).max(initial=-1.0))

    def relevance(self, question: str) -> float:
        """How much closer the question is to the corpus than to unrelated everyday text.

        Raw similarities cannot tell off-topic questions apart: to this model any two French
        sentences look alike (cosine ~0.75-0.85), so "how to make crêpes" scores as high as
        real questions. Measured against generic anchor sentences instead, a question about
        the article comes out closer to the article, an unrelated one closer to the anchors.
        """
        text = clean_question(question)
        qv = self._embed(text)
        return self._relevance(qv, self._rank(text, qv, 1)[1])

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The ``k`` passages that best match the question, best first."""
        text = clean_question(question)
        return self._rank(text, self._embed(text), k)[0]

    def answer(self, question: str, k: int = DEFAULT_K) -> answers.Answer:
        """The sentence(s) that answer, quoted with citations from the top ``k`` passages, or
        an explicit "not found" when the question is not about the corpus."""
        text = clean_question(question)
        lang = language.detect(text)
        qv = self._embed(text)
        hits, best_sentence = self._rank(text, qv, k)
        relevance = self._relevance(qv, best_sentence)
        if not hits or relevance < self.cutoff:
            result = answers.not_found(text, lang.code, lang.reply)
        else:
            result = answers.compose(text, lang.code, lang.reply, self._pick_sentences(qv, hits))
        return replace(result, relevance=relevance)

    def _pick_sentences(self, qv: np.ndarray, hits: list[Hit]) -> list[tuple[Hit, tuple[int, int]]]:
        """The sentence(s) that make the best passage relevant.

        A sentence's contribution is the passage's similarity minus that of the passage without
        it (vectors computed at build time). A sentence's own similarity is poor evidence for
        e5-small (one that merely names "Ampere" scores high); its effect inside its passage is
        what tells the answering one (eval: right sentence 0.74 -> 0.79 French, 0.73 -> 0.75
        English). Passages tied with the first (within ``TIE_MARGIN``) compete too; a second
        sentence joins when it contributes nearly as much as the first.
        """
        vecs = self.data.vectors
        candidates: list[tuple[float, Hit, tuple[int, int]]] = []
        for hit in hits:
            if hit.score < hits[0].score - TIE_MARGIN:
                break
            pi = self._row[hit.passage_id]
            spans = self.data.passages[pi].sentences
            first = int(self.data.sentence_start[pi])
            whole = float(vecs.passage_vectors[pi] @ qv)
            without = vecs.leave_one_out[first:first + len(spans)] @ qv
            candidates += [(whole - float(w), hit, span) for span, w in zip(spans, without, strict=True)]
        candidates.sort(key=lambda t: -t[0])
        best = candidates[0][0]
        picks = [(h, s) for c, h, s in candidates[:2]
                 if c == best or (best > 0 and c >= SECOND_SENTENCE_SHARE * best)]
        picks.sort(key=lambda t: (t[0].rank, t[1][0]))  # reading order
        return picks


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, ties going to the lower index (as a stable sort
    would), in O(n) rather than a full sort: it matters at a million passages."""
    if k >= len(scores):
        return np.arange(len(scores))
    kth = -np.partition(-scores, k - 1)[k - 1]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - len(above)]
    return np.concatenate([above, tied])
