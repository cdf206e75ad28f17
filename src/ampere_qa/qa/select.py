"""Choosing the answering sentence among the retrieved passages, and the short answer in it.

A sentence's *contribution* is its passage's similarity to the question minus that of the
passage without it (vectors computed at build time), plus ``sim_weight`` times its own
similarity. Its own similarity alone is poor evidence for e5-small (one that merely names
"Ampere" scores high); its effect inside its passage is what tells the answering one, and a
quarter of its own similarity breaks the ties (eval answer hit 0.83 -> 0.86 French, 0.82 ->
0.87 English when tuned).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..indexing.index import IndexData
from ..indexing.lexical import LexicalIndex, Term
from ..settings import AnswerSettings
from ..types import Hit
from . import spans
from .rules import Rules
from .understand import Intent

Span = tuple[int, int]


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage: where it is, its text, what it contributes, its stems."""

    hit: Hit
    span: Span
    sentence: str
    contribution: float
    stems: frozenset[str]


@dataclass(frozen=True)
class Scored:
    """A candidate as scored for one question part: its score, the short answer in it (span in
    the sentence and how well its kind fits), the share of the question's words it holds."""

    score: float
    candidate: Candidate
    short: tuple[int, int, float] | None
    overlap: float

    @property
    def quality(self) -> float:
        return self.short[2] if self.short is not None else 0.0


@dataclass(frozen=True)
class Choice:
    hit: Hit
    span: Span
    short: Span | None  # within hit.text


class Selector:
    """Sentence choice over one index, with the rules and settings of the answer."""

    def __init__(self, data: IndexData, lexical: LexicalIndex, rules: Rules, settings: AnswerSettings):
        self.data, self.lexical, self.rules, self.settings = data, lexical, rules, settings

    def candidates(self, qv: np.ndarray, hits: list[Hit], rows: dict[str, int],
                   margin: float | None = None) -> list[Candidate]:
        """The sentences of the passages close to the best one, with what each contributes."""
        margin = self.settings.candidate_margin if margin is None else margin
        data, vecs = self.data, self.data.vectors
        close = [h for h in hits if h.score >= hits[0].score - margin]
        pis = [rows[h.passage_id] for h in close]
        starts = [int(data.sentence_start[pi]) for pi in pis]
        counts = [len(data.passages[pi].sentences) for pi in pis]
        # Every candidate sentence's own vector in one store call (one round trip for Milvus).
        ids = np.concatenate([np.arange(a, a + n) for a, n in zip(starts, counts, strict=True)])
        own_all = data.store.get(ids) @ qv
        out: list[Candidate] = []
        offset = 0
        for hit, pi, first, n in zip(close, pis, starts, counts, strict=True):
            whole = float(vecs.passage_vectors[pi] @ qv)
            without = vecs.leave_one_out[first:first + n] @ qv
            own = own_all[offset:offset + n]
            offset += n
            for span, w, o in zip(data.passages[pi].sentences, without, own, strict=True):
                sentence = hit.text[span[0]:span[1]]
                contribution = whole - float(w) + self.settings.sim_weight * float(o)
                out.append(Candidate(hit, span, sentence, contribution,
                                     frozenset(self.lexical.analyze(sentence))))
        return out

    def best(self, candidates: list[Candidate], intent: Intent, terms: list[Term]) -> Choice:
        """The sentence that answers: what it contributes, the question's words it holds (rare
        words weigh more), and whether it holds an answer of the expected type; and the short
        answer in it."""
        s = self.settings
        weights = [self.weight(t) for t in terms]
        total = sum(weights) or 1.0
        focus = self.lexical.terms(intent.focus) if intent.focus else []
        per_passage: dict[str, Scored] = {}
        for c in candidates:
            matched = [i for i, t in enumerate(terms) if any(o and set(o) <= c.stems for o in t.options)]
            overlap = sum(weights[i] for i in matched) / total
            short = (spans.pick(c.sentence, intent, [terms[i] for i in matched], focus, self.lexical,
                                self.rules, s.topic_share) if intent.expected else None)
            # Contributions compare sentences of one passage (a short passage loses more by
            # losing a sentence), so the sentence is chosen within each passage...
            scored = Scored(c.contribution + s.overlap_weight * overlap
                            + (s.type_weight * short[2] if short is not None else 0.0), c, short, overlap)
            kept = per_passage.get(c.hit.passage_id)
            if kept is None or (scored.quality, scored.score) > (kept.quality, kept.score):
                per_passage[c.hit.passage_id] = scored
        # ... and the passage is the best one, unless only another holds an answer of the
        # expected type (or one of a better fitting kind, or with more of the question's words).
        ranked = sorted(per_passage.values(), key=lambda t: -t.candidate.hit.score)
        fit = [t for t in ranked if t.short is not None]
        pick = (max(fit, key=lambda t: (t.quality, round(t.overlap, 2), -ranked.index(t)))
                if intent.expected and fit else ranked[0])
        c, short = pick.candidate, pick.short
        absolute = None if short is None else (c.span[0] + short[0], c.span[0] + short[1])
        return Choice(c.hit, c.span, absolute)

    def with_key_word(self, best: Choice, qv: np.ndarray, hits: list[Hit], rows: dict[str, int],
                      intent: Intent, terms: list[Term]) -> Choice:
        """``best``, unless its sentence lacks the question's rarest word and a passage cited
        as "see also" holds an answer of the type asked in a sentence with that word: "Who
        leads Ampere?" is not answered by models listed beside "Ampere" alone."""
        if not terms:
            return best
        key = max(terms, key=self.weight)

        def holds(choice: Choice) -> bool:
            stems = set(self.lexical.analyze(choice.hit.text[choice.span[0]:choice.span[1]]))
            return any(o and set(o) <= stems for o in key.options)

        if holds(best):
            return best
        wider = self.best(self.candidates(qv, hits, rows, self.settings.see_also_margin), intent, terms)
        return wider if wider.short is not None and holds(wider) else best

    def weight(self, term: Term) -> float:
        """Inverse passage frequency of a term's best-known form: rare words are what a question
        is about; a word the corpus does not know weighs like the rarest."""
        n = len(self.data.passages)
        known = [min((self.lexical.frequency.get(s, 0) for s in o), default=0)
                 for o in term.options if o and self.lexical.knows(o)]
        df = min(known) if known else 1
        return math.log(1 + n / max(df, 1))

    def second_sentence(self, candidates: list[Candidate], first: tuple[Hit, Span]) -> list[tuple[Hit, Span]]:
        """A second sentence of the first one's passages joins when it contributes nearly as
        much as the best of them."""
        s = self.settings
        same = [c for c in candidates if c.hit.score >= candidates[0].hit.score - s.tie_margin]
        ranked = sorted(same, key=lambda c: -c.contribution)
        if len(ranked) < 2 or (ranked[0].hit, ranked[0].span) != first or ranked[0].contribution <= 0:
            return []
        if ranked[1].contribution >= s.second_sentence_share * ranked[0].contribution:
            return [(ranked[1].hit, ranked[1].span)]
        return []
