"""The rules a question is read with: the language packs and domain packs chosen, compiled once
into regular expressions and word sets.

A question is read with the corpus's languages (by default French and English: people ask in
either about the same documents) plus its own, when a pack exists for it; each rule is the
union of those packs' words. Which answer types are tried, and in which order, is logic, not
language: it is fixed here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..packs.domain import ConceptData, Domain, domain
from ..packs.lang import LanguagePack, fold, pack, words

# Answer types, tried in this order on the folded question: the first that matches wins ("how
# much money" is money before "how much" is a number).
NAME, NAMES, NUMBER, PERCENT, MONEY = "name", "names", "number", "percent", "money"
DATE, DURATION, PLACE = "date", "duration", "place"
_TYPE_ORDER = ((PERCENT, "percent"), (MONEY, "money"), (DURATION, "duration"), (NUMBER, "number"),
               (DATE, "date"), (PLACE, "place"), (NAMES, "names"), (NAMES, "names_of"),
               (NAME, "name"))
_SP = r"[ \u00a0\u202f]"
# Not words of a language: symbols and codes of money, abbreviations of scale.
_SYMBOLS = ("€", r"\$", "£", r"usd\b", r"eur\b")
_SCALE_MARKS = ("k", "m")


def words_rx(alternatives: Iterable[str]) -> re.Pattern[str]:
    """One pattern matching any of ``alternatives`` as whole words."""
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?![\w])")


def _alt(items: Iterable[str]) -> str:
    return "|".join(dict.fromkeys(items))  # repeats once, first place kept


@dataclass(frozen=True)
class Concept:
    """A kind of fact, compiled for the languages read: the words that ask for it (folded
    question), the words that give it (folded sentence), its reply label by language."""

    name: str
    labels: dict[str, str]
    asks: re.Pattern[str]
    gives: re.Pattern[str] | None
    money: bool
    types: frozenset[str | None]


class Rules:
    """The compiled rules of ``languages`` (read together) and ``domains``."""

    def __init__(self, languages: tuple[str, ...], domains: tuple[str, ...]):
        self.languages, self.domains = languages, domains
        self.packs: tuple[LanguagePack, ...] = tuple(pack(c) for c in languages)
        self.domain: Domain = domain(domains)
        self._question()
        self._followup()
        self._spans()
        self.concepts = tuple(self._compile(c) for c in self.domain.concepts)

    def _all(self, section: str, key: str) -> list[str]:
        """Every pack's list under ``[section] key``, in pack order."""
        out: list[str] = []
        for p in self.packs:
            value = p.section(section).get(key, [])
            out += value.split() if isinstance(value, str) else list(value)
        return out

    def _words(self, section: str, key: str) -> frozenset[str]:
        return frozenset().union(*(words(p.section(section).get(key, [])) for p in self.packs))

    def _question(self) -> None:
        q = "question"
        things = _alt(self._all(q, "things") + [t for c in self.languages
                                                for t in self.domain.things.get(c, ())])
        self.things = f"(?:{things})"
        roles = rf"^(?:{_alt(self._all(q, 'role_determiners'))})?(?:{_alt(self._all(q, 'roles'))})\W*$"
        self.types = tuple(
            (kind, words_rx([*(a.replace("{things}", self.things) for a in self._all(q, key)),
                             *([roles] if kind == NAME else [])]))
            for kind, key in _TYPE_ORDER if self._all(q, key))
        plural = self._all(q, "plural_name")
        self.plural_name = re.compile(rf"(?:{_alt(plural)})$") if plural else None
        self.capitalised_nouns = any(p.section(q).get("capitalised_nouns") for p in self.packs)
        nationality = self._all(q, "nationality")
        self.nationality = re.compile(_alt(nationality)) if nationality else None
        units = self._all(q, "glued_units")
        self.glued_quantity = re.compile(rf"\d+(?:[.,]\d+)?(?:{_alt(units)})", re.I) if units else None
        self.not_a_name = words_rx(self._all(q, "not_a_name") or ["(?!)"])
        self.greeting = re.compile(rf"^(?:(?:{_alt(self._all(q, 'greeting'))})[\s,!.?;:]*)+$")
        self.hello = self._words(q, "hello")
        self.small_talk = self.hello | self._words(q, "small_talk")
        self.about_me = words_rx(self._all(q, "about_me"))
        self.request = words_rx(self._all(q, "request"))
        # Optional keys, as not_a_name: a pack without them matches nothing.
        self.request_writing = words_rx(self._all(q, "request_writing") or ["(?!)"])
        self.own_situation = words_rx(self._all(q, "own_situation") or ["(?!)"])
        self.wh = f"(?:{_alt(self._all(q, 'wh'))})"
        # A question word opening the question or a clause may follow a preposition.
        before = _alt(self._all(q, "wh_prepositions"))
        before = rf"(?:(?:{before})\s+)?" if before else ""
        self.wh_opening = re.compile(rf"^\W*{before}{self.wh}(?!\w)")
        self.scene = re.compile(rf"^\W*(?:{_alt(self._all(q, 'scene') or ['(?!)'])})")
        # A question word, or a mark of one ("qu'"): anywhere, or opening a clause after a comma.
        asking = rf"{self.wh}(?!\w)" + "".join("|" + m for m in self._all(q, "wh_marks"))
        self.wh_clause = re.compile(rf",\s+(?={before}(?:{asking}))")
        self.wh_any = re.compile(rf"(?<!\w){asking}")  # the marks bind no "(?<!\w)", as always
        self.split = re.compile(rf"(?:\s*[?;]\s*|\s*,?\s+(?:{_alt(self._all(q, 'joins'))})\s+|,\s+)"
                                rf"(?={self.wh}\b)")
        self.yes_no = re.compile(_alt(self._all(q, "yes_no")))
        self.manner = words_rx(self._all(q, "manner") or ["(?!)"])
        self.category = words_rx(self._all(q, "category") or ["(?!)"])
        self.focus = re.compile(rf"(?<!\w)(?:{_alt(self._all(q, 'focus'))})(\w[\w-]*)(?: (\w[\w-]*))?")
        compound = [f for p in self.packs if p.section(q).get("focus_compounds")
                    for f in p.section(q)["focus"]]
        self.focus_compound = re.compile(f"(?:{_alt(compound)})") if compound else None
        self.not_focus = self._words(q, "not_focus")
        self.people = self._words(q, "people")
        marks = [p.section(q)["where"] for p in self.packs if p.section(q).get("where")]
        self.where = re.compile(rf"(?i)(?<!\w)(?:{_alt(marks)})(?=\W|$)") if marks else None

    def _followup(self) -> None:
        f = "followup"
        self.subject = self._words(f, "subject")
        self.possessive = self._words(f, "possessive")
        self.place_back = self._words(f, "place")
        self.pointing = self._words(f, "pointing")
        self.back_words = self._words(f, "back")
        preps, wh = _alt(self._all(f, "opening_prepositions")), _alt(self._all(f, "opening_wh"))
        self.opening = re.compile(rf"^(?:{_alt(self._all(f, 'opening'))}|(?:{preps}) (?:{wh}))\b")
        self.empty = frozenset(fold(w) for w in self._words(f, "empty"))
        own = _alt(rf"{w}\s+" for w in self._all(f, "own"))
        self.nouns = re.compile(rf"(?i)\b(?:{_alt(self._all(f, 'determiners'))})\s*(?:{own})?"
                                r"([^\W\d_][\w-]*)")

    def _spans(self) -> None:
        s = "spans"
        sp: Callable[[list[str]], list[str]] = lambda items: [i.replace("{sp}", _SP) for i in items]  # noqa: E731
        num = rf"\d{{1,3}}(?:{_SP}\d{{3}})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
        scale = rf"(?:{_SP}(?:{_alt([*self._all(s, 'scale'), *_SCALE_MARKS])}))?"
        year = r"(?:19|20)\d{2}"
        months, numbers = _alt(self._all(s, "months")), _alt(self._all(s, "number_words"))
        currency = _alt([*_SYMBOLS[:1], *self._all(s, "currency"), *_SYMBOLS[1:]])
        before = _alt(sp(self._all(s, "before_currency")))
        before = f"(?:{before})?" if before else ""
        day = _alt(self._all(s, "day_article"))
        first = _alt([*self._all(s, "first_day"), r"\d{1,2}"])
        of = _alt(self._all(s, "of"))
        i = re.IGNORECASE
        self.span_patterns = (
            (PERCENT, re.compile(rf"(?<![\w.,])(?:{num}){_SP}?(?:%|{_alt(sp(self._all(s, 'percent')))})", i)),
            (MONEY, re.compile(rf"(?<![\w.,])(?:(?:{num}){scale}{_SP}?{before}(?:{currency})"
                               rf"|[$€£]{_SP}?(?:{num}){scale})", i)),
            (DATE, re.compile(
                rf"(?<!\w)(?:(?:{_alt(self._all(s, 'ordinals'))})\s+(?:{_alt(self._all(s, 'periods'))})"
                rf"(?:\s+(?:{of})?{year})?"
                rf"|(?:(?:{day})?(?:{first})\s+)?(?:{months})(?:\s+(?:\d{{1,2}},?\s+)?{year})?"
                rf"|{year})(?!\w)", i)),
            (DURATION, re.compile(rf"(?<!\w)(?:{_alt(self._all(s, 'one'))}|{numbers}|\d+)\s+"
                                  rf"(?:{_alt(self._all(s, 'units'))})(?!\w)", i)),
            (NUMBER, re.compile(rf"(?<![\w.,])(?:{num}){scale}(?![\w%])|(?<!\w)(?:{numbers})(?!\w)", i)),
        )
        self.money = dict(self.span_patterns)[MONEY]  # an amount, as a short answer finds one
        word = r"(?:[A-ZÀ-ÖØ-Þ][\w'’-]*|\d+[A-Za-z]\w*|[A-Z]+\d+\w*)"
        self.name = re.compile(rf"(?<!\w){word}(?:\s(?:(?:{_alt(self._all(s, 'particles'))})\s?)?{word})*")
        joins = rf"\s(?:{_alt(self._all(s, 'list_and'))})\s|\s&\s"
        self.name_list = re.compile(rf"{self.name.pattern}(?:(?:,\s|{joins}){self.name.pattern})+")
        self.name_pair = re.compile(rf"{self.name.pattern}(?:(?:{joins}){self.name.pattern})")
        self.common = frozenset(fold(w) for w in self._words(s, "common"))
        nots = "".join(f"(?<!{n})" for n in self._all(s, "not_place_before"))
        self.place_before = re.compile(
            rf"{nots}(?:\b(?:{_alt(self._all(s, 'place_before'))})\s)$", re.IGNORECASE)

    def _compile(self, c: ConceptData) -> Concept:
        codes = ("any", *self.languages)
        asks = [a for code in codes for a in c.asks.get(code, ())]
        gives = [g for code in codes for g in c.gives.get(code, ())]
        raw = [g for code in codes for g in c.gives_raw.get(code, ())]
        parts = ([words_rx(gives).pattern] if gives else []) + raw
        return Concept(c.name, c.labels, words_rx(asks or ["(?!)"]),
                       re.compile("|".join(parts)) if parts else None, c.money, c.types)


@functools.cache
def rules(languages: tuple[str, ...], domains: tuple[str, ...]) -> Rules:
    return Rules(languages, domains)
