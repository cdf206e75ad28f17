"""What a question may be: its length, the number of excerpts asked for, and the text the model
reads. The CLI, the web page, the HTTP API and the Python API all check questions here."""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Sequence
from typing import SupportsInt, cast

from ..errors import BadInputError, EmptyQuestionError, QuestionTooLongError

# 1,000 characters of French or English is ~250 tokens, well inside the model's 512; questions
# are short, and a longer text is refused with a clear message rather than silently cut.
MAX_QUESTION_CHARS = 1000
# Excerpts an answer may draw on: 3 by default; 50 is far past any useful reply (an article has
# a handful of passages) and bounds the work of one request.
DEFAULT_K = 3
MAX_K = 50
# Characters of a refused question said back to the user (the page, the CLI's JSON): enough to
# recognise it, never the whole of a huge one.
ECHO_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_question(question: object) -> str:
    """The question as the model will read it, or a :class:`BadInputError` saying why not."""
    if not isinstance(question, str):
        raise BadInputError("the question must be text")
    # The limit counts what the user typed (spaces squeezed): NFC may expand a character into
    # three, and a 600-character question must not be refused as 1,200 characters long.
    typed = len(" ".join(question.split()))
    if typed > MAX_QUESTION_CHARS:
        raise QuestionTooLongError(
            f"the question is {typed} characters long; the limit is {MAX_QUESTION_CHARS}",
            length=typed)
    # Lone surrogates cannot be encoded for the tokenizer; control characters carry no meaning.
    text = question.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    text = " ".join(text.split())
    if not text:
        raise EmptyQuestionError("the question is empty: type a question about the documents")
    return text


def parse_k(k: object) -> int:
    """``k`` as a count of excerpts: a whole number in 1..MAX_K, None meaning the default.

    Anything else is a :class:`BadInputError` with one message. JSON hands over floats
    (``3.0``, ``1e400`` = inf, ``NaN``), and a bool is an int to Python but not a count.
    """
    if k is None:
        return DEFAULT_K
    whole = isinstance(k, numbers.Integral) or (
        isinstance(k, numbers.Real) and math.isfinite(k) and float(k).is_integer())
    if isinstance(k, bool) or not whole or not 1 <= k <= MAX_K:  # type: ignore[operator]
        raise BadInputError(f"k must be a whole number between 1 and {MAX_K}")
    return int(cast(SupportsInt, k))  # whole: an Integral, or a finite Real


def echo_of(question: str) -> str:
    """What to say back of a question that was refused: its start, marked when cut."""
    squeezed = " ".join(question.split())
    return squeezed if len(squeezed) <= ECHO_CHARS else squeezed[:ECHO_CHARS] + "…"


def clean_history(history: Sequence[str], most: int) -> list[str]:
    """The earlier questions, cleaned like a question; the last few only."""
    if isinstance(history, str) or not isinstance(history, Sequence):
        raise BadInputError("history must be a list of earlier questions")
    past = []
    items = list(history)
    first = max(0, len(items) - most)
    for i, h in enumerate(items[first:], start=first):
        if not isinstance(h, str):
            raise BadInputError("history must be a list of earlier questions (strings)")
        if h.strip():
            try:
                past.append(clean_question(h))
            except BadInputError as exc:  # say which item, not "the question"
                raise BadInputError(f"history[{i}]: {exc}".replace(": the question", ": it")) \
                    from None
    return past
