"""Where the sentence vectors live: one module per backend behind one interface (base.py).

``faiss`` (default): a FAISS file in the index folder. ``milvus``: a Milvus collection, chosen at
build time and recorded in the manifest (``"store": {"kind": "milvus", ...}``; no entry means
FAISS). Backends are imported only when used: pymilvus is an optional extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from .base import VectorStore, Written

KINDS = ("faiss", "milvus")

__all__ = ["KINDS", "VectorStore", "Written", "backend", "kind_of"]


def backend(kind: str) -> ModuleType:
    """The backend module for ``kind`` (``faiss`` or ``milvus``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown vector store {kind!r}")
    return importlib.import_module(f"{__name__}.{kind}")


def kind_of(config: dict[str, Any] | None) -> str:
    """The backend a manifest's ``store`` entry names (none: FAISS)."""
    return str(config.get("kind")) if isinstance(config, dict) else "faiss"
