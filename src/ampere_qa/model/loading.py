"""Loading any sentence-transformers model (the bundled one, an id or a path) for inference."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ampere_qa.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def load_sentence_transformer(path_or_id: str | Path) -> SentenceTransformer:
    """Load a SentenceTransformer on CPU in float32 (transformers 5 would otherwise keep fp16
    weights in fp16 on CPU, which is slower: docs/bundled-model.md, pitfall 10). Offline use
    relies on HF_HUB_OFFLINE being set by the caller."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar on every load: noise for a CLI user.
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(
            str(path_or_id), device="cpu", model_kwargs={"dtype": torch.float32}
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"Could not load the embedding model '{path_or_id}': {exc}") from exc
