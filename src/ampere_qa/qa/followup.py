"""Follow-up questions: what "Et où ?", "Lesquels ?" or "What is its purpose?" ask, given the
user's earlier questions.

A question is a follow-up when it says too little to stand alone: at most one content word
beside a pronoun that points back ("its", "there", "elle"), an opening "and"/"et"/"what about",
or nothing but question words ("Où ?", "And how much?"). Anything else is standalone and is
never changed. A follow-up is resolved against the latest earlier question (itself resolved):

* an English pronoun is replaced by what that question was about ("What is its purpose?" ->
  "What is the Capital Market Day's purpose?");
* otherwise the earlier question is added as context: « Et où ? » after « Combien de salariés
  compte Ampere ? » -> « Et où ? (Combien de salariés compte Ampere ?) ».

What the question asks (its type, its parts) is still read from the words the user typed; the
context only steers retrieval. Plain rules over pronouns and connectives: no model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..packs.lang import fold, pack

if TYPE_CHECKING:
    from ..indexing.lexical import LexicalIndex
    from .rules import Rules

_WORD = re.compile(r"[\w'-]+")


def _words(text: str) -> list[str]:
    return [w.strip("'-") for w in _WORD.findall(fold(text))]


def is_followup(question: str, lexical: LexicalIndex, rules: Rules) -> bool:
    """True when ``question`` cannot stand alone (see the module's rules)."""
    folded = fold(question).strip()
    words = _words(question)
    parts = {p for w in words for p in re.split(r"['’-]", w)} | set(words)
    back = rules.subject | rules.possessive | rules.place_back | rules.pointing | rules.back_words
    # "there" alone is weak ("how many engineers work there" is asked standalone too)
    pointing = bool(parts & (back - rules.place_back))
    possessive = bool(parts & rules.possessive)
    content = [t for t in lexical.terms(question)
               if not {fold(w) for w in t.word.split()} & (rules.empty | back)
               # beside a possessive, a name is what it belongs to ("his role at Renault")
               and not (possessive and t.word[:1].isupper())]
    if not content:
        return True
    return len(content) <= 1 and (pointing or bool(rules.opening.match(folded)))


def subject_of(question: str, lexical: LexicalIndex, rules: Rules, article: str = "") -> str:
    """What a question is about, as written: of its names and words the corpus knows, the one
    in fewest passages ("the Capital Market Day" rather than "Renault", "logo" rather than
    "Ampere")."""
    best: tuple[int, int, str] | None = None
    for m in re.finditer(r"(?<!\w)[A-ZÀ-ÖØ-Þ][\w'-]*(?:\s+[A-ZÀ-ÖØ-Þ][\w'-]*)*", question):
        words = m.group(0).split()
        while words and not lexical.analyze(words[0]):
            words.pop(0)  # "Does Ampere" -> "Ampere"
        name = re.sub(r"['’]s$", "", " ".join(words))
        stems = lexical.analyze(name)
        if stems and lexical.knows(stems):
            before = question[max(0, m.start() - len(article) - 1):m.start()].lower()
            shown = f"{article} {name}" if article and before.endswith(article + " ") else name
            rank = (max(lexical.frequency[s] for s in stems), 0, shown)
            best = rank if best is None or rank[:2] < best[:2] else best
    nouns = {m.group(1).lower() for m in rules.nouns.finditer(question)}
    for t in lexical.terms(question):
        known = [o for o in t.options if o and lexical.knows(o)]
        # a word after a determiner is a noun: what a pronoun can stand for ("its own logo")
        if known and not t.word[:1].isupper() and t.word.lower() in nouns:
            rank = (min(max(lexical.frequency[s] for s in o) for o in known), 1,
                    f"{article} {t.word}".strip())
            best = rank if best is None or rank[:2] < best[:2] else best
    return best[2] if best else ""


def _replace(question: str, subject: str, rules: Rules, how: dict[str, Any]) -> str | None:
    """Replace the first pronoun that points back by the subject, or None. ``how`` is the
    language's ``[followup]`` table: how a possessive and a place are written with a subject."""
    out, done = [], False
    tokens = re.split(r"(\W+)", question)
    existential = set(how.get("existential", ()))
    for i, token in enumerate(tokens):
        low = token.lower()
        there = low in rules.place_back and i >= 2 and tokens[i - 2].lower() in existential
        if not done and not there and low in rules.subject | rules.possessive | rules.place_back:
            token = (how["possessive_shown"].format(subject) if low in rules.possessive
                     else how["place_shown"].format(subject) if low in rules.place_back else subject)
            done = True
        out.append(token)
    return "".join(out) if done else None


def resolve(question: str, history: Sequence[str], lexical: LexicalIndex, rules: Rules,
            language: str, language_of: Callable[[str], str], max_history: int = 8) -> str:
    """The question as understood in the conversation; ``question`` itself when it stands alone
    or there is nothing to lean on. ``language_of`` tells an earlier question's language (each
    is read in its own), ``language`` is this one's."""
    previous: tuple[str, str] | None = None
    for h in history[-max_history:]:  # each earlier question read against the one before it
        previous = (h, h) if previous is None else \
            _against(h, *previous, lexical, rules, language_of(h))[1:]
    return question if previous is None else \
        _against(question, *previous, lexical, rules, language)[0]


def _written(question: str, context: str) -> str:
    return f"{question.rstrip(' ?')} ? ({context.strip()})".replace(" ? ?", " ?")


def _against(question: str, previous: str, anchor: str, lexical: LexicalIndex, rules: Rules,
             language: str) -> tuple[str, str, str]:
    """``question`` read against the question before it; with what the next question leans
    on: this one read against the last question that stood alone (``anchor``), and that
    anchor. So a chain nests two deep at most: « Et quand ? (Lesquels ? (Combien de modèles
    …)) », never every follow-up before it (eight « Et où ? » made 1,018 characters)."""
    if not is_followup(question, lexical, rules):
        return question, question, question
    how = pack(language).section("followup") if language in rules.languages else {}
    if how.get("replace") and not rules.opening.match(fold(question).strip()):
        subject = subject_of(previous, lexical, rules, how.get("article", ""))
        replaced = _replace(question, subject, rules, how) if subject else None
        if replaced:
            return replaced, replaced, replaced
    return _written(question, previous), _written(question, anchor), anchor
