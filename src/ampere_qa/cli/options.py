"""What several commands share: where the index is (``--index``, ``$AMPERE_QA_INDEX``, ...) and
the backends' options (``stores.Option``) made click options."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import IndexNotFoundError
from ..indexing import stores

INDEX_ENV = "AMPERE_QA_INDEX"
INDEX_HELP = f"Index folder [default: ${INDEX_ENV}, else ./index, else the checkout's index]."
# The index shipped with a checkout (src/ampere_qa/cli/options.py -> the checkout's index/).
CHECKOUT_INDEX = Path(__file__).resolve().parents[3] / "index"


def find_index(given: str | None) -> str:
    """The index to read: ``--index`` when given, else ``$AMPERE_QA_INDEX``, else ``./index``,
    else the index shipped with the checkout; the error names every place it looked."""
    if given is not None:
        return given
    from ..indexing.manifest import MANIFEST

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


def backend_examples(f: Callable[..., Any]) -> Callable[..., Any]:
    """Each backend's example after build's own, so that the help names no backend itself."""
    lines = [f"\n    ampere-qa build {b.example}" for b in stores.BACKENDS.values() if b.example]
    f.__doc__ = (f.__doc__ or "").rstrip() + "".join(lines) + "\n    "
    return f
