"""Is the question answered by the corpus, or only about it? And if not, why not.

A question can be close to the corpus in meaning and still not be answered by it: "What is the
price of the R5?" is about the article when the article names the R5 and gives no price. Three
checks, each giving a reason the reply states:

* ``not_mentioned``: a name in the question (capitalised, an acronym, a word with digits) that
  the corpus never uses, even translated: « L'article ne mentionne pas Tesla. »
* ``not_given``: the question asks for a kind of fact (a price, a revenue, a supplier...) and
  no sentence among the retrieved passages holds that kind of fact: "The article gives no price
  for R5."
* ``no_answer``: the question asks for a name, a number or a date, and the sentences that match
  it hold none (see :func:`search.Retriever.answer`).

Kinds of fact are concepts of the domain packs a corpus chooses (:mod:`.domain`), never
facts of one corpus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..indexing.lexical import LexicalIndex, Term
from ..packs.lang import fold
from .rules import Concept, Rules, words_rx
from .understand import asked_clause

__all__ = ["Concept", "Gap", "asked_concepts", "gives", "missing_name", "names_in", "subject_of",
           "unknown_counted"]


@dataclass(frozen=True)
class Gap:
    """Why the corpus does not answer: ``reason`` code and what was missing."""

    reason: str
    what: str  # the missing name, or the concept's name
    subject: str = ""  # for not_given: the name the question is about, if any
    concept: Concept | None = None


def asked_concepts(question: str, expected: str | None, rules: Rules, yes_no: bool = False,
                   typed_words: int = 20) -> list[Concept]:
    """The kinds of fact a question asks for; none in a long question, where such words may
    be context ("…who offered to take a financial stake in the new structure?"), nor in a
    yes/no question ("Will Ampere be sold as a brand?" asks for no sales figure), nor in one
    that asks for a way ("How is the amount of a fine determined?")."""
    folded = fold(asked_clause(question, rules))  # "Pour vendre en ligne, qui…" asks no sales
    if len(question.split()) > typed_words or yes_no or rules.manner.search(folded):
        return []
    return [c for c in rules.concepts if expected in c.types and c.asks.search(folded)]


def gives(concept: Concept, sentences: Iterable[str], rules: Rules, question: str = "") -> bool:
    """Whether a sentence holds that kind of fact: its words, an amount of money when money
    gives it (found as the short answers' amounts are, :mod:`.spans`), or the very word of the
    question that asks for it. That word in the sentence means the documents speak of the same
    thing ("les bénéfices du bouclier" asks no profit figure of a text about those benefits);
    its absence is what a "not given" reply is sure of."""
    asked = {m.group(0) for m in concept.asks.finditer(fold(question))} if question else set()
    echo = words_rx(re.escape(w) for w in sorted(asked)) if asked else None
    return any((concept.gives is not None and concept.gives.search(folded))
               or (echo is not None and echo.search(folded))
               or (concept.money and rules.money.search(s))
               for s in sentences for folded in (fold(s),))


_SENTENCE_START = re.compile(r"^\W*|[.!?…]\s+[\"«“(]?")
_ENTITY = re.compile(r"(?<![\w'’])(?:[A-ZÀ-ÖØ-Þ][\w-]*|\w*\d\w*)(?![\w])")


def names_in(question: str, terms: Sequence[Term], rules: Rules) -> list[Term]:
    """The terms that are names: capitalised past the first word, acronyms, words with digits
    (but a number glued to a unit, "72h", which is a quantity)."""
    # In a language that capitalises every noun (German), only acronyms and words with digits
    # stand out as names.
    # A capital that opens a sentence ("… help? Can the CNIL…") names nothing either.
    openers = {m.end() for m in _SENTENCE_START.finditer(question)}
    spots = {m.group(0) for m in _ENTITY.finditer(question)
             if (m.start() not in openers and not rules.capitalised_nouns) or m.group(0).isupper()
             or any(ch.isdigit() for ch in m.group(0))}
    first = re.match(r"\W*(\w+)", question)
    if first and first.group(1).isupper() and len(first.group(1)) > 1:
        spots.add(first.group(1))
    return [t for t in terms
            if any(w in spots for w in re.findall(r"[\w-]+", t.word))
            and not re.fullmatch(r"\d+", t.word)
            and not (rules.nationality and rules.nationality.search(t.word))
            and not (rules.glued_quantity and rules.glued_quantity.fullmatch(t.word))]


def missing_name(question: str, lexical: LexicalIndex, terms: Sequence[Term],
                 rules: Rules, found: Sequence[str] = (), confident: bool = False) -> str | None:
    """The first name of the question the corpus never uses, in any of its forms. A name
    only in brackets is the question's own gloss ("Base de données économiques et sociales
    (BDES)"): the words before it say what it is, and a text may never use the short form.
    An acronym the passages ``found`` spell out ("DSN": "déclaration sociale nominative",
    "PV": "procès-verbal") is used by them. When retrieval is ``confident``, a name only in a
    leading clause where the user tells their own situation ("Je suis né à Nouméa, à qui…")
    is theirs, not one the documents must use; "Chez Tesla, qui dirige ?" still needs Tesla."""
    glossed = {w for inner in _BRACKETS.findall(question) for w in _words(inner)}
    outside = _words(_BRACKETS.sub(" ", question))
    asks = own_situation_asks(question, rules) if confident else question
    # Compared word by word (\w+): "x5" of "x5-pro" is in the clause that asks.
    asked = None if asks == question else {w.casefold() for w in re.findall(r"\w+", asks)}
    for t in names_in(question, terms, rules):
        words = _words(t.word)
        if words <= glossed and not words & outside:
            continue
        if asked is not None and not {w.casefold() for w in re.findall(r"\w+", t.word)} & asked:
            continue
        if not any(lexical.knows(option) for option in t.options) and not spelled_out(t.word, found, lexical):
            return t.word
    return None


def own_situation_asks(question: str, rules: Rules) -> str:
    """What ``question`` asks after a leading clause in which the user tells their own
    situation (the pack's ``own_situation`` words: "je", "my"…); the whole question when it
    has no such clause."""
    clause = asked_clause(question, rules)
    scene = fold(question[:len(question) - len(clause)])
    return clause if scene and rules.own_situation.search(scene) else question


def spelled_out(acronym: str, texts: Sequence[str], lexical: LexicalIndex) -> bool:
    """Whether a text holds words whose initials spell ``acronym`` (2 to 6 capitals), stop
    words allowed between them but never spelling a letter: "pour vos" is no "PV"."""
    if not (2 <= len(acronym) <= 6 and acronym.isalpha() and acronym.isupper()):
        return False
    stops = "|".join(re.escape(w) for w in sorted(lexical.stop_words, key=len, reverse=True))
    function = rf"(?:{stops})(?!\w)"
    gap = rf"(?:[\s'-]+{function})*[\s'-]+"
    rx = re.compile(r"(?<!\w)" + gap.join(rf"(?!{function}){re.escape(c)}\w+" for c in fold(acronym)))
    return any(rx.search(fold(t)) for t in texts)


_BRACKETS = re.compile(r"\(([^()]{1,80})\)")


def _words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[\w-]+", text)}


def unknown_counted(focus: str, lexical: LexicalIndex, rules: Rules) -> str | None:
    """For "how many X", X when the corpus knows no form of it (nor of the lexicon word it
    looks like a misspelling of): then it cannot give their number."""
    from ..indexing.bilingual import lexicon

    terms = lexical.terms(focus)
    if not terms or any(fold(w) in rules.people for w in focus.split()):
        return None
    for t in terms:
        if any(lexical.knows(o) for o in t.options):
            return None
        near = lexicon().closest(t.word)
        if near and any(lexical.knows(o) for o in lexical.terms(near)[0].options if o):
            return None
    return focus


def subject_of(question: str, lexical: LexicalIndex, terms: Sequence[Term], rules: Rules) -> str:
    """The name a question is about, as typed, if the corpus knows it ("R5")."""
    for t in names_in(question, terms, rules):
        if any(lexical.knows(option) for option in t.options):
            return t.word
    return ""
