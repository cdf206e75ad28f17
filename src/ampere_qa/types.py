"""The data that flows between the stages, and the JSON each one becomes.

corpus -> :class:`Passage` (with its :class:`Location` s) -> index -> :class:`Hit` ->
:class:`Answer` (with its :class:`Citation` s); :class:`BuildReport` says what a build did.
Each ``to_dict()`` is the one schema the CLI's ``--json``, the web API and Python users share;
the keys of the public contract are declared here once (``ANSWER_KEYS``...).

This module imports nothing of the package: every other module can name these types.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Span = tuple[int, int]

# The JSON contract: what `ampere-qa ask --json`, `/ask` and `Answer.to_dict()` hold.
ANSWER_KEYS = ("question", "language", "answered", "answer", "citations", "short_answer",
               "understood")
SHORT_ANSWER_KEYS = ("text", "rank", "start", "end")
# Why a reply is not an answer (``reason``, only when ``answered`` is false).
REASONS = ("off_topic", "not_mentioned", "not_given", "no_answer", "greeting", "request")
CITATION_KEYS = ("rank", "passage_id", "source", "start", "end", "text", "score", "context")
HIT_KEYS = CITATION_KEYS


@dataclass(frozen=True)
class Location:
    """Where a passage's text stands: ``source`` file and the code-point span in it."""

    source: str
    start: int
    end: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Passage:
    """A unit of retrieval. ``locations[0]`` is where ``text`` was taken from; the others are
    duplicates of it collapsed into this passage. ``sentences`` are spans within ``text``.
    ``context`` is the heading path above it ("Installation › Linux"), "" without headings."""

    id: str
    text: str
    locations: tuple[Location, ...]
    sentences: tuple[Span, ...] = field(default=())
    context: str = ""

    @property
    def indexed_text(self) -> str:
        """What the passage vector and word matching see: the headings name what a passage is
        about even when its own words do not. Its sentences are embedded without them."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    @property
    def source(self) -> str:
        return self.locations[0].source

    @property
    def start(self) -> int:
        return self.locations[0].start

    @property
    def end(self) -> int:
        return self.locations[0].end

    def sentence_texts(self) -> list[str]:
        return [self.text[a:b] for a, b in self.sentences]

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "id": self.id,
            "text": self.text,
            "locations": [loc.to_dict() for loc in self.locations],
            "sentences": [list(s) for s in self.sentences],
        }
        if self.context:  # only then: an index without headings is written as before
            d["context"] = self.context
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Passage:
        context = d.get("context", "")
        if not isinstance(context, str):
            raise ValueError("a passage's context is not a string")
        return cls(
            id=d["id"],
            text=d["text"],
            locations=tuple(Location(**loc) for loc in d["locations"]),
            sentences=tuple((int(a), int(b)) for a, b in d["sentences"]),
            context=context,
        )


@dataclass(frozen=True)
class Skipped:
    """A corpus file left out of the index, and why (reported by ``build``)."""

    source: str
    reason: str

    def warning(self) -> str:
        """The line ``build`` and ``serve`` print for it."""
        return f"warning: skipped {self.source}: {self.reason}"


@dataclass(frozen=True)
class Hit:
    """One ranked passage; ``score`` is the cosine similarity of its closest sentence plus a
    word-match bonus of at most ``LEXICAL_WEIGHT``; ``context`` is the passage's heading path
    ("" when its document has no headings)."""

    rank: int
    passage_id: str
    source: str
    start: int
    end: int
    text: str
    score: float
    # Keyword-only: Citation(..., score, highlights) stays valid, as before the field existed.
    context: str = field(default="", kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(float(self.score), 6)
        return d


@dataclass(frozen=True)
class Citation(Hit):
    """A numbered excerpt the answer cites (``rank`` is its number in the answer);
    ``start``/``end`` locate it in ``source``.

    ``highlights`` are the spans, within ``text``, of the sentences the answer used (for
    display); they are not part of the JSON contract, which is a hit's.
    """

    highlights: tuple[tuple[int, int], ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        del d["highlights"]
        return d


@dataclass(frozen=True)
class ShortAnswer:
    """The exact words that answer (a name, a number, a date...): ``text`` is
    ``source[start:end]`` of the source file cited as number ``rank``."""

    text: str
    rank: int
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """What ``Retriever.answer`` returns; ``to_dict()`` is the JSON of ``ampere-qa ask --json``.

    ``language`` is the detected language of the question; ``reply_language`` the one the
    answer is phrased in (French or English).
    """

    question: str
    language: str
    answered: bool
    answer: str
    citations: tuple[Citation, ...] = ()
    reply_language: str = "en"
    # What the "not found" decision compared with the cut-off (Retriever.relevance); not JSON.
    relevance: float | None = field(default=None, compare=False)
    short_answer: ShortAnswer | None = None
    reason: str | None = None  # one of REASONS when not answered
    # The question as understood in the conversation, when it differs from ``question``.
    understood: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "question": self.question,
            "language": self.language,
            "answered": self.answered,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "short_answer": self.short_answer.to_dict() if self.short_answer else None,
            "understood": self.understood,
        }
        if not self.answered:
            d["reason"] = self.reason or "off_topic"
        return d


@dataclass(frozen=True)
class PageInfo:
    """What the page shows of a corpus: title, description and example questions (from the
    corpus's ``ampere-qa.toml``, else derived; recorded in the manifest as ``"page"``)."""

    title: str
    description: str
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.description,
                "examples": list(self.examples)}


@dataclass(frozen=True)
class BuildReport:
    """What ``build`` did; ``to_dict()`` is what ``ampere-qa build --json`` prints."""

    index: str
    files: int
    passages: int
    sentences: int
    duplicates_collapsed: int
    exact_duplicates: int
    near_duplicates: int
    skipped: tuple[Skipped, ...]
    seconds: float
    model: str
    embedded: int = 0  # texts run through the model
    reused: int = 0  # texts whose vectors came from the previous index (same model, same text)
    store: str = "faiss"  # the backend that keeps the sentence vectors (stores/)
    # What the backend reports of its write, by name (every one: ``upserted``, the rows it wrote
    # outside the index folder; ``deleted``, those it removed once the manifest was committed).
    # to_dict() lists them after ``store``, as keys of their own.
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def upserted(self) -> int:
        return int(self.details.get("upserted", 0))

    @property
    def deleted(self) -> int:
        return int(self.details.get("deleted", 0))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped"] = [asdict(s) for s in self.skipped]
        d["seconds"] = round(self.seconds, 3)
        d.update(d.pop("details"))
        return d
