"""The ONNX export: the converted model as a graph onnxruntime runs, so that a question needs
neither torch nor sentence-transformers (a cold ``ask`` in about a second instead of seven).

Written once into ``onnx/`` inside the converted model's folder, by ``model install`` or on first
use, the way the conversion is: built in a hidden temp folder, checked, renamed into place last,
under the conversion's lock. ``export.json``, written last, ties it to the weights it came from
(their fingerprint, as recorded in every index's manifest) and records a sampled hash of the
weights file, checked at each load.

The graph is BERT, mean pooling over the attention mask and L2 normalisation, exported by
``torch.onnx.export`` (TorchScript exporter, opset 17, dynamic batch and length), with the
weights as ONNX external data: onnxruntime then maps them instead of copying them, which is the
difference between ~0.4 s / 145 MB and 1.5-3 s / 875 MB to open the session. sentence-transformers'
own ONNX backend needs ``optimum-onnx``, whose ``transformers<4.58`` excludes the transformers 5
that sentence-transformers 6 requires. The export refuses to install itself unless its vectors
match sentence-transformers' (cosine >= 0.9999) and its tokenizer gives the same ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ampere_qa.atomic import fsync_dir, write_atomic
from ampere_qa.errors import ModelError

from . import querytok
from .loading import cores
from .provision import clean_stale_temps, locked, new_temp_dir
from .querytok import QueryTokenizer

ONNX_DIR = "onnx"
EXPORT_FILE = "export.json"
EXPORT_VERSION = 1
GRAPH_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"
MIN_COSINE = 0.9999
OPSET = 17
# Texts the export is checked on: both languages, accents, digits, punctuation, a special token
# written in the text, and one longer than the 512-token window (truncated alike by both).
CHECK_TEXTS = [
    "Qui dirige Ampere ?",
    "Who runs Ampere, and since when?",
    "Quelles activités Renault a-t-il regroupées dans Ampere ?",
    "L'introduction en bourse prévue au second semestre 2023 a été annulée en janvier 2024.",
    "How many software engineers does the unit employ: 3,500 or 10,000?",
    "Œuvre, cœur, naïve, Ångström, straße, ﬁn, ＡＢＣ, 12 345,67 €",
    "a <mask> token and </s> written in the text",
    "  extra   spaces\tand\nlines  ",
    " ".join(["Le groupe Renault a présenté sa filiale Ampere aux investisseurs."] * 60),
]


def export_dir(model_dir: Path) -> Path:
    return Path(model_dir) / ONNX_DIR


def sample_digest(path: Path, samples: int = 16, size: int = 1 << 16) -> str:
    """sha256 of a file's length and ``samples`` evenly spaced blocks: a truncated, replaced or
    re-exported weights file shows, at the cost of 1 MB read instead of 470."""
    h = hashlib.sha256()
    total = path.stat().st_size
    h.update(str(total).encode())
    with path.open("rb") as fh:
        for i in range(samples):
            fh.seek(max(0, (total - size) * i // max(1, samples - 1)))
            h.update(fh.read(size))
    return h.hexdigest()[:32]


def read_export(model_dir: Path) -> dict[str, Any] | None:
    """The export's record if it is complete and of this version, else None (export again)."""
    folder = export_dir(model_dir)
    try:
        record = json.loads((folder / EXPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("export_version") != EXPORT_VERSION:
        return None
    names = (GRAPH_FILE, DATA_FILE, querytok.PIECES_FILE, querytok.SCORES_FILE,
             querytok.PIPELINE_FILE)
    if not all((folder / n).is_file() for n in names):
        return None
    return record


def check_files(model_dir: Path, record: dict[str, Any]) -> None:
    """Refuse an export whose weights file is not the one it recorded (cheap: 1 MB read)."""
    data = export_dir(model_dir) / DATA_FILE
    if sample_digest(data) != record.get("data_digest"):
        raise ModelError(f"{data} is not the file exported there (truncated or replaced): "
                         f"remove {export_dir(model_dir)} and run 'ampere-qa model install'")


def ensure_export(model_dir: Path, progress: bool = True) -> dict[str, Any]:
    """The export record of ``model_dir``'s ONNX export, exporting it first if needed."""
    record = read_export(model_dir)
    if record is not None:
        return record
    try:
        with locked(Path(model_dir).parent / ".convert.lock"):
            record = read_export(model_dir)  # another process may have finished meanwhile
            if record is None:
                record = export(model_dir, progress=progress)
    except OSError as exc:
        raise ModelError(f"Could not write the ONNX export into {model_dir} ({exc}). "
                         "Set AMPERE_QA_CACHE to a writable folder.") from exc
    return record


def export(model_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Export ``model_dir`` (a converted bundled model) to ``model_dir/onnx``, atomically."""
    model_dir = Path(model_dir)
    target = export_dir(model_dir)
    clean_stale_temps(target)  # left by a killed export
    tmp = new_temp_dir(target)
    try:
        if progress:
            print("Exporting the model to ONNX for fast questions (once, ~30 s) …",
                  file=sys.stderr, flush=True)
        record = _export_into(model_dir, tmp)
        write_atomic(tmp / EXPORT_FILE, json.dumps(record, indent=2).encode())  # last
        fsync_dir(tmp)
        if target.exists():  # an older export, replaced only if provably ours
            if not (target / EXPORT_FILE).is_file():
                raise ModelError(f"{target} exists and was not written by ampere-qa: move it away")
            shutil.rmtree(target)
        os.replace(tmp, target)
        fsync_dir(model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def _export_into(model_dir: Path, out: Path) -> dict[str, Any]:
    import onnx
    import torch

    from .loading import load_sentence_transformer, weights_fingerprint

    st: Any = load_sentence_transformer(model_dir)  # Any: its typed Optionals hold for this model
    _check_pipeline(st)
    bert = st[0].auto_model.eval()
    # The TorchScript exporter traces plain attention; the export is checked against the same
    # model's own vectors below, so switching its attention kernel cannot pass unnoticed.
    bert.set_attn_implementation("eager")

    class Encoder(torch.nn.Module):
        """BERT, mean pooling over the mask (prompt tokens included), L2 normalisation."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    ids = torch.tensor([[0, 41, 42, 43, 2], [0, 44, 45, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    single = out / "single.onnx"
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            Encoder(), (ids, mask), str(single), input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=OPSET, do_constant_folding=True,
            dynamo=False, dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "attention_mask": {0: "batch", 1: "seq"},
                                        "embedding": {0: "batch"}},
        )
    graph = onnx.load(str(single))
    onnx.save_model(graph, str(out / GRAPH_FILE), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=DATA_FILE, size_threshold=1024)
    single.unlink()
    del graph
    querytok.write_files(model_dir / "tokenizer.json", out)
    prompts = dict(st.prompts)
    cosine = _verify(st, out, prompts)
    import onnxruntime

    return {
        "export_version": EXPORT_VERSION,
        "weights_fingerprint": weights_fingerprint(st),
        "dimension": int(st.get_embedding_dimension()),
        "max_length": int(st.max_seq_length),
        "prompts": {"query": prompts["query"], "passage": prompts["passage"]},
        "data_digest": sample_digest(out / DATA_FILE),
        "min_cosine_to_sentence_transformers": round(cosine, 7),
        "opset": OPSET,
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__,
                          "onnxruntime": onnxruntime.__version__},
    }


def _check_pipeline(st: Any) -> None:
    """The graph hard-codes Transformer → mean pooling (prompt included) → Normalize."""
    kinds = [type(m).__name__ for m in st]
    pooling = st[1] if len(kinds) > 1 else None
    ok = (kinds == ["Transformer", "Pooling", "Normalize"] and pooling is not None
          and pooling.pooling_mode == "mean" and getattr(pooling, "include_prompt", True)
          and {"query", "passage"} <= set(st.prompts))
    if not ok:
        raise ModelError(f"cannot export this model to ONNX: modules {kinds}, expected "
                         "Transformer, mean Pooling with the prompt, Normalize, and prompts")


def _verify(st: Any, folder: Path, prompts: dict[str, str]) -> float:
    """Same ids as the model's tokenizer and cosine >= MIN_COSINE on CHECK_TEXTS, both prompts;
    returns the lowest cosine."""
    encoder = OnnxEncoder(folder, max_length=int(st.max_seq_length))
    lowest = 1.0
    for name in ("query", "passage"):
        texts = [prompts[name] + t for t in CHECK_TEXTS]
        want = st.tokenizer(texts, truncation=True, max_length=int(st.max_seq_length))["input_ids"]
        got = [encoder.tokenizer.ids(t) for t in texts]
        if got != [list(w) for w in want]:
            raise ModelError("ONNX export: the query tokenizer's ids differ from the model's")
        ref = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False, prompt="")
        vecs = encoder.encode(texts, ref.shape[1])
        lowest = min(lowest, float(np.min(np.sum(ref * vecs, axis=1))))
    if lowest < MIN_COSINE:
        raise ModelError(f"ONNX export: cosine {lowest:.6f} to sentence-transformers "
                         f"(< {MIN_COSINE}); not installed")
    return lowest


class OnnxEncoder:
    """An ONNX export run by onnxruntime: texts (prompt included) to normalised vectors."""

    # Texts per run. Unlike torch, onnxruntime is faster on small batches here (200 passages,
    # 2 threads: 4: 45/s, 8: 42/s, 16: 40/s, 32: 36/s) and its memory grows with the batch's
    # attention matrices (peak RSS 520, 535, 565, 623 MB).
    batch_size = 8

    def __init__(self, folder: Path, max_length: int = 512, threads: int | None = None):
        import onnxruntime as ort

        self.tokenizer = QueryTokenizer(folder, max_length=max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cores()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's
        self.threads = options.intra_op_num_threads
        self._session = ort.InferenceSession(str(Path(folder) / GRAPH_FILE), options,
                                             providers=["CPUExecutionProvider"])

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
