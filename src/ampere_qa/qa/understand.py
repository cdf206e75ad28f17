"""What a question asks for, read from its wording alone (French or English, no model).

* ``kind``: a question to answer from the corpus, a greeting or thanks, or a request the
  retriever cannot serve (summarise, translate, write, give an opinion).
* ``expected``: the type of the answer the question words call for (who -> a name, combien
  -> a number, quand -> a date...), or None when a sentence is the answer (why, what is...).
* ``asks_for``: the kinds of fact a question can ask for that a corpus may simply not give
  (a price, a revenue, a supplier...). Each is a generic concept with the words that ask for
  it and the words that would give it; see :mod:`answerability`.
* ``parts``: a question that asks two things ("Who heads Ampere and how many people work
  there?") is answered part by part.

Rules are plain regular expressions over the question words of the language packs
(:mod:`.rules`): nothing here names a word of a language or a fact of a corpus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..packs.lang import fold
from .rules import DATE, DURATION, MONEY, NAME, NAMES, NUMBER, PERCENT, PLACE, Rules

__all__ = ["DATE", "DURATION", "GREETING", "MONEY", "NAME", "NAMES", "NUMBER", "PERCENT", "PLACE",
           "QUESTION", "REQUEST", "Intent", "answer_type", "asked_clause", "focus_of", "kind_of",
           "parts", "read", "yes_no"]

QUESTION, GREETING, REQUEST = "question", "greeting", "request"


@dataclass(frozen=True)
class Intent:
    """What one question (or one part of it) asks."""

    text: str
    kind: str = QUESTION
    expected: str | None = None
    focus: str = ""  # the noun the question word bears on: "usine" in "Quelle usine…"
    yes_no: bool = False
    # The answer may be a description, not a typed value: a kind of person ("Qui doit mener
    # l'évaluation ?" -> « l'équipe qui prend en charge la personne »), an event ("Jusqu'à
    # quand… ?" -> « la durée de prise en charge »): a sentence without one answers it.
    category: bool = False


def yes_no(text: str, rules: Rules) -> bool:
    """A question answered by yes or no ("Will Ampere be a brand?", "Ampere sera-t-elle…")."""
    return answer_type(text, rules) is None and _yes_no_form(text, rules)


def _yes_no_form(text: str, rules: Rules) -> bool:
    """Opens like a yes/no question and holds no question word."""
    folded = fold(text).strip()
    return bool(rules.yes_no.search(folded)) and not rules.wh_any.search(folded)


def asked_clause(text: str, rules: Rules) -> str:
    """The clause that asks, after a leading clause that only sets the scene ("Dans mon
    Dockerfile, pourquoi…", "When a lender lists me, what must its letter say?"): its "when"
    or "vendre" is context, not what is asked. The whole text when it opens with a question
    word or has no later clause that does."""
    folded = fold(text)
    if _opens_question(folded, rules) or len(folded) != len(text):
        return text
    m = rules.wh_clause.search(folded)
    return text[m.end():] if m and _sets_scene(folded[:m.start()], rules) else text


def _opens_question(folded: str, rules: Rules) -> bool:
    return bool(rules.wh_opening.match(folded)) and not rules.scene.match(folded)


def _sets_scene(clause: str, rules: Rules) -> bool:
    """A leading clause that asks nothing: no question word (but those that ask nothing, as
    in "…fail when testing"), or one that sets the scene."""
    return not rules.wh_any.search(rules.not_a_name.sub(" ", clause)) or bool(rules.scene.match(clause))


def answer_type(text: str, rules: Rules) -> str | None:
    text = asked_clause(text, rules)
    # "où" (where) and "ou" (or) fold alike: "où" is marked first.
    folded = fold(rules.where.sub("_where_", text) if rules.where else text)
    if rules.not_a_name.search(folded):
        folded = rules.not_a_name.sub(" ", folded)
    for name, pattern in rules.types:
        m = pattern.search(folded)
        if m:
            if name == NAME and rules.plural_name and rules.plural_name.search(m.group(0)):
                return NAMES  # "which companies"
            return name
    return None


def focus_of(text: str, rules: Rules) -> str:
    """The noun a "which X" / "combien de X" question bears on ("" when there is none)."""
    m = rules.focus.search(fold(text))
    if not m or m.group(1) in rules.not_focus:
        return ""
    words = [m.group(1)]
    second = m.group(2)
    compound = bool(rules.focus_compound and rules.focus_compound.match(m.group(0)))
    if compound and second and second not in rules.not_focus and (
            second.endswith("s") or re.fullmatch(rules.things, second)):
        words.append(second)  # "which chip company", "how many charging stations"
    a, b = m.start(1), m.end(len(words))
    return text[a:b] if len(text) == len(fold(text)) else " ".join(words)


def kind_of(text: str, rules: Rules) -> str:
    folded = fold(text).strip()
    words = re.findall(r"[\w'-]+", folded)
    if (rules.greeting.match(folded) or (len(words) <= 8 and rules.about_me.search(folded))
            or (words and words[0] in rules.hello and set(words) <= rules.small_talk)):
        return GREETING
    if rules.request.search(folded) or (rules.request_writing.search(folded)
                                        and not rules.wh_opening.match(fold(asked_clause(text, rules)))):
        return REQUEST
    return QUESTION


def parts(text: str, rules: Rules) -> list[str]:
    """The question's parts: itself, or its pieces when it asks two or three things."""
    folded = fold(text)
    cuts = [m for m in rules.split.finditer(folded) if m.start() > 0]
    if cuts and not _opens_question(folded, rules) and _sets_scene(folded[:cuts[0].start()], rules):
        cuts = cuts[1:]  # the first clause sets the scene of the next ("Selon l'article, qui…")
    if not cuts:
        return [text]
    pieces, last = [], 0
    for m in cuts:
        pieces.append(text[last:m.start()])
        last = m.end()
    pieces.append(text[last:])
    pieces = [p.strip(" ,;?") for p in pieces]
    # A piece too short to stand ("and why") would answer nothing on its own.
    if len(pieces) > 3 or any(len(p.split()) < 2 for p in pieces):
        return [text]
    return pieces


def read(text: str, rules: Rules, typed_words: int = 20) -> list[Intent]:
    """The intents of a question: one per part, or one greeting/request. In a part longer than
    ``typed_words`` the question word may sit in a clause ("when Renault decided…, did it
    also…?"): its type is not read."""
    kind = kind_of(text, rules)
    if kind != QUESTION:
        return [Intent(text, kind)]
    intents = []
    for p in parts(text, rules):
        expected = answer_type(p, rules)
        intents.append(Intent(p, QUESTION, expected if len(p.split()) <= typed_words else None,
                              focus_of(p, rules), expected is None and _yes_no_form(p, rules),
                              bool(rules.category.search(fold(asked_clause(p, rules))))))
    return intents
