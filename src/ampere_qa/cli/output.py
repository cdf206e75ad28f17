"""What the commands print: JSON, an answer with its excerpts, the summary of an index."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

import click

from ..indexing import stores

if TYPE_CHECKING:
    from ..types import Answer


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def print_answer(result: Answer) -> None:
    if result.understood:  # a follow-up, read against the earlier questions
        from ..qa.compose import wording

        click.echo(f"({wording(result.reply_language).show('understood', q=result.understood)})")
    click.echo(result.answer)
    for c in result.citations:
        under = f" \u00b7 {c.context}" if c.context else ""  # the headings above the excerpt
        click.echo(f"\n[{c.rank}] {c.source}:{c.start}-{c.end}{under} (score {c.score:.3f})")
        click.echo(textwrap.fill(c.text, width=96, initial_indent="    ", subsequent_indent="    "))
    click.echo(f"\n(question language: {result.language})")


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
