"""The systems compared, behind one interface: a question in, a :class:`Response` out.

ampere-qa ranks passages and replies; the baselines (:mod:`.baselines`) only rank. The
evaluation loop treats them alike: what it measures depends on what the response holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..search import Retriever
    from ..types import Answer

DEPTH = 10  # rankings are scored to MRR@10
NAME = "ampere-qa"


@dataclass(frozen=True)
class Response:
    """One system's response to one question: passage texts, best first (at most
    :data:`DEPTH`), and the reply when the system answers questions."""

    ranking: list[str]
    reply: Answer | None = None


class System(Protocol):
    """A system under comparison; ``name`` labels its metrics."""

    @property
    def name(self) -> str: ...

    def respond(self, question: str) -> Response: ...


def short_text(reply: Answer) -> str | None:
    """The words of a reply's short answer, if it has one."""
    return reply.short_answer.text if reply.short_answer else None


class AmpereQA:
    """The retriever itself: its reply, and its own ranking of passages."""

    name = NAME

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever

    def respond(self, question: str) -> Response:
        reply = self.retriever.answer(question)
        ranking = [h.text for h in self.retriever.search(question, k=DEPTH)]
        return Response(ranking, reply)
