"""Composing the reply: the short answer, the answer sentence(s) quoted with numbered
citations, or a "not found" that says why.

ampere-qa quotes the corpus rather than paraphrasing it (a quote can be checked; a translation
could be wrong), so "answering in the question's language" means the framing: « D'après
l'article : … » or "According to the documents: …", and the reasons. The words are the reply
language's pack (``[replies]``), with the corpus's noun ("l'article", "the documents") put in
and the words that agree with it in their singular or plural form (``[agreement]``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..packs.lang import pack
from ..types import Answer, Citation, Hit, ShortAnswer


@dataclass(frozen=True)
class Wording:
    """The replies of one language, with the corpus's noun in them."""

    code: str
    replies: dict[str, Any]
    forms: dict[str, str]
    ui: dict[str, Any]

    def say(self, key: str, *args: str, **fields: str) -> str:
        return str(self.replies[key]).format(*args, **self.forms, **fields)

    def show(self, key: str, **fields: object) -> str:
        """A message of the page (``[ui]``): "Cited excerpts (3)", "Posez une question sur l'article."."""
        return str(self.ui[key]).format(**self.forms, **fields)

    def no_answer(self, expected: str, **fields: str) -> str:
        return str(self.replies["no_answer"][expected]).format(**self.forms, **fields)


def _plural(noun: str, agreement: dict[str, Any]) -> bool:
    """Whether the noun is plural by the pack's rule: its first word a plural determiner
    ("les documents"), or its last word's ending ("the documents", not "the press")."""
    first = noun.replace("'", " ").replace("’", " ").split()[:1]
    if first and first[0].lower() in agreement.get("plural_determiners", ()):
        return True
    ending = str(agreement.get("plural_ending") or "")
    return bool(ending) and noun.endswith(ending) and not noun.endswith(ending * 2)


@functools.cache
def wording(code: str, noun: str = "") -> Wording:
    """The replies in language ``code`` about ``noun`` (the pack's default noun when empty)."""
    p = pack(code)
    agreement = p.section("agreement")
    noun = noun or str(agreement["default_noun"])
    plural = _plural(noun, agreement)
    forms = {"noun": noun, "Noun": noun[:1].upper() + noun[1:]}
    forms |= {word: (many if plural else word) for word, many in agreement.get("plural", {}).items()}
    return Wording(code, p.replies, forms, p.ui)


def not_found(question: str, language: str, words: Wording, reason: str = "off_topic", *,
              what: str = "", subject: str = "", concept_label: str = "") -> Answer:
    """A reply that is not an answer, saying why (``reason``: see ``types.REASONS``)."""
    if reason == "not_mentioned":
        text = words.say("not_mentioned", what=what)
    elif reason == "not_given":
        text = words.say("not_given", concept=concept_label,
                         **{"for": words.say("for", subject) if subject else ""})
    elif reason == "no_answer":
        text = words.no_answer(what, about=words.say("about", subject) if subject else "")
    else:
        text = words.say(reason)
    return Answer(question, language, False, text, (), words.code, reason=reason)


def compose(
    question: str, language: str, words: Wording, picks: list[tuple[Hit, tuple[int, int]]],
    shorts: Sequence[tuple[Hit, tuple[int, int]]] = (), see_also: Sequence[Hit] = (),
) -> Answer:
    """Quote the picked sentences in order, each followed by the number of its excerpt; the
    short answer(s) first; then "see also" the other excerpts that nearly matched as well.

    ``picks`` pairs a hit with a sentence span inside the hit's text; ``shorts`` a hit with the
    span of a short answer inside it. Sentences from the same passage share one citation, so no
    excerpt is cited twice.
    """
    if not picks:
        return not_found(question, language, words)
    numbers: dict[str, int] = {}
    spans: dict[str, list[tuple[int, int]]] = {}
    hits: dict[str, Hit] = {}
    parts = []
    for hit, span in picks:
        number = numbers.setdefault(hit.passage_id, len(numbers) + 1)
        hits[hit.passage_id] = hit
        spans.setdefault(hit.passage_id, []).append(span)
        parts.append(f"{words.say('quote', hit.text[span[0]:span[1]])} [{number}]")
    more = [h for h in see_also if h.passage_id not in numbers]
    for h in more:
        numbers[h.passage_id] = len(numbers) + 1
        hits[h.passage_id] = h
        spans[h.passage_id] = []
    if more:
        parts.append(words.say("see_also", ", ".join(f"[{numbers[h.passage_id]}]" for h in more)).strip())
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
        lead = words.say("short", "; ".join(texts))
        hit, (a, b) = shorts[0]
        if hit.passage_id in numbers:
            short = ShortAnswer(texts[0], numbers[hit.passage_id], hit.start + a, hit.start + b)
    return Answer(question, language, True, lead + words.say("lead") + " ".join(parts), citations, words.code,
                  short_answer=short)
