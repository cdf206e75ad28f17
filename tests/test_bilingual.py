"""The English-to-French lexicon (indexing/bilingual.py) with the real PyStemmer: how its keys are
reduced, how a question's words are looked up (longest phrase first), the spelling repair's
cutoff, and the format of the shipped data/en_fr.tsv."""

from __future__ import annotations

import difflib
import itertools
from collections import defaultdict
from importlib import resources

import pytest

from ampere_qa.indexing import bilingual
from ampere_qa.indexing.bilingual import MAX_WORDS, Lexicon, lexicon

LINES = [
    "# a comment\tthat has a tab",
    "",
    "   ",
    "no tab on this line",
    "employees\tsalarié| employé ",
    "Employee\tpersonnel",  # the same key once reduced: its options are added
    "chief executive officer\tpdg|président-directeur général",
    "chief executive\tdirigeant",
    "chief\tchef",
    "one two three four\ttoo long",
    "\tno english side",
    "empty\t | |",
    "engineers\tingénieurs",
    "factory\tusine",
]


@pytest.fixture(scope="module")
def small() -> Lexicon:
    return Lexicon(LINES)


def _shipped_lines() -> list[str]:
    text = resources.files("ampere_qa").joinpath("data/en_fr.tsv").read_text("utf-8")
    return text.splitlines()


# keys ----------------------------------------------------------------------------------------


def test_key_reduces_english_words_to_stems(small):
    assert small.key("employees") == small.key("Employee") == small.key("EMPLOYEES") == ("employe",)
    assert small.key("Chief Executive Officers") == ("chief", "execut", "offic")
    # Words are letters and digits joined by an apostrophe or a hyphen; the rest separates them.
    assert small.key("cost-of-living") == ("cost-of-liv",)
    assert small.key("the plant's  _output_, (2024)") == ("the", "plant", "output", "2024")
    assert small.key(" ,;- ") == ()


def test_lines_become_entries(small):
    assert small.entries == {
        ("employe",): ("salarié", "employé", "personnel"),
        ("chief", "execut", "offic"): ("pdg", "président-directeur général"),
        ("chief", "execut"): ("dirigeant",),
        ("chief",): ("chef",),
        ("engin",): ("ingénieurs",),
        ("factori",): ("usine",),
    }
    # Comments, blank lines, lines without a tab, keys over MAX_WORDS words, an empty English
    # side and a French side of blanks are all skipped.
    assert all(0 < len(k) <= MAX_WORDS for k in small.entries)
    # Single-word keys as written (lower case), for the spelling repair; phrases are not there.
    assert small.words == ["employees", "employee", "chief", "engineers", "factory"]


# translate -----------------------------------------------------------------------------------


def test_translate_finds_inflected_words(small):
    assert small.translate(["Employees"]) == [(0, 1, ("salarié", "employé", "personnel"))]
    assert small.translate(["employee"]) == small.translate(["EMPLOYEES"])
    assert small.translate(["nothing", "here"]) == []
    assert small.translate([]) == []


def test_translate_takes_the_longest_phrase_first(small):
    words = ["The", "Chief", "Executive", "Officer", "met", "the", "chief", "executive", "and",
             "a", "chief"]
    assert small.translate(words) == [
        (1, 4, ("pdg", "président-directeur général")),
        (6, 8, ("dirigeant",)),
        (10, 11, ("chef",)),
    ]


def test_translate_of_the_shipped_lexicon():
    found = lexicon().translate(["How", "many", "employees", "work", "at", "the", "battery",
                                 "factory", "?"])
    spans = {(i, j): french for i, j, french in found}
    assert "salarié" in spans[(2, 3)]
    assert "usine de batteries" in spans[(6, 8)]  # "battery factory", not "battery" then "factory"
    assert (6, 7) not in spans and (7, 8) not in spans
    # Spans never overlap and come in order.
    ends = [(i, j) for i, j, _ in found]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends))


# closest -------------------------------------------------------------------------------------


def test_closest_repairs_a_misspelt_word(small):
    assert small.closest("enginers") == "engineers"
    assert small.closest("Facory") == "factory"  # case does not matter
    assert small.closest("quantum") is None
    assert small.closest("chief executive") is None  # phrases are not spelling candidates


def test_closest_cutoff(small, monkeypatch):
    ratio = difflib.SequenceMatcher(None, "fctry", "factory").ratio()
    assert 0.8 < ratio < bilingual.SPELLING_CUTOFF
    assert small.closest("fctry") is None
    assert difflib.SequenceMatcher(None, "facory", "factory").ratio() >= bilingual.SPELLING_CUTOFF
    assert small.closest("facory") == "factory"
    monkeypatch.setattr(bilingual, "SPELLING_CUTOFF", 0.8)
    assert small.closest("fctry") == "factory"


def test_closest_in_the_shipped_lexicon():
    assert lexicon().closest("enginers") == "engineer"  # the file's entry is singular
    assert lexicon().closest("emplyee") == "employee"
    assert lexicon().closest("xqzvw") is None


# the shipped file ----------------------------------------------------------------------------


def test_shipped_file_format():
    lines = _shipped_lines()
    assert lines[0].startswith("#")
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    assert len(body) > 3000
    seen: set[str] = set()
    for line in body:
        assert line.count("\t") == 1, line
        english, french = line.split("\t")
        assert english == english.strip().lower() and english, line
        assert english not in seen, f"{english!r} twice"
        seen.add(english)
        assert 1 <= len(bilingual._WORD.findall(english)) <= MAX_WORDS, line
        options = french.split("|")
        assert all(o and o == o.strip() for o in options), line


def test_shipped_lexicon_holds_every_line():
    lines = _shipped_lines()
    shipped = lexicon()
    assert lexicon() is shipped  # read once
    expected: dict[tuple[str, ...], tuple[str, ...]] = defaultdict(tuple)
    for line in lines:
        if line.strip() and not line.startswith("#"):
            english, french = line.split("\t")
            expected[shipped.key(english)] += tuple(french.split("|"))
    assert shipped.entries == dict(expected)
    # English words that reduce alike share one entry, their options in file order.
    assert any(len(shipped.entries[k]) > len(v) for k, v in _first_lines(lines, shipped).items())


def _first_lines(lines: list[str], lx: Lexicon) -> dict[tuple[str, ...], tuple[str, ...]]:
    first: dict[tuple[str, ...], tuple[str, ...]] = {}
    for line in lines:
        if line.strip() and not line.startswith("#"):
            english, french = line.split("\t")
            first.setdefault(lx.key(english), tuple(french.split("|")))
    return first
