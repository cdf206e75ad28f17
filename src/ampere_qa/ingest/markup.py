"""What a corpus file's text is, by format: plain text as it is, Markdown with its headings,
HTML turned into text with its headings.

Headings are not body text: each is a span of the document's text that no passage covers, and
the headings above a passage become its ``context`` (see passages.py). Only the standard
library is used; the HTML reader is built to stay linear on hostile input (see
:func:`html_text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

TEXT = (".txt",)
MARKDOWN = (".md",)
HTML = (".html", ".htm")
SUFFIXES = TEXT + MARKDOWN + HTML
# How a passage's heading path is written ("Installation › Linux").
SEPARATOR = " › "
# A "heading" longer than this is a paragraph someone marked up (or an unclosed <h1> swallowing
# the page): it stays body text rather than becoming every following passage's context.
MAX_HEADING_CHARS = 200


@dataclass(frozen=True)
class Heading:
    """A heading: ``text[start:end]`` is its line (Markdown) or its words (HTML), never part of
    a passage. ``level`` is 1-6, or 0 for an HTML page's ``<title>`` standing in for a missing
    ``<h1>``; ``title`` has the markers stripped and whitespace collapsed."""

    start: int
    end: int
    level: int
    title: str


def _words(text: str) -> str:
    return " ".join(text.split())


def _atx(line: str) -> tuple[int, str] | None:
    """An ATX heading's level and title (CommonMark: up to 3 spaces, 1-6 '#', then a space or
    the end of the line; a closing run of '#' after a space is not part of the title), or None.

    Read with string methods, not a pattern: the pattern it replaces backtracked over a long
    run of spaces (100,000 spaces after '# Titre' never finished).
    """
    body = line.rstrip(" \t\r")
    indent = len(body) - len(body.lstrip(" "))
    if indent > 3:
        return None
    body = body[indent:]
    level = len(body) - len(body.lstrip("#"))
    rest = body[level:]
    if not 1 <= level <= 6 or (rest and rest[0] not in " \t"):
        return None
    unclosed = rest.rstrip("#")
    if unclosed != rest and (not unclosed or unclosed[-1] in " \t"):
        rest = unclosed
    return level, rest
_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"[ ]{0,3}(=+|-+)[ \t\r]*")
# A line that is a list item, quote, heading or table, not a paragraph a setext line can title.
_NOT_PARAGRAPH = re.compile(r"\s*(?:[-*+>#|]|\d+[.)])(?:\s|$)")


def markdown_headings(text: str) -> tuple[Heading, ...]:
    """The ATX headings (``## Title``) and the setext ones of a one-line paragraph (``Title``
    over ``===`` or ``---``), outside fenced code blocks (a ``# comment`` in code is code)."""
    out: list[Heading] = []
    fence = ""
    prev: tuple[int, int] | None = None  # the previous line, when a setext underline may title it
    before_prev_blank = True
    for m in re.finditer(r"[^\n]*", text):
        a, b = m.span()
        if a and text[a - 1] != "\n":  # finditer's empty match right after a line
            continue
        line = m.group()
        blank = not line.strip()
        if fence:
            if line.lstrip(" ").startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
            prev, before_prev_blank = None, blank
            continue
        opened = _FENCE.match(line)
        if opened:
            fence = opened.group(1)
            prev, before_prev_blank = None, False
            continue
        heading = None
        atx = _atx(line)
        setext = _SETEXT.fullmatch(line)
        if atx:
            heading = Heading(a, a + len(line.rstrip()), atx[0], _words(atx[1]))
        elif setext and prev is not None:
            level = 1 if setext.group(1)[0] == "=" else 2
            heading = Heading(prev[0], a + len(line.rstrip()), level, _words(text[prev[0]:prev[1]]))
        if heading is not None and len(heading.title) <= MAX_HEADING_CHARS:
            out.append(heading)
            prev, before_prev_blank = None, False
            continue
        candidate = before_prev_blank and not blank and not _NOT_PARAGRAPH.match(line)
        prev = (a, b) if candidate else None
        before_prev_blank = blank
    return tuple(out)


# Elements whose content is not text a reader sees.
_HIDDEN = frozenset({"script", "style", "template", "noscript"})
# Elements that start a new paragraph; a line break for those that hold lines of one.
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "main", "nav", "ol", "p",
    "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "ul",
})
_LINES = frozenset({"br", "li", "tr"})
_CELLS = frozenset({"td", "th"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_RAW = re.compile(r"<!--|<(script|style)(?=[\s/>])|<", re.IGNORECASE)
_EMPTY_COMMENT = re.compile(r"<!---?>")  # whole comments in HTML
_RAW_END = {name: re.compile(rf"</{name}[\s/>]", re.IGNORECASE) for name in ("script", "style")}


def _defused(markup: str) -> str:
    """``markup`` without comments, scripts and styles, and with every '<' that cannot open a
    tag written ``&lt;``: what the parser then reads takes it linear time.

    Python's parser (3.11) rescans to the end of the input from each '<' that opens no tag
    (``<a<a<a...``: quadratic, hours for 2 MB) and raises on a malformed ``<![``. Here each '<'
    is looked at once, up to the next '<': one with no '>' before it is text. Comments, scripts
    and styles are cut out first, as a browser reads them (to their end, or the end of the
    page), so that a '<' inside them is never taken for text.
    """
    out: list[str] = []
    pos, n = 0, len(markup)
    while (m := _RAW.search(markup, pos)) is not None:
        i = m.start()
        out.append(markup[pos:i])
        if m.group() == "<!--":
            short = _EMPTY_COMMENT.match(markup, i)
            end = short.end() if short else markup.find("-->", i + 4)
            pos = n if end < 0 else (end if short else end + 3)
        elif m.group(1):
            close = _RAW_END[m.group(1).lower()].search(markup, m.end())
            end = markup.find(">", close.end() - 1) if close else -1
            pos = n if end < 0 else end + 1
        else:
            nxt = markup.find("<", i + 1)
            closed = markup.find(">", i + 1, nxt if nxt >= 0 else n) >= 0
            out.append("<" if closed and not markup.startswith("<![", i) else "&lt;")
            pos = i + 1
    out.append(markup[pos:])
    return "".join(out)


class _Reader(HTMLParser):
    """Collects the visible text, paragraph breaks and the headings' spans. No recursion, and
    counters for what nests, so nesting depth costs nothing."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.pending = 0  # newlines owed before the next text (1 or 2)
        self.space = False  # a space owed before the next text
        self.hidden = 0  # depth inside template/noscript (and script/style, if any is left)
        self.pre = 0
        self.title: list[str] | None = None  # while inside the first <title>
        self.titles: list[str] = []
        # The open heading: its level, the first of its parts, where its text starts.
        self.heading: tuple[int, int, int | None] | None = None
        self.headings: list[Heading] = []

    def _text(self, text: str) -> None:
        if self.length and self.pending:
            text = "\n" * self.pending + text
        elif self.length and self.space:
            text = " " + text
        self.pending, self.space = 0, False
        if self.heading is not None and self.heading[2] is None:
            level, first, _ = self.heading
            self.heading = (level, first, self.length + len(text) - len(text.lstrip()))
        self.parts.append(text)
        self.length += len(text)

    def _break(self, newlines: int) -> None:
        self.pending = max(self.pending, newlines)
        self.space = False

    def close_heading(self) -> None:
        if self.heading is not None:
            level, first, start = self.heading
            self.heading = None
            title = _words("".join(self.parts[first:]))
            if start is not None and title and len(title) <= MAX_HEADING_CHARS:
                self.headings.append(Heading(start, self.length, level, title))
        self._break(2)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "title" and not self.titles:
            self.title = self.titles
        elif tag in _HEADINGS:
            self.close_heading()  # a heading inside a heading: the outer one ends there
            self.heading = (_HEADINGS[tag], len(self.parts), None)
        elif tag in _BLOCKS:
            self._break(2)
            self.pre += tag == "pre"
        elif tag in _LINES:
            self._break(1)
        elif tag in _CELLS:
            self.space = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LINES or tag in _BLOCKS:  # <br/>, <hr/>: nothing is inside them
            self._break(1 if tag in _LINES else 2)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "title":
            self.title = None
        elif tag in _HEADINGS:
            self.close_heading()
        elif tag in _BLOCKS:
            self._break(2)
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag in _LINES and tag != "br":
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.title is not None:
            self.title.append(data)
            return
        if self.pre:
            for i, line in enumerate(data.replace("\r\n", "\n").split("\n")):
                if i:
                    self._break(1)
                if line.strip():
                    self._text(line.rstrip())
            return
        if data[:1].isspace():
            self.space = True
        words = _words(data)
        if words:
            self._text(words)
            self.space = data[-1:].isspace()


def html_text(markup: str) -> tuple[str, tuple[Heading, ...]]:
    """The text a reader of the page sees, and its headings (offsets into that text).

    Script, style, template and noscript content is dropped; block elements become paragraph
    breaks (a blank line), list items, table rows and ``<br>`` line breaks; entities are
    decoded. The ``<title>`` is not body text: it stands as a level-0 heading (the context of
    every passage) when the page has no ``<h1>``. Linear in the input, whatever it holds.
    """
    reader = _Reader()
    reader.feed(_defused(markup))
    reader.close()
    reader.close_heading()  # an <h1> never closed ends with the page
    headings = reader.headings
    title = _words("".join(reader.titles))
    if title and len(title) <= MAX_HEADING_CHARS and not any(h.level == 1 for h in headings):
        headings.insert(0, Heading(0, 0, 0, title))
    return "".join(reader.parts), tuple(headings)


def structure(suffix: str, text: str) -> tuple[str, tuple[Heading, ...]]:
    """A file's text as passages are cut from it, and its headings, by its suffix."""
    suffix = suffix.lower()
    if suffix in HTML:
        return html_text(text)
    if suffix in MARKDOWN:
        return text, markdown_headings(text)
    return text, ()


def has_body(text: str, headings: tuple[Heading, ...]) -> bool:
    """Whether ``text`` holds anything but its headings: a file of headings alone has nothing
    a passage could quote."""
    pos = 0
    for h in sorted(headings, key=lambda h: h.start):
        if text[pos:h.start].strip():
            return True
        pos = max(pos, h.end)
    return bool(text[pos:].strip())


def context_of(path: list[Heading]) -> str:
    """The heading path above a passage, as its ``context`` ("Installation › Linux")."""
    return SEPARATOR.join(h.title for h in path if h.title)
