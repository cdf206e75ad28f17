"""Labelled question sets: reading a JSON Lines file and checking every line.

A set is JSON Lines, one object a line::

    {"id": "fr-001", "lang": "fr", "question": "Qui dirige Ampere ?",
     "gold": ["Luca de Meo"], "short": ["Luca de Meo"], "answerable": true, "group": "answerable"}

``gold`` lists exact substrings of the article; a retrieved excerpt or an answer is correct when it
contains any one of them. ``short`` (optional) lists the acceptable short answers where one is
expected; the short answer must equal one of them (case and spacing aside). Unanswerable
questions have no gold and should get "not found"; their ``group`` says how far they are from
the article: ``near-topic`` (about it, not answered by it), ``off-topic`` or ``chitchat``
(greetings and requests). Without ``group``, an unanswerable question counts as off-topic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar, get_args

from ..atomic import NotRegularFile, open_regular
from ..errors import BadInputError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .lines import QuestionLine

Group = Literal["answerable", "near-topic", "off-topic", "chitchat"]
GROUPS: tuple[str, ...] = get_args(Group)

# An evaluation set is a few hundred lines; a file far bigger than this is not one.
MAX_SET_BYTES = 16 * 2**20

Line = TypeVar("Line", bound="BaseModel")


@dataclass(frozen=True)
class Question:
    id: str
    lang: str
    question: str
    gold: tuple[str, ...]
    answerable: bool
    group: str = "answerable"
    short: tuple[str, ...] = ()

    def matches(self, text: str) -> bool:
        return any(g in text for g in self.gold)

    def short_matches(self, text: str | None) -> bool:
        return text is not None and _squeeze(text) in {_squeeze(s) for s in self.short}


def _squeeze(text: str) -> str:
    return " ".join(text.casefold().split())


def read_lines(path: Path) -> list[str]:
    """The lines of a set file: a regular file, UTF-8, at most :data:`MAX_SET_BYTES`."""
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_SET_BYTES + 1)
        if len(raw) > MAX_SET_BYTES:
            raise BadInputError(f"evaluation set {path} is over {MAX_SET_BYTES // 2**20} MB")
        return raw.decode("utf-8").splitlines()
    except NotRegularFile:
        raise BadInputError(f"evaluation set {path} is not a regular file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read evaluation set {path}: {exc}") from None


def validated(path: Path, schema: type[Line]) -> Iterator[tuple[str, Line]]:
    """Each non-empty line of a set checked by ``schema``, with where it stands ("file:line");
    a malformed line is a :class:`BadInputError` naming it and its first wrong field."""
    from pydantic import ValidationError

    for n, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{n}", schema.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            field_name = ".".join(str(x) for x in first["loc"]) or "line"
            raise BadInputError(f"{path}:{n}: {field_name}: {first['msg']}") from None


def _question(where: str, d: QuestionLine) -> Question:
    """One validated line as a question, once the fields agree with each other."""
    if any(not g.strip() for g in d.gold):
        raise BadInputError(f"{where}: gold strings must not be empty (an empty one matches anything)")
    group = d.group or ("answerable" if d.answerable else "off-topic")
    q = Question(d.id, d.lang, d.question, tuple(d.gold), d.answerable, group, tuple(d.short))
    if q.answerable != bool(q.gold):
        raise BadInputError(f"{where}: answerable questions need gold strings, others none")
    if q.answerable != (group == "answerable"):
        raise BadInputError(f"{where}: group {group!r} does not fit answerable={q.answerable}")
    if (q.short and not q.answerable) or any(not x.strip() for x in q.short):
        raise BadInputError(f"{where}: short answers must be non-empty, on answerable questions")
    return q


def load_questions(path: str | Path) -> list[Question]:
    """Read and validate a set; a malformed line is a :class:`BadInputError` naming it."""
    from .lines import QuestionLine

    path = Path(path)
    out: list[Question] = []
    seen: set[str] = set()
    for where, d in validated(path, QuestionLine):
        q = _question(where, d)
        if q.id in seen:
            raise BadInputError(f"{where}: duplicate id {q.id!r}")
        seen.add(q.id)
        out.append(q)
    if not out:
        raise BadInputError(f"{path} holds no questions")
    return out
