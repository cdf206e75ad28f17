"""Splitting documents into retrieval passages, and collapsing duplicate passages.

A passage is a paragraph, or a run of whole sentences when a paragraph is longer than
``max_chars``; ~1,000 characters of French or English is ~250 tokens, well under the model's 512.
Every passage keeps where it comes from: ``document.text[start:end] == passage.text`` exactly
(offsets are code points into the decoded file, no normalisation applied; see ``corpus``).
Headings (Markdown, HTML) are never inside a passage: they cut the text into sections, and the
path of headings above a passage is its ``context``.
Normalisation (NFC, case folding, punctuation and whitespace removed) is only used to compare
passages when deduplicating.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace

from ..packs.lang import available, pack
from ..types import Location, Passage, Span
from .corpus import Document
from .markup import Heading, context_of


# A sentence ends at . ! ? or … (possibly followed by closing quotes or brackets), before
# whitespace and something that can start a sentence. Single capitals, short abbreviations
# ("M.", "Dr.": every language pack's [sentences] abbreviations, since a text quotes names of any
# language) and decimals ("1.5") do not match because of the lookbehinds and the capital/digit
# requirement. A match starts only at a run's first mark (or its second, after an abbreviation:
# "M.. X"), and the run is taken possessively: tried from every mark of a run, a run of 20,000
# dots took 7 s.
@functools.cache
def _sentence_end() -> re.Pattern[str]:
    shorts = dict.fromkeys(a for code in available()
                           for a in pack(code).section("sentences").get("abbreviations", []))
    after = "".join(rf"(?<!\b{re.escape(a)})" for a in shorts)
    return re.compile(
        rf"""(?:(?<![.!?…])(?<!\b[A-Z]){after}
               |(?<=(?<![.!?…])[.!?…]))
            [.!?…]++["»”’)\]]*+
            (?=\s+["«“(\[]?[A-ZÀ-ÖØ-Þ0-9])""",
        re.VERBOSE,
    )
_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")
_NEWLINE = re.compile(r"\n")
_BLANK_LINE_NEXT = re.compile(r"[ \t\r]*\n")


@dataclass(frozen=True)
class SplitSettings:
    """How documents are cut and deduplicated; recorded in the index manifest."""

    max_chars: int = 1000
    # Near-duplicates: Jaccard similarity of word 3-gram sets. One changed word in a 60-word
    # paragraph gives ~0.90, a reworded sentence in it ~0.75, unrelated paragraphs ~0.0.
    shingle_words: int = 3
    near_duplicate_jaccard: float = 0.8
    # Consecutive paragraphs of a section are packed into one passage up to this many
    # characters (0: a passage per paragraph): a FAQ answer or a doc page written a line per
    # sentence becomes passages that say what they are about, while the answer is still chosen
    # sentence by sentence. 600 measured best of 0/600/1000 on a FAQ and a documentation corpus.
    pack_chars: int = 600
    # Each document is also cut into pieces of up to this many characters, across paragraphs and
    # headings, whose vectors are the document's evidence in the ranking (retrieve/ranker.py);
    # 0: none. 600-2,000 measured alike on a FAQ and a documentation corpus; 1,000 is what
    # chunk-and-embed pipelines cut.
    window_chars: int = 1000

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class DedupReport:
    exact: int
    near: int

    @property
    def collapsed(self) -> int:
        return self.exact + self.near


def _strip_span(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def paragraphs(text: str, start: int = 0, end: int | None = None) -> Iterator[Span]:
    """Paragraph spans of ``text[start:end]`` (absolute offsets): a blank line always ends one,
    and so does a line break after a line that ends a sentence (one-paragraph-per-line files);
    a hard-wrapped line does not."""
    end = len(text) if end is None else end
    line_start = start
    for m in _NEWLINE.finditer(text, start, end):
        line_end = m.start()
        # Only the line is looked at, never the paragraph so far: copying that at every line
        # break made a 2 MB paragraph of short lines quadratic. A blank line ends a paragraph
        # before it, so a line of spaces here has only spaces before it in the paragraph.
        line = text[line_start:line_end].rstrip()
        blank_next = _BLANK_LINE_NEXT.match(text, m.end(), end) is not None
        ends_sentence = bool(line) and line[-1] in ".!?…»\"”:)"
        heading = start == line_start and line.lstrip().startswith("#")
        if blank_next or ends_sentence or heading:
            a, b = _strip_span(text, start, line_end)
            if a < b:
                yield a, b
            start = m.end()
        line_start = m.end()
    a, b = _strip_span(text, start, end)
    if a < b:
        yield a, b


def sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans within ``text[start:end]`` (absolute offsets, whitespace trimmed). A piece
    with no letter (a list number "1.", "." on a line of its own, "***") belongs to the sentence
    after it, or before it when last: embedded alone, its vector sat near every question's and
    was quoted as an answer; a stretch with no letter at all has no sentence."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    cur = start
    pending: int | None = None  # where letterless pieces waiting for the next sentence began
    for cut in [m.end() for m in _sentence_end().finditer(text, start, end)] + [end]:
        a, b = _strip_span(text, cur, cut)
        cur = cut
        if a >= b:
            continue
        if _LETTER.search(text, a, b) is None:
            pending = a if pending is None else pending
            continue
        spans.append((a if pending is None else pending, b))
        pending = None
    if pending is not None and spans:
        spans[-1] = (spans[-1][0], _strip_span(text, pending, end)[1])
    return spans


def _hard_split(text: str, span: Span, max_chars: int) -> Iterator[Span]:
    """Cut one over-long sentence at whitespace so no piece exceeds ``max_chars``."""
    a, end = span
    while end - a > max_chars:
        cut = text.rfind(" ", a + 1, a + max_chars)
        cut = cut if cut > a else a + max_chars
        yield _strip_span(text, a, cut)
        a = cut
    yield _strip_span(text, a, end)


def chunks(text: str, max_chars: int, start: int = 0, end: int | None = None,
           pack_chars: int = 0) -> Iterator[tuple[Span, list[Span]]]:
    """Passage spans with their sentence spans (both absolute) in ``text[start:end]``: runs of
    whole paragraphs up to ``pack_chars`` (a paragraph alone when 0), a paragraph longer than
    ``max_chars`` cut into packed sentences."""
    run: list[Span] = []  # the sentences of the paragraphs packed so far
    for pa, pb in paragraphs(text, start, end):
        sents = [piece for s in sentences(text, pa, pb) for piece in _hard_split(text, s, max_chars)]
        if not sents:
            continue
        if run and pb - run[0][0] > pack_chars:
            yield (run[0][0], run[-1][1]), run
            run = []
        if pb - pa <= max_chars:
            run.extend(sents)
            continue
        group: list[Span] = run
        run = []
        for s in sents:
            if group and s[1] - group[0][0] > max_chars:
                yield (group[0][0], group[-1][1]), group
                group = []
            group.append(s)
        run = group  # the long paragraph's last piece may take the next paragraphs
    if run:
        yield (run[0][0], run[-1][1]), run


def windows(text: str, size: int) -> list[str]:
    """``text`` cut on whitespace into pieces of up to ``size`` characters (a longer word is a
    piece of its own), whitespace runs made single spaces: a document's evidence units."""
    out: list[str] = []
    current: list[str] = []
    length = 0
    for word in text.split():
        if current and length + 1 + len(word) > size:
            out.append(" ".join(current))
            current, length = [], 0
        length += len(word) + (1 if current else 0)
        current.append(word)
    return [*out, " ".join(current)] if current else out


def passage_id(source: str, start: int, end: int, text: str) -> str:
    """Stable id from where the passage stands and what it says."""
    key = f"{source}\0{start}\0{end}\0{text}".encode()
    return hashlib.sha256(key).hexdigest()[:16]


def sections(text: str, headings: Iterable[Heading]) -> Iterator[tuple[int, int, str]]:
    """The stretches of body text between headings, each with the heading path above it."""
    path: list[Heading] = []
    pos = 0
    for h in sorted(headings, key=lambda h: h.start):
        if pos < h.start:
            yield pos, h.start, context_of(path)
        while path and path[-1].level >= h.level:
            path.pop()
        path.append(h)
        pos = max(pos, h.end)
    if pos < len(text):
        yield pos, len(text), context_of(path)


def split_documents(docs: Iterable[Document], settings: SplitSettings) -> list[Passage]:
    """Every passage of every document, in reading order, before deduplication."""
    out: list[Passage] = []
    for doc in docs:
        for start, end, context in sections(doc.text, doc.headings):
            for (a, b), sents in chunks(doc.text, settings.max_chars, start, end, settings.pack_chars):
                text = doc.text[a:b]
                out.append(Passage(
                    id=passage_id(doc.source, a, b, text),
                    text=text,
                    locations=(Location(doc.source, a, b),),
                    sentences=tuple((sa - a, sb - a) for sa, sb in sents),
                    context=context,
                ))
    return out


def normalize(text: str) -> str:
    """The comparison key: NFC, case-folded, words only, single spaces."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFC", text).casefold()))


def _shingles(norm: str, n: int) -> frozenset[str]:
    words = norm.split()
    if len(words) <= n:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))


# Near-duplicate candidates compared with one passage, at most, and read from each of its
# shingles' lists. Prefix filtering (below) finds every passage that can reach the threshold:
# on the CNIL FAQ (2,825 passages) at most 7, through lists of at most 7. A corpus built so that
# thousands of passages share their rarest word 3-grams would otherwise make dedup quadratic
# again; past the cap, the latest in reading order are kept (a copy is usually close by).
MAX_NEAR_CANDIDATES = 32


def _prefix_length(size: int, threshold: float) -> int:
    """How many of a set's rarest shingles another set must share one of for their Jaccard
    to reach ``threshold`` (prefix filtering: J >= t needs |A & B| >= t |A|, so two sets that
    share none of their |A| - ceil(t |A|) + 1 rarest, in one global order, cannot reach it)."""
    return size - math.ceil(threshold * size - 1e-9) + 1


def deduplicate(passages: list[Passage], settings: SplitSettings) -> tuple[list[Passage], DedupReport]:
    """Collapse exact and near-duplicate passages into the first one, keeping all locations
    (and the first one's context: the same words under another heading are still a duplicate).

    Exact: same normalised text. Near: Jaccard of word-shingle sets at or above the threshold,
    against the kept passage that is most similar (the latest of equals). Candidates come from
    the rarest shingles of each set only (prefix filtering, exact) and sets of a size that can
    reach the threshold, so common 3-grams shared by thousands of passages cost nothing, and
    at most :data:`MAX_NEAR_CANDIDATES` are compared: near-linear in the corpus.
    """
    t = settings.near_duplicate_jaccard
    keys = [normalize(p.text) for p in passages]
    sets = {key: _shingles(key, settings.shingle_words) for key in keys}  # one per distinct text
    frequency: Counter[str] = Counter(s for sh in sets.values() for s in sh)
    kept: list[Passage] = []
    extra: dict[int, list[Location]] = defaultdict(list)
    by_key: dict[str, int] = {}
    kept_sets: list[frozenset[str]] = []
    postings: dict[str, list[int]] = defaultdict(list)
    exact = near = 0
    for p, key in zip(passages, keys, strict=True):
        if key in by_key:
            extra[by_key[key]].append(p.locations[0])
            exact += 1
            continue
        sh = sets[key]
        rarest = sorted(sh, key=lambda s: (frequency[s], s))[:_prefix_length(len(sh), t)]
        found = {i for s in rarest for i in postings.get(s, ())[-MAX_NEAR_CANDIDATES:]}
        fits = sorted((i for i in found if t * len(sh) <= len(kept_sets[i]) <= len(sh) / t),
                      reverse=True)[:MAX_NEAR_CANDIDATES]
        best = max(((len(sh & kept_sets[i]) / len(sh | kept_sets[i]), i) for i in fits),
                   default=(0.0, -1))
        if best[0] >= t:
            extra[best[1]].append(p.locations[0])
            near += 1
            continue
        idx = len(kept)
        by_key[key] = idx
        kept.append(p)
        kept_sets.append(sh)
        for s in rarest:
            postings[s].append(idx)
    merged = [
        replace(p, locations=p.locations + tuple(extra[i])) if extra[i] else p
        for i, p in enumerate(kept)
    ]
    return merged, DedupReport(exact=exact, near=near)
