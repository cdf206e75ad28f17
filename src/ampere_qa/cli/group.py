"""The ``ampere-qa`` click group, which the commands register on: library errors become one line
on stderr and the documented exit code; a reader gone from the pipe, a quiet exit."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import AmpereError


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
            reader_went_away()
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


def reader_went_away() -> None:
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
