"""Searching the index and answering questions: the :class:`Retriever` other apps embed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import answer as answers
from . import answerability, followup, language, understand
from . import spans as shortspans
from .embedding import Embedder, load_embedder
from .errors import BadInputError, IndexMismatchError
from .index import IndexData, load_index
from .lexical import LexicalIndex, Term
from .manifest import StaleWatch, corpus_is_stale, page_info, rebuild_hint
from .question import DEFAULT_K, clean_question
from .types import Hit, PageInfo

# Sentences fetched from FAISS per passage wanted, before grouping them by passage.
SENTENCES_PER_HIT = 16
# Most a word match adds to a passage's score (the best BM25 passage gets all of it).
LEXICAL_WEIGHT = 0.03
# Passages this close to the best one lend a second sentence to the answer.
TIE_MARGIN = 0.005
# A second sentence joins the answer when it contributes this share of the best one's effect.
SECOND_SENTENCE_SHARE = 0.8
# Passages of the top k this close to the best one are cited as "see also".
SEE_ALSO_MARGIN = 0.02
# Passages this close to the best one are searched for the answering sentence.
CANDIDATE_MARGIN = 0.015
# How the answering sentence is chosen in its passage (see Retriever._best_sentence): its
# contribution to the passage's similarity, plus these for the share of the question's words
# it holds and for holding an answer of the expected type.
OVERLAP_WEIGHT = 0.02
TYPE_WEIGHT = 0.04
SIM_WEIGHT = 0.25


class Retriever:
    """Loads a checked index and its model once; answers many questions.

    >>> r = Retriever.load("index")
    >>> r.answer("Qui dirige Ampere ?").answer
    "D'après l'article : « Luca de Meo, directeur général du groupe, ... » [1]"
    """

    def __init__(self, data: IndexData, embedder: Embedder):
        self.data = data
        self.embedder = embedder
        # Passage id -> row, for the passages hits were made of (filled as they are made: a
        # table of every id would parse every passage at load).
        self._row: dict[str, int] = {}
        self.lexical = data.lexical or LexicalIndex([p.indexed_text for p in data.passages])
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
            from .model.source import BUNDLED_MODEL_NAME

            reinstall = ("reinstall the model with: ampere-qa model install"
                         if embedder.name == BUNDLED_MODEL_NAME else
                         "load the model the index was built with (--model)")
            raise IndexMismatchError(
                f"the index in {index_dir} was built with other model weights than those of "
                f"{embedder.name!r} here: the index records {wanted['name']!r} with weights "
                f"fingerprint {wanted.get('fingerprint')!r}, the model here has "
                f"{embedder.fingerprint()!r}; {hint}, or, if the model's files changed, "
                f"{reinstall}"
            )
        return cls(data, embedder)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.data.manifest

    @property
    def page(self) -> PageInfo:
        """The page's title, description and example questions, as the build recorded them
        (derived from the corpus folder's name for an index built before they were)."""
        return page_info(self.data.path, self.manifest)

    def is_stale(self) -> bool | None:
        """True when the corpus changed since the build; None when it cannot be found here.
        Reads no file when the corpus's names, sizes and times are those of the build."""
        return corpus_is_stale(self.data.path, self.manifest)

    def stale_status(self) -> bool | None:
        """:meth:`is_stale` at O(1) a call, for servers: checked on the first call, then
        refreshed in the background at most every STALE_REFRESH_S (see :class:`StaleWatch`)."""
        return self._stale()

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
        self._row.update((data.passages[i].id, i) for _, i in fused)
        hits = [
            Hit(rank, p.id, p.source, p.start, p.end, p.text, score, context=p.context)
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

    def answer(self, question: str, k: int = DEFAULT_K, history: Sequence[str] = ()) -> answers.Answer:
        """The short answer and the sentence(s) that give it, quoted with citations from the top
        ``k`` passages, or a "not found" that says why (see :mod:`answerability`).

        ``history`` is the user's earlier questions, oldest first: a follow-up ("Et où ?",
        "What is its purpose?") is understood against them (see :mod:`followup`); a standalone
        question is never changed.
        """
        text = clean_question(question)
        past = _history(history)
        lang = language.detect(text)
        intents = understand.read(text)
        if intents[0].kind != understand.QUESTION:
            return answers.not_found(text, lang.code, lang.reply, intents[0].kind)
        understood = followup.resolve(text, past, self.lexical, lang.reply) if past else text
        qv = self._embed(understood)
        hits, best_sentence = self._rank(understood, qv, k)
        relevance = self._relevance(qv, best_sentence)
        result = self._answer(understood, lang, intents, qv, hits, relevance)
        return replace(result, question=text, relevance=relevance,
                       understood=understood if understood != text else None)

    def _answer(self, text: str, lang: language.Language, intents: list[understand.Intent],
                qv: np.ndarray, hits: list[Hit], relevance: float) -> answers.Answer:
        if not hits or relevance < self.cutoff:
            return answers.not_found(text, lang.code, lang.reply)
        terms = self.lexical.terms(text)
        missing = answerability.missing_name(text, self.lexical, terms)
        if missing:
            return answers.not_found(text, lang.code, lang.reply, "not_mentioned", what=missing)
        subject = answerability.subject_of(text, self.lexical, terms)
        candidates = self._candidates(qv, hits)
        picks: list[tuple[Hit, tuple[int, int]]] = []
        shorts: list[tuple[Hit, tuple[int, int]]] = []
        for intent in intents:
            part_terms, part_qv = terms, qv
            if len(intents) > 1:  # each part chooses its sentence by its own meaning and words
                part_terms, part_qv = self.lexical.terms(intent.text), self._embed(intent.text)
                candidates = self._candidates(part_qv, hits)
            for concept in answerability.asked_concepts(intent.text, intent.expected, intent.yes_no):
                if not answerability.gives(concept, (c.sentence for c in candidates)):
                    label = concept.fr if lang.reply == "fr" else concept.en
                    return answers.not_found(text, lang.code, lang.reply, "not_given",
                                             subject=subject, concept_label=label)
            if intent.expected == understand.NUMBER and intent.focus:
                counted = answerability.unknown_counted(intent.focus, self.lexical)
                if counted:
                    return answers.not_found(text, lang.code, lang.reply, "not_given",
                                             concept_label=answers.count_label(lang.reply, counted))
            best = self._best_sentence(candidates, intent, part_terms)
            if intent.expected and best.short is not None:
                best = self._with_key_word(best, part_qv, hits, intent, part_terms)
            if intent.expected and best.short is None:
                return answers.not_found(text, lang.code, lang.reply, "no_answer",
                                         what=intent.expected, subject=subject)
            if (best.hit, best.span) not in picks:
                picks.append((best.hit, best.span))
            if best.short is not None:
                shorts.append((best.hit, best.short))
        if len(intents) == 1 and not shorts:
            picks += self._second_sentence(candidates, picks[0])
        picks.sort(key=lambda t: (t[0].rank, t[1][0]))  # reading order
        # k is how many excerpts an answer may cite: those it quotes, then the others of the
        # top k that score nearly as well ("see also").
        see_also = [h for h in hits if h.score >= hits[0].score - SEE_ALSO_MARGIN]
        return answers.compose(text, lang.code, lang.reply, picks, shorts, see_also)

    def _candidates(self, qv: np.ndarray, hits: list[Hit],
                    margin: float = CANDIDATE_MARGIN) -> list[_Candidate]:
        """The sentences of the passages close to the best one, with what each contributes.

        A sentence's contribution is the passage's similarity minus that of the passage without
        it (vectors computed at build time), plus ``SIM_WEIGHT`` times its own similarity. Its
        own similarity alone is poor evidence for e5-small (one that merely names "Ampere"
        scores high); its effect inside its passage is what tells the answering one, and a
        quarter of its own similarity breaks the ties (eval answer hit 0.83 -> 0.86 French,
        0.82 -> 0.87 English when tuned).
        """
        vecs = self.data.vectors
        close = [h for h in hits if h.score >= hits[0].score - margin]
        rows = [self._row[h.passage_id] for h in close]
        starts = [int(self.data.sentence_start[pi]) for pi in rows]
        counts = [len(self.data.passages[pi].sentences) for pi in rows]
        # Every candidate sentence's own vector in one store call (one round trip for Milvus).
        ids = np.concatenate([np.arange(a, a + n) for a, n in zip(starts, counts, strict=True)])
        own_all = self.data.store.get(ids) @ qv
        out: list[_Candidate] = []
        offset = 0
        for hit, pi, first, n in zip(close, rows, starts, counts, strict=True):
            spans = self.data.passages[pi].sentences
            whole = float(vecs.passage_vectors[pi] @ qv)
            without = vecs.leave_one_out[first:first + n] @ qv
            own = own_all[offset:offset + n]
            offset += n
            for span, w, o in zip(spans, without, own, strict=True):
                sentence = hit.text[span[0]:span[1]]
                out.append(_Candidate(hit, span, sentence, whole - float(w) + SIM_WEIGHT * float(o),
                                      frozenset(self.lexical.analyze(sentence))))
        return out

    def _best_sentence(self, candidates: list[_Candidate], intent: understand.Intent,
                       terms: list[Term]) -> _Choice:
        """The sentence that answers: what it contributes, the question's words it holds (rare
        words weigh more), and whether it holds an answer of the expected type; and the short
        answer in it."""
        weights = [self._weight(t) for t in terms]
        total = sum(weights) or 1.0
        focus = self.lexical.terms(intent.focus) if intent.focus else []
        per_passage: dict[str, tuple[float, _Candidate, tuple[int, int, float] | None, float]] = {}
        for c in candidates:
            matched = [i for i, t in enumerate(terms)
                       if any(o and set(o) <= c.stems for o in t.options)]
            overlap = sum(weights[i] for i in matched) / total
            short = (shortspans.pick(c.sentence, intent, [terms[i] for i in matched], focus,
                                     self.lexical) if intent.expected else None)
            # Contributions compare sentences of one passage (a short passage loses more by
            # losing a sentence), so the sentence is chosen within each passage...
            score = (c.contribution + OVERLAP_WEIGHT * overlap
                     + (TYPE_WEIGHT * short[2] if short is not None else 0.0))
            kept = per_passage.get(c.hit.passage_id)
            if kept is None or (_quality(short), score) > (_quality(kept[2]), kept[0]):
                per_passage[c.hit.passage_id] = (score, c, short, overlap)
        # ... and the passage is the best one, unless only another holds an answer of the
        # expected type (or one of a better fitting kind, or with more of the question's words).
        ranked = sorted(per_passage.values(), key=lambda t: -t[1].hit.score)
        fit = [t for t in ranked if t[2] is not None]
        if intent.expected and fit:
            _, c, short, _ = max(fit, key=lambda t: (_quality(t[2]), round(t[3], 2), -ranked.index(t)))
        else:
            _, c, short, _ = ranked[0]
        absolute = None if short is None else (c.span[0] + short[0], c.span[0] + short[1])
        return _Choice(c.hit, c.span, absolute)

    def _with_key_word(self, best: _Choice, qv: np.ndarray, hits: list[Hit],
                       intent: understand.Intent, terms: list[Term]) -> _Choice:
        """``best``, unless its sentence lacks the question's rarest word and a passage cited
        as "see also" holds an answer of the type asked in a sentence with that word: "Who
        leads Ampere?" is not answered by models listed beside "Ampere" alone."""
        if not terms:
            return best
        key = max(terms, key=self._weight)

        def holds(choice: _Choice) -> bool:
            stems = set(self.lexical.analyze(choice.hit.text[choice.span[0]:choice.span[1]]))
            return any(o and set(o) <= stems for o in key.options)

        if holds(best):
            return best
        wider = self._best_sentence(self._candidates(qv, hits, SEE_ALSO_MARGIN), intent, terms)
        return wider if wider.short is not None and holds(wider) else best

    def _weight(self, term: Term) -> float:
        """Inverse passage frequency of a term's best-known form: rare words are what a question
        is about; a word the corpus does not know weighs like the rarest."""
        n = len(self.data.passages)
        known = [min((self.lexical.frequency.get(s, 0) for s in o), default=0)
                 for o in term.options if o and self.lexical.knows(o)]
        df = min(known) if known else 1
        return math.log(1 + n / max(df, 1))

    def _second_sentence(self, candidates: list[_Candidate],
                         first: tuple[Hit, tuple[int, int]]) -> list[tuple[Hit, tuple[int, int]]]:
        """A second sentence of the first one's passages joins when it contributes nearly as
        much as the best of them."""
        same = [c for c in candidates if c.hit.score >= candidates[0].hit.score - TIE_MARGIN]
        ranked = sorted(same, key=lambda c: -c.contribution)
        if len(ranked) < 2 or (ranked[0].hit, ranked[0].span) != first or ranked[0].contribution <= 0:
            return []
        if ranked[1].contribution >= SECOND_SENTENCE_SHARE * ranked[0].contribution:
            return [(ranked[1].hit, ranked[1].span)]
        return []


@dataclass(frozen=True)
class _Candidate:
    hit: Hit
    span: tuple[int, int]
    sentence: str
    contribution: float
    stems: frozenset[str]


@dataclass(frozen=True)
class _Choice:
    hit: Hit
    span: tuple[int, int]
    short: tuple[int, int] | None  # within hit.text


def _history(history: Sequence[str]) -> list[str]:
    """The earlier questions, cleaned like a question; the last few only."""
    if isinstance(history, str) or not isinstance(history, Sequence):
        raise BadInputError("history must be a list of earlier questions")
    past = []
    items = list(history)
    first = max(0, len(items) - followup.MAX_HISTORY)
    for i, h in enumerate(items[first:], start=first):
        if not isinstance(h, str):
            raise BadInputError("history must be a list of earlier questions (strings)")
        if h.strip():
            try:
                past.append(clean_question(h))
            except BadInputError as exc:  # say which item, not "the question"
                raise BadInputError(f"history[{i}]: {exc}".replace(": the question", ": it")) \
                    from None
    return past


def _quality(short: tuple[int, int, float] | None) -> float:
    return short[2] if short is not None else 0.0


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, ties going to the lower index (as a stable sort
    would), in O(n) rather than a full sort: it matters at a million passages."""
    if k >= len(scores):
        return np.arange(len(scores))
    kth = -np.partition(-scores, k - 1)[k - 1]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - len(above)]
    return np.concatenate([above, tied])
