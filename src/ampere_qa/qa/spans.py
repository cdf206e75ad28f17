"""Typed spans in a sentence: the candidates for a short answer.

Numbers, percentages, amounts, dates and durations are found by regular expressions; names
(people, organisations, places, products) as runs of capitalised words, or words with digits
("R5"), joined by name particles ("Luca de Meo"); a list of names is names joined by commas
and "et"/"and". French and English forms are both recognised. Offsets are into the text given.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..packs.lang import fold
from . import understand as u
from .rules import Rules

if TYPE_CHECKING:
    from ..indexing.lexical import LexicalIndex, Term


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int
    text: str


def _strip_leading_common(text: str, start: int, end: int, common: frozenset[str]) -> tuple[int, int] | None:
    """Drop capitalised function words a name run starts with ("Selon Renault" -> "Renault")."""
    while start < end:
        m = re.match(r"[\w’'-]+", text[start:end])
        if not m:
            return None
        word = m.group(0)
        head = re.split(r"['’]", word)[0]
        if fold(head) in common or fold(word) in common:
            if "'" in word or "’" in word:  # "L'objectif": the word after the apostrophe
                start += len(head) + 1
                if start < end and not text[start].isupper():
                    return None
                continue
            start += len(word)
            while start < end and text[start].isspace():
                start += 1
            continue
        return start, end
    return None


def names(text: str, rules: Rules) -> list[Span]:
    out: list[Span] = []
    for m in rules.name.finditer(text):
        kept = _strip_leading_common(text, m.start(), m.end(), rules.common)
        if kept is None:
            continue
        a, b = kept
        kind = u.PLACE if rules.place_before.search(text[max(0, a - 8):a]) else u.NAME
        out.append(Span(kind, a, b, text[a:b]))
    for pattern in (rules.name_list, rules.name_pair):  # "A, B et C", and "B et C" within it
        for m in pattern.finditer(text):
            kept = _strip_leading_common(text, m.start(), m.end(), rules.common)
            if kept and all(s.start != kept[0] or s.end != kept[1] for s in out):
                out.append(Span(u.NAMES, kept[0], kept[1], text[kept[0]:kept[1]]))
    return out


def find(text: str, rules: Rules) -> list[Span]:
    """Every typed span in ``text``; a number inside a date, an amount or a percentage is not
    also reported as a bare number, nor a name that is only a number."""
    taken: list[tuple[int, int]] = []
    out: list[Span] = []
    for kind, pattern in rules.span_patterns:
        for m in pattern.finditer(text):
            a, b = m.span()
            while b > a and text[b - 1] in " ,.":
                b -= 1
            if kind == u.NUMBER and any(x <= a and b <= y for x, y in taken):
                continue
            if kind in (u.PERCENT, u.MONEY, u.DATE):
                taken.append((a, b))
            out.append(Span(kind, a, b, text[a:b]))
    numbers = [(s.start, s.end) for s in out]
    out += [s for s in names(text, rules) if not any(x <= s.start and s.end <= y for x, y in numbers)]
    return sorted(out, key=lambda s: (s.start, -s.end))


# Which span kinds can answer each expected type, and how far each is from the best fit
# (0: fits; a list of names answers "who" as well as one name does).
ACCEPTS: dict[str, dict[str, float]] = {
    u.NAME: {u.NAME: 0.0, u.NAMES: 0.0, u.PLACE: 1.0},
    u.NAMES: {u.NAMES: 0.0, u.NAME: 0.5, u.PLACE: 1.0},
    u.PLACE: {u.PLACE: 0.0},
    u.NUMBER: {u.NUMBER: 0.0, u.PERCENT: 1.0, u.MONEY: 2.0},
    u.PERCENT: {u.PERCENT: 0.0},
    u.MONEY: {u.MONEY: 0.0},
    u.DATE: {u.DATE: 0.0},
    u.DURATION: {u.DURATION: 0.0},
}


def pick(sentence: str, intent: u.Intent, matched: list[Term], focus: list[Term],
         lexical: LexicalIndex, rules: Rules, topic_share: float = 0.5) -> tuple[int, int, float] | None:
    """The span of ``sentence`` that answers ``intent`` and how well its kind fits (1 for the
    expected kind, less for an accepted other), or None when it holds none.

    Candidates are the spans of an accepted kind that the question does not itself contain
    ("Qui dirige Ampere ?" is not answered by "Ampere"). A number followed by the noun the
    question counts ("combien de salariés") is what it asks for; otherwise the span nearest
    that noun, then nearest the question's other words, wins; an earlier accepted kind beats
    a later one.
    """
    accepted = ACCEPTS.get(intent.expected or "", {})
    if not accepted:
        return None
    qwords = set(re.findall(r"\w+", fold(intent.text)))
    near = _term_positions(sentence, matched, lexical)
    focused = _term_positions(sentence, focus, lexical)
    units = focus or matched
    if any(fold(w) in rules.people for t in focus for w in t.word.split()):
        units = [*units, *_people_terms(lexical, rules.people)]
    best: tuple[float, Span, bool] | None = None
    for s in find(sentence, rules):
        if s.kind not in accepted:
            continue
        words = re.findall(r"\w+", fold(s.text))
        if words and all(w in qwords for w in words):
            continue
        score = -accepted[s.kind]
        topic = s.kind in (u.NAME, u.NAMES, u.PLACE) and _is_topic(s.text, lexical, topic_share)
        if s.kind in (u.NUMBER, u.PERCENT, u.MONEY):
            after = set(lexical.analyze(sentence[s.end:s.end + 40])[:3])
            if any(any(o and set(o) <= after for o in t.options) for t in units):
                score += 2.0
        elif s.kind in (u.NAME, u.NAMES, u.PLACE):
            score += 0.2 * min(len(s.text.split()) - 1, 2)
            if topic:
                score -= 1.5
        if focused:
            score -= min(abs(p - s.start) for p in focused) / 50
        if near:
            score -= min(min(abs(p - s.start), abs(p - s.end)) for p in near) / 200
        if best is None or score > best[0]:
            best = (score, s, topic)
    if best is None:
        return None
    _, span, topic = best
    fits = accepted[span.kind] == 0.0 and not topic
    return span.start, span.end, 1.0 if fits else 0.5


_PEOPLE_TERMS: weakref.WeakKeyDictionary[LexicalIndex, dict[frozenset[str], list[Term]]] = \
    weakref.WeakKeyDictionary()


def _people_terms(lexical: LexicalIndex, people: frozenset[str]) -> list[Term]:
    """The words people are counted under, as terms of this index (once per index, not per
    sentence)."""
    known = _PEOPLE_TERMS.setdefault(lexical, {})
    if people not in known:
        known[people] = lexical.terms(" ".join(sorted(people)))
    return known[people]


def _is_topic(name: str, lexical: LexicalIndex, share: float) -> bool:
    """A name found in at least ``share`` of the passages is what the corpus is about
    ("Renault" in an article on Renault), seldom the answer to "who"."""
    stems = lexical.analyze(name)
    size = max(lexical.size, 1)
    return bool(stems) and all(lexical.frequency.get(st, 0) / size >= share for st in stems)



def _term_positions(sentence: str, matched: list[Term], lexical: LexicalIndex) -> list[int]:
    """Where the question's matched words stand in the sentence (character offsets)."""
    stems = {s for t in matched for o in t.options for s in o}
    out = []
    for m in re.finditer(r"\w\w+", sentence):
        analyzed = lexical.analyze(m.group(0))
        if analyzed and analyzed[0] in stems:
            out.append(m.start())
    return out
