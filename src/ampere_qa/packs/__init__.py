"""What ampere-qa knows of languages and domains, as data: language packs (``lang/``, one TOML
file per language code) and domain packs (``domain/``). They sit below every stage: the BM25
analyzer takes its stemmer and stop words from them, the answer layer its rules and replies."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any

from ..errors import PackError


@functools.cache
def shipped(package: str) -> tuple[str, ...]:
    """The names of the packs in ``package`` (``ampere_qa.packs.lang``...), sorted. Listed once:
    the packs are part of the installed package, and a question asks for them."""
    return tuple(sorted(f.name.removesuffix(".toml") for f in resources.files(package).iterdir()
                        if f.name.endswith(".toml")))


def read(package: str, name: str, missing: str) -> dict[str, Any]:
    """Pack ``name`` of ``package`` as parsed TOML; :class:`PackError` when there is none,
    saying ``missing`` ("no domain pack") before the name and listing the packs shipped."""
    if name not in shipped(package):
        raise PackError(f"{missing} {name!r} (packs: {', '.join(shipped(package))})")
    return tomllib.loads(resources.files(package).joinpath(f"{name}.toml").read_text("utf-8"))
