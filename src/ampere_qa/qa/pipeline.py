"""The answer pipeline: question -> language and intents -> follow-up -> ranking -> gate ->
answerability checks -> sentence selection -> composition. Each stage takes explicit inputs
and returns a typed value; :class:`~ampere_qa.search.Retriever` wires it to an index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..indexing.lexical import LexicalIndex, Term
from ..retrieve.ranker import HybridRanker, Ranking, relevance
from ..settings import AnswerSettings
from ..types import Answer, Hit
from . import answerability, followup, language, understand
from .compose import Wording, compose, not_found, wording
from .rules import Rules, rules
from .select import Candidate, Choice, Selector, Span


@dataclass(frozen=True)
class Gap:
    """Why the corpus does not answer: a reason code (``types.REASONS``) and what it names."""

    reason: str
    what: str = ""
    subject: str = ""
    concept_label: str = ""


@dataclass(frozen=True)
class Reading:
    """A question as read: its language, the rules it is read with, its intents, the wording of
    the reply."""

    language: language.Language
    rules: Rules
    intents: list[understand.Intent]
    words: Wording


class Pipeline:
    def __init__(self, ranker: HybridRanker, selector: Selector, lexical: LexicalIndex,
                 settings: AnswerSettings, embed: Callable[[str], np.ndarray]):
        self.ranker, self.selector, self.lexical = ranker, selector, lexical
        self.settings, self.embed = settings, embed

    def read(self, text: str) -> Reading:
        """The question's language (the reply's), the packs it is read with, its intents."""
        lang = language.detect(text)
        s = self.settings
        extra = (lang.code,) if lang.code not in s.languages and lang.code == lang.reply else ()
        r = rules((*s.languages, *extra), s.domains)
        return Reading(lang, r, understand.read(text, r, s.typed_words),
                       wording(lang.reply, s.noun.get(lang.reply, "")))

    def answer(self, text: str, k: int, past: Sequence[str]) -> Answer:
        reading = self.read(text)
        lang, words = reading.language, reading.words
        if reading.intents[0].kind != understand.QUESTION:
            return not_found(text, lang.code, words, reading.intents[0].kind)
        understood = self.resolve(text, past, reading) if past else text
        qv = self.embed(understood)
        ranking = self.ranker.rank(understood, qv, k)
        score = relevance(self.ranker.data, qv, ranking.best_sentence)
        result = self._answer(understood, reading, qv, ranking, score)
        return replace(result, question=text, relevance=score,
                       understood=understood if understood != text else None)

    def resolve(self, text: str, past: Sequence[str], reading: Reading) -> str:
        return followup.resolve(text, past, self.lexical, reading.rules, reading.language.reply,
                                lambda h: language.detect(h).reply, self.settings.max_history)

    def _answer(self, text: str, reading: Reading, qv: np.ndarray, ranking: Ranking,
                score: float) -> Answer:
        lang, words, r = reading.language, reading.words, reading.rules
        hits = ranking.hits
        terms = self.lexical.terms(text)
        confident = score >= self.settings.confident_relevance
        gap = (Gap("off_topic") if not hits or score < self.settings.min_relevance
               else self._unmentioned(text, terms, r, [h.text for h in hits], confident))
        if gap:
            return not_found(text, lang.code, words, gap.reason, what=gap.what)
        subject = answerability.subject_of(text, self.lexical, terms, r)
        candidates = self.selector.candidates(qv, hits, ranking.rows)
        picks: list[tuple[Hit, Span]] = []
        shorts: list[tuple[Hit, Span]] = []
        for intent in reading.intents:
            part_terms, part_qv = terms, qv
            if len(reading.intents) > 1:  # each part chooses its sentence by its own meaning and words
                part_terms, part_qv = self.lexical.terms(intent.text), self.embed(intent.text)
                candidates = self.selector.candidates(part_qv, hits, ranking.rows)
            best = (self._not_given(intent, candidates, subject, reading)
                    or self._choose(intent, candidates, part_qv, part_terms, ranking, subject,
                                    confident))
            if isinstance(best, Gap):
                return not_found(text, lang.code, words, best.reason, what=best.what,
                                 subject=best.subject, concept_label=best.concept_label)
            if (best.hit, best.span) not in picks:
                picks.append((best.hit, best.span))
            if best.short is not None:
                shorts.append((best.hit, best.short))
        if len(reading.intents) == 1 and not shorts:
            picks += self.selector.second_sentence(candidates, picks[0])
        picks.sort(key=lambda t: (t[0].rank, t[1][0]))  # reading order
        # k is how many excerpts an answer may cite: those it quotes, then the others of the
        # top k that score nearly as well ("see also").
        see_also = [h for h in hits if h.score >= hits[0].score - self.settings.see_also_margin]
        return compose(text, lang.code, words, picks, shorts, see_also)

    def _choose(self, intent: understand.Intent, candidates: list[Candidate], qv: np.ndarray,
                terms: list[Term], ranking: Ranking, subject: str, confident: bool) -> Choice | Gap:
        """The answering sentence of one question part, or ``no_answer`` when the part asks for
        a name, a number, a date... and no candidate holds one, unless retrieval is
        ``confident`` or a kind of person answers it too (then the sentence is quoted without
        a short answer)."""
        best = self.selector.best(candidates, intent, terms)
        if intent.expected and best.short is not None:
            best = self.selector.with_key_word(best, qv, ranking.hits, ranking.rows, intent, terms)
        if intent.expected and best.short is None and not (confident or intent.category):
            return Gap("no_answer", what=intent.expected, subject=subject)
        return best

    def _unmentioned(self, text: str, terms: list[Term], r: Rules, found: list[str],
                     confident: bool) -> Gap | None:
        """A name of the question the corpus never uses (nor the passages ``found`` spell out)."""
        missing = answerability.missing_name(text, self.lexical, terms, r, found, confident)
        return Gap("not_mentioned", what=missing) if missing else None

    def _not_given(self, intent: understand.Intent, candidates: list[Candidate], subject: str,
                   reading: Reading) -> Gap | None:
        """A kind of fact the question asks for that no candidate sentence holds; or, for "how
        many X", an X the corpus never names."""
        r, reply = reading.rules, reading.language.reply
        for concept in answerability.asked_concepts(intent.text, intent.expected, r, intent.yes_no,
                                                    self.settings.typed_words):
            if not answerability.gives(concept, (c.sentence for c in candidates), r, intent.text):
                return Gap("not_given", subject=subject, concept_label=concept.labels.get(reply, ""))
        if intent.expected == understand.NUMBER and intent.focus:
            counted = answerability.unknown_counted(intent.focus, self.lexical, r)
            if counted:
                return Gap("not_given", concept_label=reading.words.say("count", counted))
        return None
