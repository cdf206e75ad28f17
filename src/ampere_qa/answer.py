"""Composing the reply: the answer sentence(s), quoted, with numbered citations.

The article is French, and ampere-qa quotes it rather than paraphrasing it (a quote can be
checked; a translation could be wrong), so "answering in the question's language" means the
framing: « D'après l'article : … » or "According to the article: …".
"""

from __future__ import annotations

from .types import Answer, Citation, Hit

# "Not found" when the question is not this much closer to the corpus than to the off-topic
# anchors (see Retriever.relevance). Zero is the natural point; `ampere-qa eval` calibrates it
# on a labelled set (5-fold cross-validated: 0.0024 for the bundled model on
# eval/questions.jsonl, within noise of zero). Build records it in the index manifest.
MIN_RELEVANCE = 0.0

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
