"""Language packs: what ampere-qa knows of a language, as data, one TOML file per language
named by its code (``fr.toml``, ``en.toml``, ``de.toml``). Adding a language is adding a file
(and its tests): nothing in the code names a language's words.

A pack holds the function words that tell its questions apart, the question words of each
answer type, greetings and requests, follow-up pronouns, months and number words, name
particles, the stemmer and stop words BM25 uses, and every reply in that language. The
loader checks a pack's shape once, when it is first asked for, and :mod:`.rules` compiles the
packs a question is read with into regular expressions.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any

from ...errors import PackError
from .. import read, shipped

# The sections every pack has, and the keys each must hold.
_REQUIRED = {
    "detect": ("function_words",),
    "question": ("percent", "money", "duration", "number", "date", "place", "names", "names_of",
                 "name", "greeting", "request", "wh", "joins", "yes_no", "focus"),
    "followup": ("opening", "empty", "determiners"),
    "spans": ("months", "number_words", "units", "common", "place_before"),
    "replies": ("lead", "quote", "off_topic", "not_mentioned", "not_given", "no_answer", "count",
                "greeting", "request"),
    "agreement": ("default_noun",),
    "ui": ("language", "excerpts", "understood", "empty", "too_long", "bad", "error", "names",
           "description", "stale"),
}


def strip_accents(word: str) -> str:
    """``word`` without its accents, case kept: how BM25 stems are stored ("Cleon" finds "Cléon")."""
    if word.isascii():  # NFKD leaves ASCII as it is; most words of a query's sentences are
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Lower case without accents, apostrophes made straight: the form question rules match."""
    return strip_accents(text.lower().replace("’", "'"))


def words(value: str | list[str]) -> frozenset[str]:
    """A pack's word list: a whitespace-separated string or a list."""
    return frozenset(value.split() if isinstance(value, str) else value)


@dataclass(frozen=True)
class LanguagePack:
    """One language's pack as read from its file; ``section(name)`` gives a table of it."""

    code: str
    name: str
    stemmer: str
    stopwords: str
    data: dict[str, Any]

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        return value if isinstance(value, dict) else {}

    @property
    def replies(self) -> dict[str, Any]:
        return self.section("replies")

    @property
    def ui(self) -> dict[str, Any]:
        return self.section("ui")


def available() -> tuple[str, ...]:
    """The codes of the packs shipped, sorted."""
    return shipped(__name__)


@functools.cache
def pack(code: str) -> LanguagePack:
    """The pack of language ``code``; :class:`PackError` when there is none or it is malformed."""
    data = read(__name__, code, "no language pack for")
    for section, keys in _REQUIRED.items():
        table = data.get(section)
        missing = [k for k in keys if not isinstance(table, dict) or k not in table]
        if missing:
            raise PackError(f"language pack {code}.toml: [{section}] lacks {', '.join(missing)}")
    if data.get("code") != code:
        raise PackError(f"language pack {code}.toml says code = {data.get('code')!r}")
    return LanguagePack(code, str(data.get("name", code)), str(data.get("stemmer", "")),
                        str(data.get("bm25s_stopwords", code)), data)

