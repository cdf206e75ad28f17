"""The ``ampere-qa`` command: thin wrappers around the library.

Exit codes: 0 success (a "not found" answer included), 2 bad usage or bad input, 1 any other
error. Errors are one line on stderr; ``AMPERE_QA_DEBUG=1`` shows the traceback as well.

One module per job: ``group.py`` (the click group, errors to exit codes), ``options.py`` (where
the index is, the stores' options), ``output.py`` (answers, summaries and JSON printed), and the
commands, each registering itself on the group: ``commands_ask.py`` (ask, chat),
``commands_build.py`` (build, model install), ``commands_info.py`` (info, eval),
``commands_serve.py`` (serve).
"""

from __future__ import annotations

import sys

import click

# Each commands module registers its commands on the group when it is imported.
from . import commands_ask, commands_build, commands_info, commands_serve  # noqa: F401
from .group import cli, reader_went_away

__all__ = ["cli", "main"]


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
        reader_went_away()
    sys.exit(code)
