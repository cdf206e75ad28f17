"""``ampere-qa info`` (what an index holds) and ``ampere-qa eval`` (how well it answers)."""

from __future__ import annotations

from pathlib import Path

import click

from .group import cli
from .options import INDEX_HELP, find_index, secret_options
from .output import echo_json, format_info


@cli.command()
@click.option("--index", "index_dir", default=None, help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@secret_options
def info(index_dir: str | None, as_json: bool) -> None:
    """Summarise an index: what it holds, how it was built, where its model is.

    \b
    ampere-qa info --index index
    """
    from ..indexing.index import check_files
    from ..indexing.manifest import read_manifest, stale_warning, summary

    index_dir = find_index(index_dir)
    manifest = read_manifest(Path(index_dir))
    check_files(Path(index_dir), manifest)  # an index whose files are gone is not "fine"
    info = summary(Path(index_dir), manifest)
    info["index"] = index_dir  # as the user typed it
    if as_json:
        echo_json(info)
    else:
        click.echo(format_info(info))
    if info["stale"]:  # on stderr, so it never breaks the JSON on stdout
        click.echo(f"warning: {stale_warning(Path(index_dir), manifest)}", err=True)


@cli.command("eval")
@click.argument("file", default="eval/questions.jsonl", required=False)
@click.option("--index", "index_dir", default=None, help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and failures as JSON.")
@click.option("--plot", "plot_path", default=None, metavar="FILE.png",
              help="Also draw the score distributions and the not-found cut-off.")
@click.option("--squad", "squad_file", default=None, metavar="FILE.json",
              help="Score document retrieval on a SQuAD-format set instead (PIAF, FQuAD, SQuAD).")
@click.option("--build-corpus", "corpus_dir", default=None, metavar="DIR",
              help="With --squad: write its contexts as files into DIR (new or empty) and build "
                   "the index from them (into --index, default DIR-index).")
@secret_options
def eval_(file: str, index_dir: str | None, as_json: bool, plot_path: str | None,
          squad_file: str | None, corpus_dir: str | None) -> None:
    """Measure answer quality on a labelled set, beside plain BM25 and dense baselines; or,
    on a set of dialogues, the replies to their follow-up questions; or document retrieval on
    a SQuAD-format set, beside chunk-and-embed and chunk BM25 over the same files.

    \b
    ampere-qa eval                        # the committed set, eval/questions.jsonl
    ampere-qa eval my-set.jsonl --json --plot scores.png
    ampere-qa eval eval/dialogues.jsonl   # follow-ups: answer hit on each last turn
    ampere-qa eval --squad dev.json --build-corpus dev-corpus
    """
    if squad_file:
        _eval_squad(squad_file, corpus_dir, index_dir, as_json)
        return
    if corpus_dir:
        raise click.UsageError("--build-corpus goes with --squad")
    from ..eval import (
        evaluate,
        evaluate_dialogues,
        format_dialogues,
        format_report,
        is_dialogue_set,
        load_dialogues,
        load_questions,
        plot,
    )
    from ..search import Retriever

    index_dir = find_index(index_dir)
    if is_dialogue_set(file):
        dialogues = load_dialogues(file)
        result = evaluate_dialogues(Retriever.load(index_dir), dialogues)
        echo_json(result.to_dict()) if as_json else click.echo(format_dialogues(result))
        return
    questions = load_questions(file)
    retriever = Retriever.load(index_dir)
    report = evaluate(retriever, questions, progress=not as_json)
    if plot_path:
        plot(report, retriever.cutoff, plot_path)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(format_report(report))


def _eval_squad(squad_file: str, corpus_dir: str | None, index_dir: str | None, as_json: bool) -> None:
    from ..eval.squad import evaluate_squad, format_squad, load_squad, write_corpus
    from ..search import Retriever

    squad = load_squad(squad_file)
    if corpus_dir:
        from ..indexing.build import build_index

        index = Path(index_dir) if index_dir else Path(f"{Path(corpus_dir).as_posix().rstrip('/')}-index")
        write_corpus(squad, Path(corpus_dir))
        build_index(corpus_dir, index, progress=not as_json)
        index_dir = str(index)
    report = evaluate_squad(Retriever.load(find_index(index_dir)), squad, progress=not as_json)
    echo_json(report.to_dict()) if as_json else click.echo(format_squad(report))
