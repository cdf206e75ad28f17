"""Shared fixtures: a deterministic fake embedder for logic tests, the real model for the rest."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
INDEX = ROOT / "index"

# Tests never reach a hub; the bundled model is converted into one cache for the whole run.


@pytest.fixture(autouse=True, scope="session")
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:  # set for the run, restored after it
        mp.setenv("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "1"))
        mp.setenv("TRANSFORMERS_OFFLINE", os.environ.get("TRANSFORMERS_OFFLINE", "1"))
        yield


class FakeEmbedder:
    """Bag of hashed words and character trigrams: similar wording gives similar vectors.

    Deterministic and instant, so splitting, indexing and answer logic are tested without torch.
    """

    name = "fake:hashed-trigrams"
    dimension = 256

    def __init__(self) -> None:
        self.calls = 0

    def fingerprint(self) -> str:
        return "fake-fingerprint-1"

    def location(self) -> str:
        return "(in memory)"

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, np.float32)
        words = re.findall(r"\w+", text.lower())
        grams = words + [w[i:i + 3] for w in words for i in range(max(1, len(w) - 2))]
        for g in grams:
            h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
            v[h % self.dimension] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def _many(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._many(texts)

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        out = self._many(texts)
        if progress:
            progress(len(texts))
        return out


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped corpus that a test may change."""
    dst = tmp_path / "corpus"
    shutil.copytree(CORPUS, dst)
    return dst


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One converted bundled model for the whole run ($AMPERE_QA_CACHE when CI provides one)."""
    cache = os.environ.get("AMPERE_QA_CACHE")
    path = Path(cache) if cache else tmp_path_factory.mktemp("ampere-cache")
    with pytest.MonkeyPatch.context() as mp:  # restored when the session ends
        mp.setenv("AMPERE_QA_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def real_embedder(model_cache: Path):
    """The bundled model as users get it: through its ONNX export (tests/test_onnx.py compares
    it with sentence-transformers)."""
    from ampere_qa.embed.embedding import load_embedder

    return load_embedder("bundled", cache_dir=model_cache, engine="onnx")


@pytest.fixture(scope="session")
def retriever(real_embedder):
    """The retriever over the committed index and the real model."""
    from ampere_qa import Retriever

    return Retriever.load(INDEX, embedder=real_embedder)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real Milvus server for the session: the 2.3 standalone binary of the PyPI package
    ``milvus`` (Linux x86-64), data in a temporary folder, a free port, authentication on.
    Yields its URI and the token that opens it; stopped at the end."""
    pytest.importorskip("milvus", reason="the PyPI package milvus (in [test]) runs the server")
    from milvus import MilvusServer, MilvusServerConfig

    from .serving import free_port

    server = MilvusServer(MilvusServerConfig())
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    server.config.set("authorization_enabled", True)
    server.listen_port = free_port()
    server.start()  # returns once its health check answers (~9 s here)
    try:
        # The port it bound (it moves on when the one asked for was taken meanwhile).
        yield f"http://127.0.0.1:{server.listen_port}", "root:Milvus"
    finally:
        server.stop()
