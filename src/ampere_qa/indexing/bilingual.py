"""English words to the French words a French text would use, for word matching across languages.

The lexicon (``data/en_fr.tsv``) is general vocabulary written for ampere-qa (MIT, like the
code): ``english<TAB>french|french…``, English side up to three words. Both sides are reduced
to stems (PyStemmer: English for the keys, French for the values, accents folded) so that
"employees" finds the entry "employee" and "salariés" matches "salarié". The French side is
kept as written: the word matcher reduces it the way it reduces the corpus
(``LexicalIndex.terms``).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from importlib import resources

MAX_WORDS = 3
# How alike (difflib ratio) a misspelt word and a lexicon word must be to be taken for it.
SPELLING_CUTOFF = 0.85
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_lock = threading.Lock()


class Lexicon:
    def __init__(self, lines: list[str]):
        import Stemmer

        self._en = Stemmer.Stemmer("english").stemWords
        self.entries: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.words: list[str] = []  # single-word English keys as written, for spelling repair
        for line in lines:
            if not line.strip() or line.startswith("#") or "\t" not in line:
                continue
            english, french = line.rstrip("\n").split("\t", 1)
            key = self.key(english)
            if not key or len(key) > MAX_WORDS:
                continue
            options = tuple(f.strip() for f in french.split("|") if f.strip())
            if options:
                self.entries[key] = self.entries.get(key, ()) + options
                if len(key) == 1:
                    self.words.append(english.strip().lower())

    def key(self, english: str) -> tuple[str, ...]:
        return tuple(self._en([w.lower() for w in _WORD.findall(english)]))

    def translate(self, words: list[str]) -> list[tuple[int, int, tuple[str, ...]]]:
        """Entries found in a word sequence, longest first: (start, end, French translations)."""
        stems = self._en([w.lower() for w in words])
        found = []
        i = 0
        while i < len(stems):
            for n in range(min(MAX_WORDS, len(stems) - i), 0, -1):
                options = self.entries.get(tuple(stems[i:i + n]))
                if options:
                    found.append((i, i + n, options))
                    i += n
                    break
            else:
                i += 1
        return found


    def closest(self, word: str) -> str | None:
        """The lexicon word a misspelt one most likely is ("enginers" -> "engineers")."""
        import difflib

        found = difflib.get_close_matches(word.lower(), self.words, n=1, cutoff=SPELLING_CUTOFF)
        return found[0] if found else None


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    with _lock:
        text = resources.files("ampere_qa").joinpath("data/en_fr.tsv").read_text("utf-8")
        return Lexicon(text.splitlines())
