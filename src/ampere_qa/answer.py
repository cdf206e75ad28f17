"""Composing the reply: the short answer, the answer sentence(s) quoted with numbered
citations, or a "not found" that says why.

The article is French, and ampere-qa quotes it rather than paraphrasing it (a quote can be
checked; a translation could be wrong), so "answering in the question's language" means the
framing: « D'après l'article : … » or "According to the article: …", and the reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .types import Answer, Citation, Hit, ShortAnswer

# "Not found" when the question is not this much closer to the corpus than to the off-topic
# anchors (see Retriever.relevance). Zero is the natural point; `ampere-qa eval` calibrates it
# on a labelled set (5-fold cross-validated: 0.0024 for the bundled model on
# eval/questions.jsonl, within noise of zero). Build records it in the index manifest.
MIN_RELEVANCE = 0.0

MESSAGES: dict[str, dict[str, Any]] = {
    "fr": {
        "lead": "D'après l'article : ",
        "quote": "« {} »",
        "short": "{} — ",
        "see_also": " Voir aussi {}.",
        "off_topic": "Cette question ne semble pas porter sur l'article : je n'y ai pas trouvé de réponse.",
        "not_mentioned": "L'article ne mentionne pas {}.",
        "not_given": "L'article ne donne {}{}.",
        "for": " pour {}",
        "no_answer": {
            "name": "L'article ne dit pas qui{}.",
            "names": "L'article ne donne pas ces noms{}.",
            "number": "L'article ne donne pas ce chiffre{}.",
            "percent": "L'article ne donne pas ce pourcentage{}.",
            "money": "L'article ne donne pas ce montant{}.",
            "date": "L'article ne donne pas cette date{}.",
            "duration": "L'article ne donne pas cette durée{}.",
            "place": "L'article ne dit pas où{}.",
        },
        "about": " (à propos de {})",
        "greeting": ("Bonjour ! Je réponds aux questions sur l'article en citant ses phrases. "
                     "Demandez par exemple qui, quand, combien ou pourquoi."),
        "request": ("Je ne peux que répondre à des questions précises en citant l'article : je ne "
                    "résume pas, ne traduis pas, n'écris pas et ne donne pas d'avis. Posez une "
                    "question sur un fait : qui, quand, combien, pourquoi…"),
    },
    "en": {
        "lead": "According to the article: ",
        "quote": "“{}”",
        "short": "{} — ",
        "see_also": " See also {}.",
        "off_topic": "This question does not seem to be about the article: I found no answer to it there.",
        "not_mentioned": "The article does not mention {}.",
        "not_given": "The article gives {}{}.",
        "for": " for {}",
        "no_answer": {
            "name": "The article does not say who{}.",
            "names": "The article does not name them{}.",
            "number": "The article does not give that number{}.",
            "percent": "The article does not give that percentage{}.",
            "money": "The article does not give that amount{}.",
            "date": "The article does not give that date{}.",
            "duration": "The article does not say how long{}.",
            "place": "The article does not say where{}.",
        },
        "about": " (about {})",
        "greeting": ("Hello! I answer questions about the article by quoting it. Ask who, when, "
                     "how many or why, for instance."),
        "request": ("I can only answer precise questions by quoting the article: I do not "
                    "summarise, translate, write or give opinions. Ask about a fact: who, when, "
                    "how many, why…"),
    },
}


def count_label(reply: str, counted: str) -> str:
    """"no number of charging stations" / « aucun nombre de bornes »."""
    return f"aucun nombre de « {counted} »" if reply == "fr" else f"no number of {counted}"


def not_found(question: str, language: str, reply: str, reason: str = "off_topic", *,
              what: str = "", subject: str = "", concept_label: str = "") -> Answer:
    """A reply that is not an answer, saying why (``reason``: see ``types.REASONS``)."""
    msg = MESSAGES[reply]
    if reason == "not_mentioned":
        text = msg["not_mentioned"].format(what)
    elif reason == "not_given":
        text = msg["not_given"].format(concept_label, msg["for"].format(subject) if subject else "")
    elif reason == "no_answer":
        text = msg["no_answer"][what].format(msg["about"].format(subject) if subject else "")
    else:
        text = msg[reason]
    return Answer(question, language, False, text, (), reply, reason=reason)


def compose(
    question: str, language: str, reply: str, picks: list[tuple[Hit, tuple[int, int]]],
    shorts: Sequence[tuple[Hit, tuple[int, int]]] = (), see_also: Sequence[Hit] = (),
) -> Answer:
    """Quote the picked sentences in order, each followed by the number of its excerpt; the
    short answer(s) first; then "see also" the other excerpts that nearly matched as well.

    ``picks`` pairs a hit with a sentence span inside the hit's text; ``shorts`` a hit with the
    span of a short answer inside it. Sentences from the same passage share one citation, so no
    excerpt is cited twice.
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
    more = [h for h in see_also if h.passage_id not in numbers]
    for h in more:
        numbers[h.passage_id] = len(numbers) + 1
        hits[h.passage_id] = h
        spans[h.passage_id] = []
    if more:
        parts.append(msg["see_also"].format(", ".join(f"[{numbers[h.passage_id]}]" for h in more)).strip())
    citations = tuple(
        Citation(
            rank=n, passage_id=pid, source=hits[pid].source, start=hits[pid].start,
            end=hits[pid].end, text=hits[pid].text, score=hits[pid].score,
            context=hits[pid].context, highlights=tuple(sorted(spans[pid])),
        )
        for pid, n in numbers.items()
    )
    short = None
    lead = ""
    if shorts:
        texts = [h.text[a:b] for h, (a, b) in shorts]
        lead = msg["short"].format("; ".join(texts))
        hit, (a, b) = shorts[0]
        if hit.passage_id in numbers:
            short = ShortAnswer(texts[0], numbers[hit.passage_id], hit.start + a, hit.start + b)
    return Answer(question, language, True, lead + msg["lead"] + " ".join(parts), citations, reply,
                  short_answer=short)
