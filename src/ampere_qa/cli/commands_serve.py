"""``ampere-qa serve``: the web page and its HTTP APIs."""

from __future__ import annotations

import click

from ..errors import IndexNotFoundError
from .group import cli
from .options import INDEX_HELP, find_index, secret_options


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
    from ..web import serve as serve_page

    try:
        index = find_index(index_dir)
    except IndexNotFoundError:
        index = "index"  # built from the corpus first
    serve_page(index, host=host, port=port, corpus_dir=corpus_dir)
