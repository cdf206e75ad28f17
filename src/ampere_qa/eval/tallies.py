"""Running sums of the comparison: per system, per question language and over all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..qa.language import detect
from .sets import GROUPS, Question
from .systems import DEPTH, Response, short_text

if TYPE_CHECKING:
    from ..types import Answer

Metrics = dict[str, float | int | None]  # one system, one group of questions (the JSON output)


def ratio(x: float, n: int) -> float | None:
    return round(x / n, 4) if n else None


@dataclass
class Tally:
    """Running sums for one system and one group of questions."""

    answerable: int = 0
    unanswerable: int = 0
    hit1: int = 0
    hit3: int = 0
    rr: float = 0.0
    answer_hit: int = 0
    abstained_ok: int = 0
    abstained_wrong: int = 0
    language_ok: int = 0
    duplicate_citations: int = 0
    has_answers: bool = False
    short_expected: int = 0
    short_exact: int = 0
    # Unanswerable questions per group, and how many of them got "not found".
    asked: dict[str, int] = field(default_factory=dict)
    declined: dict[str, int] = field(default_factory=dict)

    def add(self, q: Question, response: Response) -> None:
        """Count one question: its ranking if it is answerable, the reply if there is one."""
        if q.answerable:
            self.answerable += 1
            self.add_ranking(q, response.ranking)
        else:
            self.unanswerable += 1
        if response.reply is not None:
            self.add_reply(q, response.reply)

    def add_ranking(self, q: Question, texts: Sequence[str]) -> None:
        rank = next((i for i, t in enumerate(texts[:DEPTH], 1) if q.matches(t)), None)
        self.hit1 += rank == 1
        self.hit3 += rank is not None and rank <= 3
        self.rr += 1.0 / rank if rank else 0.0

    def add_reply(self, q: Question, reply: Answer) -> None:
        self.has_answers = True
        self.language_ok += detect(q.question).code == q.lang
        texts = [c.text for c in reply.citations]
        self.duplicate_citations += len(texts) != len(set(texts))
        if q.answerable:
            self.answer_hit += reply.answered and q.matches(reply.answer)
            self.abstained_wrong += not reply.answered
            if q.short:
                self.short_expected += 1
                self.short_exact += reply.answered and q.short_matches(short_text(reply))
        else:
            self.abstained_ok += not reply.answered
            self.asked[q.group] = self.asked.get(q.group, 0) + 1
            self.declined[q.group] = self.declined.get(q.group, 0) + (not reply.answered)

    def metrics(self) -> Metrics:
        a, u = self.answerable, self.unanswerable
        out: Metrics = {
            "answerable": a, "unanswerable": u,
            "hit@1": ratio(self.hit1, a), "hit@3": ratio(self.hit3, a), "mrr@10": ratio(self.rr, a),
        }
        if self.has_answers:
            out.update({
                "answer_hit": ratio(self.answer_hit, a),
                "abstention": ratio(self.abstained_ok, u),
                "false_abstention": ratio(self.abstained_wrong, a),
                "language_accuracy": ratio(self.language_ok, a + u),
                "duplicate_citations": self.duplicate_citations,
                "short_answers": self.short_expected,
                "short_answer_em": ratio(self.short_exact, self.short_expected),
            })
            for g in GROUPS[1:]:
                out[f"{g}_not_found"] = ratio(self.declined.get(g, 0), self.asked.get(g, 0))
        return out


@dataclass
class Tallies:
    """One system's tallies: one per question language, and ``all``."""

    by_group: dict[str, Tally]

    @classmethod
    def over(cls, questions: Sequence[Question]) -> Tallies:
        return cls({g: Tally() for g in sorted({q.lang for q in questions} | {"all"})})

    def add(self, q: Question, response: Response) -> None:
        for g in (q.lang, "all"):
            self.by_group[g].add(q, response)

    def metrics(self) -> dict[str, Metrics]:
        return {g: t.metrics() for g, t in self.by_group.items()}
