"""Running an ONNX export of the bundled model with onnxruntime: texts (prompt included) to
normalised vectors, without torch. The export itself is made in :mod:`.export`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ...errors import ModelError
from . import querytok
from .loading import cores
from .querytok import QueryTokenizer

GRAPH_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class OnnxEncoder:
    """An ONNX export run by onnxruntime: texts (prompt included) to normalised vectors."""

    # Texts per run. Unlike torch, onnxruntime is faster on small batches here (200 passages,
    # 2 threads: 4: 45/s, 8: 42/s, 16: 40/s, 32: 36/s) and its memory grows with the batch's
    # attention matrices (peak RSS 520, 535, 565, 623 MB).
    batch_size = 8

    def __init__(self, folder: Path, max_length: int = 512, threads: int | None = None):
        import onnxruntime as ort

        folder = Path(folder)
        try:
            self.tokenizer = QueryTokenizer(folder, max_length=max_length)
        except Exception as exc:  # whatever its files' parsers raise
            raise ModelError(f"cannot read the query tokenizer in {folder} ({querytok.PIECES_FILE}"
                             f", {querytok.SCORES_FILE}, {querytok.PIPELINE_FILE}): "
                             f"{type(exc).__name__}: {_one_line(exc)}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cores()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's
        self.threads = options.intra_op_num_threads
        try:
            self._session = ort.InferenceSession(str(folder / GRAPH_FILE), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise ModelError(f"onnxruntime cannot load {folder / GRAPH_FILE} with "
                             f"{DATA_FILE} ({_one_line(exc)})") from exc

    def encode(self, texts: Sequence[str], dimension: int,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Longest texts first, in batches of similar length: less padding, as
        sentence-transformers does within a call."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), dimension), np.float32)
        for i in range(0, len(order), self.batch_size):
            rows = order[i:i + self.batch_size]
            ids, mask = self.tokenizer.batch([texts[j] for j in rows])
            out[rows] = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            if progress:
                progress(len(rows))
        return out
