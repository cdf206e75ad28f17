"""The evaluation: every question through every system, tallied per language, with the
wrong replies, the relevance scores, the calibrated cut-off and the follow-up check."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .baselines import Bm25Paragraphs, DenseParagraphs, paragraphs_of
from .calibrate import Calibration, Score, calibrate
from .dialogues import standalone_changes
from .sets import Question
from .systems import AmpereQA, System, short_text
from .tallies import Metrics, Tallies

if TYPE_CHECKING:
    from ..search import Retriever
    from ..types import Answer


@dataclass(frozen=True)
class Failure:
    """A question answered wrongly: an answer without gold, a "not found" where one was
    expected or not, or a short answer that is not one of those expected."""

    id: str
    question: str
    answered: bool
    answer: str
    reason: str | None
    short_answer: str | None
    expected_short: list[str] | None


def failure(q: Question, reply: Answer) -> Failure | None:
    """How ``reply`` fails ``q``, or None when it is right."""
    right = reply.answered and q.matches(reply.answer) if q.answerable else not reply.answered
    short = short_text(reply)
    short_wrong = bool(q.short) and not q.short_matches(short)
    if right and not short_wrong:
        return None
    return Failure(q.id, q.question, reply.answered, reply.answer, reply.reason, short,
                   list(q.short) or None)


@dataclass
class Report:
    """Metrics per system (ours and the baselines) and per question language."""

    systems: dict[str, dict[str, Metrics]]
    failures: list[Failure] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)  # relevance per question
    calibration: Calibration | None = None
    # Questions read differently when asked after the one before them (follow-up reading).
    standalone_changed: list[str] = field(default_factory=list)

    def add_reply(self, q: Question, reply: Answer) -> None:
        """Keep a reply's failure, if any, and its relevance score, if it has one."""
        if (wrong := failure(q, reply)) is not None:
            self.failures.append(wrong)
        if reply.relevance is not None:  # greetings and requests are told apart before retrieval
            self.scores.append(Score(q.id, q.answerable, q.group, reply.relevance))

    def to_dict(self) -> dict[str, Any]:
        return {"systems": self.systems,
                "calibration": self.calibration.to_dict() if self.calibration else {},
                "failures": [asdict(f) for f in self.failures],
                "standalone_changed": self.standalone_changed}


def compare(systems: Sequence[System], questions: Sequence[Question],
            progress: bool = False) -> Report:
    """Run every question through every system, in order; tally per language. The failures and
    scores are those of the systems that reply (of ampere-qa and its baselines, ampere-qa)."""
    tallies = {s.name: Tallies.over(questions) for s in systems}
    report = Report(systems={})
    items: Iterable[Question] = questions
    if progress:
        from tqdm import tqdm

        items = tqdm(questions, desc="evaluating", unit="question", leave=False)
    for q in items:
        for system in systems:
            response = system.respond(q.question)
            tallies[system.name].add(q, response)
            if response.reply is not None:
                report.add_reply(q, response.reply)
    report.systems = {name: t.metrics() for name, t in tallies.items()}
    return report


def systems_of(retriever: Retriever) -> list[System]:
    """ampere-qa and its two baselines over the same index's paragraphs."""
    paras = paragraphs_of(retriever)
    return [AmpereQA(retriever), Bm25Paragraphs(paras), DenseParagraphs(retriever.embedder, paras)]


def evaluate(retriever: Retriever, questions: Sequence[Question],
             progress: bool = False) -> Report:
    """Run every question through ampere-qa and both baselines; tally per language; calibrate
    the "not found" cut-off on the scores; check that no standalone question reads as a
    follow-up."""
    report = compare(systems_of(retriever), questions, progress)
    report.calibration = calibrate(report.scores)
    report.standalone_changed = standalone_changes(retriever, questions)
    return report
