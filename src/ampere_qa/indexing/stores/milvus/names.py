"""What ampere-qa names in Milvus: collections (checked before anything connects), the
properties that mark a collection as ours, and the sentence rows' keys.

Keys. Milvus rows carry a 63-bit key hashed from the passage's text and the sentence's number in
it (:func:`sentence_key`). Callers name sentences by row (stores/base.py); the store translates.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ....errors import BadInputError

DEFAULT_COLLECTION = "ampere_qa"
META_PROPERTY = "ampere_qa.meta"  # collection property: JSON tying the rows to one manifest
OWNER_PROPERTY, OWNER = "ampere_qa.owner", "ampere-qa"  # set at creation: this collection is ours
ALIAS_PROPERTY = "ampere_qa.alias"  # a generation's: the --collection name its alias is
INDEX_PROPERTY = "ampere_qa.indexing.index"  # a generation's: the index folder whose build wrote it
GENERATION = re.compile(r"^(?P<alias>.+)__g[0-9a-f]{12}$")
GENERATION_SUFFIX = len("__g") + 12  # what write_generation appends to the --collection name
# Milvus's rule for collection and alias names: a letter or an underscore, then letters, digits
# and underscores, at most MAX_NAME characters (the server's default proxy.maxNameLength; Milvus
# Lite's too). The --collection name leaves room for the suffix: 240 characters.
MAX_NAME = 255
MAX_COLLECTION = MAX_NAME - GENERATION_SUFFIX
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def sentence_key(passage_text: str, number: int) -> int:
    """The Milvus primary key of a passage's ``number``-th sentence (positive int64)."""
    digest = hashlib.blake2b(f"{number}\0{passage_text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sentence_keys(passages: Sequence[Any]) -> np.ndarray:
    """Keys of every sentence row, in row order (passage by passage)."""
    return np.array([sentence_key(p.text, j) for p in passages for j in range(len(p.sentences))],
                    dtype=np.int64)


def name_problem(name: object, longest: int = MAX_COLLECTION) -> str | None:
    """Why Milvus would refuse ``name`` as a collection or alias name (at most ``longest``
    characters), or None."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return ("must start with a letter or an underscore and hold only letters, digits and "
                "underscores")
    if len(name) > longest:
        return (f"is {len(name)} characters long, more than {longest}"
                + (f" (Milvus allows {MAX_NAME}; ampere-qa appends {GENERATION_SUFFIX} to name each "
                   "build's collection)" if longest == MAX_COLLECTION else ""))
    return None


def check_name(name: object) -> None:
    """Refuse (:class:`BadInputError`, exit 2) a ``--collection`` name Milvus would refuse
    once a build has connected and embedded everything."""
    problem = name_problem(name)
    if problem:
        text = str(name)
        shown = text if len(text) <= 60 else f"{text[:60]}…"
        raise BadInputError(f"--collection {shown!r} is not a Milvus collection name: it {problem}")
