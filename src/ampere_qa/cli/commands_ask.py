"""``ampere-qa ask`` (one question, or one a line from stdin) and ``ampere-qa chat``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from ..errors import BadInputError, QuestionTooLongError
from ..qa.question import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS, echo_of
from .group import cli
from .options import INDEX_HELP, find_index, secret_options
from .output import echo_json, print_answer

if TYPE_CHECKING:
    from ..search import Retriever

# Characters of one stdin line read at once: a question is at most MAX_QUESTION_CHARS once its
# spaces are squeezed, so a line this long is refused without reading more of it into memory.
MAX_LINE_CHARS = 64 * 1024
# `ampere-qa chat` commands.
CHAT_QUIT = {"/quit", "/exit", ":q"}
CHAT_CLEAR = {"/clear", "/new"}


@cli.command()
@click.argument("question", required=False)
@click.option("--index", "index_dir", default=None, help=INDEX_HELP)
@click.option("-k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, MAX_K),
              help="How many passages the answer may draw on.")
@click.option("--model", default=None, help="Model path, if not the one the index records.")
@click.option("--json", "as_json", is_flag=True,
              help="Print exactly one JSON object (questions from stdin: one per line).")
@secret_options
def ask(question: str | None, index_dir: str | None, k: int, model: str | None,
        as_json: bool) -> None:
    """Answer a question from the corpus, with cited excerpts. Without QUESTION, or with -,
    read questions from stdin, one per line, and answer each (the model loads once).

    \b
    ampere-qa ask "Qui dirige Ampere ?"
    ampere-qa ask "How many engineers work at Ampere?" --json
    printf 'Qui dirige Ampere ?\nWho invests?\n' | ampere-qa ask --json   # JSON Lines
    """
    from ..qa.question import clean_question

    if question is not None and question != "-":
        clean_question(question)  # bad input fails before the model loads
        result = _retriever(index_dir, model).answer(question, k=k)
        echo_json(result.to_dict()) if as_json else print_answer(result)
        return
    if sys.stdin.isatty():
        raise BadInputError("no question: give one (ampere-qa ask \"Qui dirige Ampere ?\"), or "
                            "pipe questions on stdin, one per line; for a conversation, use "
                            "ampere-qa chat")
    if _answer_lines(_retriever(index_dir, model), k, as_json):
        sys.exit(BadInputError.exit_code)


def _answer_lines(retriever: Retriever, k: int, as_json: bool) -> int:
    """Answer each question of stdin as it arrives; how many were refused as bad input."""
    refused = 0
    for line in _lines(sys.stdin):
        try:
            if isinstance(line, _LongLine):
                raise QuestionTooLongError(
                    f"the question is over {MAX_LINE_CHARS} characters long; the limit is "
                    f"{MAX_QUESTION_CHARS}", length=MAX_LINE_CHARS)
            result = retriever.answer(line, k=k)
        except BadInputError as exc:  # one bad line does not stop the others
            refused += 1
            if as_json:
                click.echo(json.dumps({"question": echo_of(line), "error": str(exc)},
                                      ensure_ascii=False))
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        if as_json:
            click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            print_answer(result)
            click.echo("")
        sys.stdout.flush()  # each answer as soon as it is known, when piped
    return refused


class _LongLine(str):
    """The start of a line of stdin too long to be a question (the rest was not kept)."""


def _lines(stream: TextIO) -> Iterator[str]:
    """The non-blank lines of ``stream``, stripped, as they arrive. A line past
    ``MAX_LINE_CHARS`` is read on to its end without being kept, and stands as a
    :class:`_LongLine` of its start: one huge line must not fill the memory."""
    while raw := stream.readline(MAX_LINE_CHARS):
        if len(raw) == MAX_LINE_CHARS and not raw.endswith("\n"):
            while (rest := stream.readline(MAX_LINE_CHARS)) and not rest.endswith("\n"):
                pass
            yield _LongLine(raw)
            continue
        line = raw.strip()
        if line:
            yield line


def _retriever(index_dir: str | None, model: str | None = None) -> Retriever:
    """The retriever on the index found for ``--index``; warns on stderr when it is stale."""
    from ..indexing.manifest import stale_warning
    from ..search import Retriever

    index = find_index(index_dir)
    retriever = Retriever.load(index, model)
    if retriever.is_stale():
        click.echo(f"warning: {stale_warning(Path(index), retriever.data.manifest)}", err=True)
    return retriever


@cli.command()
@click.option("--index", "index_dir", default=None, help=INDEX_HELP)
@click.option("-k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, MAX_K),
              help="How many passages each answer may draw on.")
@secret_options
def chat(index_dir: str | None, k: int) -> None:
    """Talk with the corpus: questions one after another, follow-ups included ("Et où ?");
    the model loads once. /clear starts afresh; /quit, Ctrl-D or Ctrl-C ends.

    \b
    ampere-qa chat
    """
    from ..qa.question import clean_question

    click.echo("Loading the index and the model…", err=True)
    retriever = _retriever(index_dir)
    click.echo(f"{retriever.page.title} — /clear starts afresh, /quit ends.", err=True)
    history: list[str] = []
    while True:
        try:
            line = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            click.echo("", err=True)
            return
        if not line:
            continue
        if line in CHAT_QUIT:
            return
        if line in CHAT_CLEAR:
            history.clear()
            click.echo("(history cleared)", err=True)
            continue
        try:
            result = retriever.answer(line, k=k, history=history)
        except BadInputError as exc:
            click.echo(f"error: {exc}", err=True)
            continue
        history = [*history, clean_question(line)][-retriever.settings.max_history:]
        print_answer(result)
        click.echo("")
