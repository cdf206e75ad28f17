"""Follow-up questions: dialogue sets, their evaluation, and the check that a standalone
question is never read as a follow-up.

A dialogue set is JSON Lines, one short conversation a line::

    {"id": "dlg-fr-001", "lang": "fr", "turns": ["C'est quoi Ampere chez Renault ?",
     "Qui la dirige ?"], "gold": ["Luca de Meo, directeur général"], "short": ["Luca de Meo"]}

``gold`` and ``short`` are for the reply to the last turn, as in a question set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadInputError
from .sets import Question, read_lines, validated
from .systems import NAME, short_text
from .tallies import Metrics, ratio

if TYPE_CHECKING:
    from ..search import Retriever
    from ..types import Answer


@dataclass(frozen=True)
class Dialogue:
    """A short conversation: ``turns`` are the user's questions, oldest first; ``gold`` and
    ``short`` are for the reply to the last one, which leans on the earlier ones."""

    id: str
    lang: str
    turns: tuple[str, ...]
    gold: tuple[str, ...]
    short: tuple[str, ...] = ()

    @property
    def last(self) -> Question:
        """The last turn, as the question it is scored as."""
        return Question(self.id, self.lang, self.turns[-1], self.gold, True, "answerable",
                        self.short)


def is_dialogue_set(path: str | Path) -> bool:
    """Whether a set holds dialogues (lines with ``turns``) rather than questions."""
    for line in read_lines(Path(path)):
        if line.strip():
            return '"turns"' in line
    return False


def load_dialogues(path: str | Path) -> list[Dialogue]:
    """Read and validate a dialogue set; a malformed line is a :class:`BadInputError`."""
    from .lines import DialogueLine

    path = Path(path)
    out: list[Dialogue] = []
    seen: set[str] = set()
    for where, d in validated(path, DialogueLine):
        if any(not x.strip() for x in (*d.turns, *d.gold, *d.short)) or d.id in seen:
            raise BadInputError(f"{where}: empty turn, gold or short, or duplicate id")
        seen.add(d.id)
        out.append(Dialogue(d.id, d.lang, tuple(d.turns), tuple(d.gold), tuple(d.short)))
    if not out:
        raise BadInputError(f"{path} holds no dialogues")
    return out


def right(d: Dialogue, reply: Answer) -> bool:
    """Whether the reply to the last turn answers it (holds one of the gold strings)."""
    return reply.answered and d.last.matches(reply.answer)


@dataclass
class DialogueTally:
    """Running sums for one group of dialogues (a language, or all)."""

    dialogues: int = 0
    answer_hit: int = 0
    short: int = 0  # dialogues with a short answer expected
    short_ok: int = 0
    understood: int = 0  # last turns read as follow-ups

    def add(self, d: Dialogue, reply: Answer) -> None:
        """Count the reply to one dialogue's last turn."""
        hit = right(d, reply)
        self.dialogues += 1
        self.answer_hit += hit
        self.understood += reply.understood is not None
        if d.short:
            self.short += 1
            self.short_ok += hit and d.last.short_matches(short_text(reply))

    def metrics(self) -> Metrics:
        return {"dialogues": self.dialogues,
                "answer_hit": round(self.answer_hit / self.dialogues, 4),
                "short_answer_em": ratio(self.short_ok, self.short),
                "read_as_follow_up": round(self.understood / self.dialogues, 4)}


@dataclass(frozen=True)
class DialogueFailure:
    """A dialogue whose last turn was answered wrongly."""

    id: str
    turns: list[str]
    understood: str | None
    answer: str


@dataclass
class DialogueReport:
    """Metrics per language (in the order they first appear, then ``all``) and the failures."""

    systems: dict[str, dict[str, Metrics]]
    failures: list[DialogueFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"systems": self.systems, "failures": [asdict(f) for f in self.failures]}


def evaluate_dialogues(retriever: Retriever, dialogues: Sequence[Dialogue]) -> DialogueReport:
    """Answer hit and short-answer exact match on the last turn of each dialogue, per language,
    and the dialogues whose last turn was answered wrongly."""
    tallies: dict[str, DialogueTally] = {}
    failures = []
    for d in dialogues:
        reply = retriever.answer(d.turns[-1], history=d.turns[:-1])
        for g in (d.lang, "all"):
            tallies.setdefault(g, DialogueTally()).add(d, reply)
        if not right(d, reply):
            failures.append(DialogueFailure(d.id, list(d.turns), reply.understood, reply.answer))
    metrics = {g: t.metrics() for g, t in tallies.items()}
    return DialogueReport({NAME: metrics}, failures)


def standalone_changes(retriever: Retriever, questions: Sequence[Question]) -> list[str]:
    """The ids of questions that would be read differently when asked right after the one
    before them in the set: a standalone question must never be changed."""
    changed = []
    for before, q in pairwise(questions):
        understood = retriever.understood(q.question, [before.question])
        if understood is not None and understood != q.question:
            changed.append(q.id)
    return changed
