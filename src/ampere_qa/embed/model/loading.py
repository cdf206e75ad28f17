"""Loading any sentence-transformers model (the bundled one, an id or a path) for inference."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ModelError

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


def weights_fingerprint(model: Any) -> str:
    """A cheap hash of a torch model's weights: every tensor's name, shape and first/last bytes.

    Hashing all ~470 MB would cost a second at every start; sampling each tensor still tells
    apart any two different checkpoints or quantisations. The ONNX export records it, so both
    engines name the same weights alike.
    """
    h = hashlib.sha256()
    for pname, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1).float().cpu().numpy()
        h.update(f"{pname}:{tuple(tensor.shape)}".encode())
        h.update(flat[:1024].tobytes())
        h.update(flat[-1024:].tobytes())
    return h.hexdigest()[:32]


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
