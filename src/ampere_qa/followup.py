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
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .understand import fold

if TYPE_CHECKING:
    from .lexical import LexicalIndex

# Earlier questions looked at, newest last.
MAX_HISTORY = 8

_EN_SUBJECT = {"it", "they", "them", "he", "she", "him", "this", "these", "those"}
# "Which ones?", "qui d'autre ?": they point back too, but are not replaced.
_BACK = {"ones", "other", "others", "else", "another", "lesquels", "lesquelles", "lequel",
         "laquelle", "autre", "autres", "ca", "cela", "eux", "that", "any"}
_EN_POSSESSIVE = {"its", "their", "his", "her"}
_EN_PLACE = {"there"}
_FR_POINTING = {"il", "elle", "ils", "elles", "lui", "leur", "leurs", "son", "sa", "ses", "y",
                "celle-ci", "celui-ci", "ceux-ci", "celles-ci", "la-bas", "t-il", "t-elle",
                "t-ils", "t-elles", "l'y"}
_OPENING = re.compile(r"^(?:and|et|also|aussi|what about|how about|and what about|et pour|et en|"
                      r"et quant a|quid de|and for|same for|pareil pour|et sinon"
                      # a fragment opened by a preposition: "In which country?", "Pour quand ?"
                      r"|(?:in|at|on|for|from|by|since|until|dans|en|a|pour|depuis|jusqu'a|sur)"
                      r" (?:which|what|when|where|quel|quelle|quels|quelles|quand|ou))\b")
# Words that carry no subject of their own ("How many people work there?").
_EMPTY = frozenset(fold(w) for w in """
work works working worked have has had do does did make makes get gets go goes be is are was
were will would can could should thing things one ones about exactly then so also too else
travaille travaillent travailler avoir a ont fait font faire etre est sont sera seront aller
va vont chose choses exactement alors donc aussi sinon encore deja concretement meant supposed
article text texte name named names mention mentioned cite cited cites citees mentionne
mentionnes nomme nommes say says said dit about part
""".split())
_WORD = re.compile(r"[\w'-]+")


def _words(text: str) -> list[str]:
    return [w.strip("'-") for w in _WORD.findall(fold(text))]


def is_followup(question: str, lexical: LexicalIndex) -> bool:
    """True when ``question`` cannot stand alone (see the module's rules)."""
    folded = fold(question).strip()
    words = _words(question)
    parts = {p for w in words for p in re.split(r"['’-]", w)} | set(words)
    back = _EN_SUBJECT | _EN_POSSESSIVE | _EN_PLACE | _FR_POINTING | _BACK
    # "there" alone is weak ("how many engineers work there" is asked standalone too)
    pointing = bool(parts & (back - _EN_PLACE))
    possessive = bool(parts & _EN_POSSESSIVE)
    content = [t for t in lexical.terms(question)
               if not {fold(w) for w in t.word.split()} & (_EMPTY | back)
               # beside a possessive, a name is what it belongs to ("his role at Renault")
               and not (possessive and t.word[:1].isupper())]
    if not content:
        return True
    return len(content) <= 1 and (pointing or bool(_OPENING.match(folded)))


def subject_of(question: str, lexical: LexicalIndex) -> str:
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
            before = question[max(0, m.start() - 4):m.start()].lower()
            shown = f"the {name}" if before.endswith("the ") else name
            rank = (max(lexical.frequency[s] for s in stems), 0, shown)
            best = rank if best is None or rank[:2] < best[:2] else best
    nouns = {m.group(1).lower() for m in re.finditer(
        r"(?i)\b(?:the|a|an|its|their|his|her|this|that|kind of|type of|le|la|les|l'|un|une|des|du|"
        r"son|sa|ses|type d'|sorte de|genre de)"
        r"\s*(?:own\s+|propre\s+)?([^\W\d_][\w-]*)", question)}
    for t in lexical.terms(question):
        known = [o for o in t.options if o and lexical.knows(o)]
        # a word after a determiner is a noun: what a pronoun can stand for ("its own logo")
        if known and not t.word[:1].isupper() and t.word.lower() in nouns:
            rank = (min(max(lexical.frequency[s] for s in o) for o in known), 1, "the " + t.word)
            best = rank if best is None or rank[:2] < best[:2] else best
    return best[2] if best else ""


def _english_replace(question: str, subject: str) -> str | None:
    """Replace the first English pronoun that points back by the subject, or None."""
    out, done = [], False
    tokens = re.split(r"(\W+)", question)
    for i, token in enumerate(tokens):
        low = token.lower()
        existential = low == "there" and i >= 2 and tokens[i - 2].lower() in ("is", "are", "was", "were")
        if not done and not existential and low in _EN_SUBJECT | _EN_POSSESSIVE | _EN_PLACE:
            token = (subject + "'s" if low in _EN_POSSESSIVE
                     else "at " + subject if low in _EN_PLACE else subject)
            done = True
        out.append(token)
    return "".join(out) if done else None


def resolve(question: str, history: Sequence[str], lexical: LexicalIndex,
            language: str = "fr") -> str:
    """The question as understood in the conversation; ``question`` itself when it stands alone
    or there is nothing to lean on."""
    previous: tuple[str, str] | None = None
    for h in history[-MAX_HISTORY:]:  # each earlier question read against the one before it
        previous = (h, h) if previous is None else _against(h, *previous, lexical, "fr")[1:]
    return question if previous is None else _against(question, *previous, lexical, language)[0]


def _written(question: str, context: str) -> str:
    return f"{question.rstrip(' ?')} ? ({context.strip()})".replace(" ? ?", " ?")


def _against(question: str, previous: str, anchor: str, lexical: LexicalIndex,
             language: str) -> tuple[str, str, str]:
    """``question`` read against the question before it; with what the next question leans
    on: this one read against the last question that stood alone (``anchor``), and that
    anchor. So a chain nests two deep at most: « Et quand ? (Lesquels ? (Combien de modèles
    …)) », never every follow-up before it (eight « Et où ? » made 1,018 characters)."""
    if not is_followup(question, lexical):
        return question, question, question
    if language == "en" and not _OPENING.match(fold(question).strip()):
        subject = subject_of(previous, lexical)
        replaced = _english_replace(question, subject) if subject else None
        if replaced:
            return replaced, replaced, replaced
    return _written(question, previous), _written(question, anchor), anchor
