"""Composing the reply: the answer sentence(s), quoted, with numbered citations.

The article is French, and ampere-qa quotes it rather than paraphrasing it (a quote can be
checked; a translation could be wrong), so "answering in the question's language" means the
framing: « D'après l'article : … » or "According to the article: …".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .search import Hit

MESSAGES = {
    "fr": {
        "lead": "D'après l'article : ",
        "quote": "« {} »",
        "not_found": "Je n'ai pas trouvé la réponse à cette question dans l'article.",
    },
    "en": {
        "lead": "According to the article: ",
        "quote": "“{}”",
        "not_found": "I could not find the answer to this question in the article.",
    },
}


@dataclass(frozen=True)
class Citation:
    """A numbered excerpt the answer quotes from; ``start``/``end`` locate it in ``source``.

    ``highlights`` are the spans, within ``text``, of the sentences the answer used (for
    display); they are not part of the JSON contract.
    """

    rank: int
    passage_id: str
    source: str
    start: int
    end: int
    text: str
    score: float
    highlights: tuple[tuple[int, int], ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "passage_id": self.passage_id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "score": round(float(self.score), 6),
        }


@dataclass(frozen=True)
class Answer:
    """What ``Retriever.answer`` returns; ``to_dict()`` is the JSON of ``ampere-qa ask --json``.

    ``language`` is the detected language of the question; ``reply_language`` the one the
    answer is phrased in (French or English).
    """

    question: str
    language: str
    answered: bool
    answer: str
    citations: tuple[Citation, ...] = ()
    reply_language: str = "en"
    # What the "not found" decision compared with the cut-off (Retriever.relevance); not JSON.
    relevance: float | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "language": self.language,
            "answered": self.answered,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
        }


def not_found(question: str, language: str, reply: str) -> Answer:
    return Answer(question, language, False, MESSAGES[reply]["not_found"], (), reply)


def compose(
    question: str, language: str, reply: str, picks: list[tuple[Hit, tuple[int, int]]]
) -> Answer:
    """Quote the picked sentences in order, each followed by the number of its excerpt.

    ``picks`` pairs a hit with a sentence span inside the hit's text. Sentences from the same
    passage share one citation, so no excerpt is cited twice.
    """
    if not picks:
        return not_found(question, language, reply)
    msg = MESSAGES[reply]
    numbers: dict[str, int] = {}
    spans: dict[str, list[tuple[int, int]]] = {}
    hits: dict[str, Hit] = {}
    parts = []
    for hit, span in picks:
        number = numbers.setdefault(hit.passage_id, len(numbers) + 1)
        hits[hit.passage_id] = hit
        spans.setdefault(hit.passage_id, []).append(span)
        parts.append(f"{msg['quote'].format(hit.text[span[0]:span[1]])} [{number}]")
    citations = tuple(
        Citation(
            rank=n, passage_id=pid, source=hits[pid].source, start=hits[pid].start,
            end=hits[pid].end, text=hits[pid].text, score=hits[pid].score,
            highlights=tuple(sorted(spans[pid])),
        )
        for pid, n in numbers.items()
    )
    return Answer(question, language, True, msg["lead"] + " ".join(parts), citations, reply)
