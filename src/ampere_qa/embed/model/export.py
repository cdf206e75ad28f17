"""The ONNX export: the converted model as a graph onnxruntime runs, so that a question needs
neither torch nor sentence-transformers (a cold ``ask`` in about a second instead of seven).

Written once into ``onnx/`` inside the converted model's folder, by ``model install`` or on first
use, the way the conversion is: built in a hidden temp folder, checked, renamed into place last,
under the conversion's lock. ``export.json``, written last, ties it to the weights it came from
(their fingerprint, as recorded in every index's manifest), records the full sha256 of each of
its files and the vectors of two reference texts. Before a session opens, every file is checked
against its sha256 (hashed once, then remembered in a stamp tied to the file's identity:
``integrity.py``); once it is open, the files must still be those and the session must give the
reference vectors (cosine >= MIN_COSINE), so the session that answers is the one checked. A
damaged export raises ``CacheDamagedError`` naming the file and ``ampere-qa model install``,
which exports it again.

The graph is BERT, mean pooling over the attention mask and L2 normalisation, exported by
``torch.onnx.export`` (TorchScript exporter, opset 17, dynamic batch and length), with the
weights as ONNX external data: onnxruntime then maps them instead of copying them, which is the
difference between ~0.4 s / 145 MB and 1.5-3 s / 875 MB to open the session. sentence-transformers'
own ONNX backend needs ``optimum-onnx``, whose ``transformers<4.58`` excludes the transformers 5
that sentence-transformers 6 requires. The export refuses to install itself unless its vectors
match sentence-transformers' (cosine >= 0.9999) and its tokenizer gives the same ids.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ...atomic import fsync_dir, write_atomic
from ...errors import ModelError
from . import querytok
from .integrity import (
    INSTALL,
    CacheDamagedError,
    file_mode,
    hash_files,
    read_record,
    same_identities,
    verify_files,
    write_stamp,
)
from .onnxrun import DATA_FILE, GRAPH_FILE, OnnxEncoder, _one_line
from .provision import check_model, clean_stale_temps, is_complete, locked, new_temp_dir

ONNX_DIR = "onnx"
EXPORT_FILE = "export.json"
# 2: the full sha256 of every file and the vectors of REFERENCE_TEXTS (1 had a sampled hash of
# the weights file, which missed everything between its samples). An export of another version
# is exported again, under the conversion's lock, on first use.
EXPORT_VERSION = 2
FILES = (GRAPH_FILE, DATA_FILE, querytok.PIECES_FILE, querytok.SCORES_FILE, querytok.PIPELINE_FILE)
MIN_COSINE = 0.9999
OPSET = 17
FIX = f"run '{INSTALL}' to export the model again"
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
# Texts whose vectors export.json records: every session is checked on them when it opens, so
# a session that answers is one that gives the vectors the export gave. Short, in one batch:
# ~15 ms and ~7 MB of onnxruntime's arena on a cold ask (a 20-token passage took ~15 MB).
REFERENCE_TEXTS = [
    ("query", "Qui dirige Ampere ?"),
    ("passage", "Ampere est une filiale de Renault."),
]
_SHA256 = re.compile(r"[0-9a-f]{64}")


def export_dir(model_dir: Path) -> Path:
    return Path(model_dir) / ONNX_DIR


def _damaged(path: Path, problem: str) -> CacheDamagedError:
    return CacheDamagedError(f"{path} is damaged ({problem})", FIX)


def read_export(model_dir: Path) -> dict[str, Any] | None:
    """The export's record, checked field by field; None when there is no export yet or it is
    of another version (export again). A record that cannot be read or does not check raises
    :class:`CacheDamagedError` naming it; its files are checked by :func:`check_files`."""
    path = export_dir(model_dir) / EXPORT_FILE
    record = read_record(path, FIX)
    if record is None:
        return None
    version = record.get("export_version")
    if type(version) is int and version != EXPORT_VERSION:
        return None
    problem = _record_problem(record)
    if problem:
        raise _damaged(path, problem)
    return record


def _record_problem(r: dict[str, Any]) -> str | None:
    """What is wrong with a record of this version, or None."""
    def integer(v: Any, low: int) -> bool:
        return type(v) is int and v >= low

    def number(v: Any) -> bool:
        return type(v) in (int, float) and math.isfinite(v)

    prompts, files, refs = r.get("prompts"), r.get("files"), r.get("reference")
    dim = r.get("dimension") if integer(r.get("dimension"), 1) else None  # else reported once
    checks = [
        ("export_version", type(r.get("export_version")) is int),
        ("weights_fingerprint", isinstance(r.get("weights_fingerprint"), str)
         and bool(r.get("weights_fingerprint"))),
        ("dimension", integer(r.get("dimension"), 1)),
        ("max_length", integer(r.get("max_length"), 3)),
        ("prompts", isinstance(prompts, dict)
         and all(isinstance(prompts.get(k), str) for k in ("query", "passage"))),
        ("files", isinstance(files, dict) and all(
            isinstance(files.get(n), str) and _SHA256.fullmatch(files[n]) for n in FILES)),
        ("min_cosine_to_sentence_transformers",
         number(r.get("min_cosine_to_sentence_transformers"))),
        ("reference", isinstance(refs, list) and bool(refs) and all(
            isinstance(e, dict) and e.get("prompt") in ("query", "passage")
            and isinstance(e.get("text"), str) and isinstance(e.get("vector"), list)
            and len(e["vector"]) in (dim, len(e["vector"]) if dim is None else dim)
            and all(map(number, e["vector"]))
            for e in refs)),
    ]
    bad = [key for key, ok in checks if not ok]
    return f"missing or invalid: {', '.join(bad)}" if bad else None


def check_files(model_dir: Path, record: dict[str, Any],
                rehash: bool = False) -> dict[str, tuple[int, ...]]:
    """Refuse an export whose files are not the ones it recorded (full sha256, remembered in the
    folder's stamp while each file's identity stays the same); returns the identities checked."""
    folder = export_dir(model_dir)
    return verify_files(folder, record["files"], folder / EXPORT_FILE, FIX, rehash=rehash)


def open_encoder(model_dir: Path, record: dict[str, Any], threads: int | None = None,
                 rehash: bool = False) -> OnnxEncoder:
    """A session on the export, opened only from files that check, refused unless they are
    still those files once it is open and it gives the recorded reference vectors."""
    folder = export_dir(model_dir)
    identities = check_files(model_dir, record, rehash=rehash)
    try:
        encoder = OnnxEncoder(folder, int(record["max_length"]), threads)
    except ModelError as exc:
        raise CacheDamagedError(str(exc), FIX) from exc
    same_identities(folder, identities, FIX)
    check_reference(encoder, record, folder)
    return encoder


def check_reference(encoder: OnnxEncoder, record: dict[str, Any], folder: Path) -> None:
    """The session must give the vectors the export recorded (cosine >= MIN_COSINE)."""
    refs = record["reference"]
    texts = [record["prompts"][e["prompt"]] + e["text"] for e in refs]
    want = np.array([e["vector"] for e in refs], dtype=np.float64)
    try:
        got = encoder.encode(texts, int(record["dimension"])).astype(np.float64)
    except Exception as exc:  # onnxruntime's own errors derive from Exception only
        raise CacheDamagedError(f"onnxruntime cannot run {folder / GRAPH_FILE} "
                                f"({_one_line(exc)})", FIX) from exc
    norms = np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
    cosines = np.sum(got * want, axis=1) / np.where(norms > 0, norms, 1.0)
    lowest = float(np.min(cosines))
    if not lowest >= MIN_COSINE:  # NaN too
        raise CacheDamagedError(
            f"{folder / DATA_FILE} does not give the vectors {folder / EXPORT_FILE} records for "
            f"its reference texts (cosine {lowest:.4f} < {MIN_COSINE}): these are not the "
            "weights that were exported", FIX)


def ensure_export(model_dir: Path, progress: bool = True, repair: bool = True) -> dict[str, Any]:
    """The record of ``model_dir``'s ONNX export, exporting it first if there is none or it is
    of another version. ``repair`` (``model install``) also checks every file in full (stamps
    ignored) and the reference vectors, and exports again when anything does not check;
    without it (the query path) a damaged export raises :class:`CacheDamagedError`."""
    record = _current(model_dir, repair, progress)
    if record is not None:
        return record
    _refuse_foreign(export_dir(model_dir))  # before a 30 s export that could not be installed
    try:
        with locked(Path(model_dir).parent / ".convert.lock"):
            record = _current(model_dir, repair, False)  # another process may have finished meanwhile
            if record is None:
                record = export(model_dir, progress=progress)
    except OSError as exc:
        raise ModelError(f"Could not write the ONNX export into {model_dir} ({exc}). "
                         "Set AMPERE_QA_CACHE to a writable folder.") from exc
    return record


def _current(model_dir: Path, repair: bool, progress: bool) -> dict[str, Any] | None:
    """The export's record if it is of this version (and, repairing, if everything checks)."""
    if not repair:
        return read_export(model_dir)
    try:
        record = read_export(model_dir)
        if record is not None:
            open_encoder(model_dir, record, threads=1, rehash=True)
    except CacheDamagedError as exc:
        if progress:
            print(f"{exc.problem}: exporting the model again", file=sys.stderr, flush=True)
        return None
    return record


def _refuse_foreign(target: Path) -> None:
    """A folder without its record is not provably ours: it is never deleted."""
    if os.path.lexists(target) and not (target / EXPORT_FILE).is_file():
        raise CacheDamagedError(
            f"{target} exists and was not written by ampere-qa (it has no {EXPORT_FILE}), so it "
            "is never deleted", f"remove {target} yourself, then run '{INSTALL}'")


def export(model_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Export ``model_dir`` (a converted bundled model) to ``model_dir/onnx``, atomically."""
    model_dir = Path(model_dir)
    target = export_dir(model_dir)
    _refuse_foreign(target)
    if is_complete(model_dir):  # a damaged file is named before the export is announced
        check_model(model_dir)
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
            _refuse_foreign(target)
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

    check_model(model_dir)  # a damaged file of the converted model is named, not exported
    st: Any = load_sentence_transformer(model_dir)  # Any: its typed Optionals hold for this model
    _check_pipeline(st)
    bert = st[0].auto_model.eval()
    # The TorchScript exporter traces plain attention; the export is checked against the same
    # model's own vectors below, so switching its attention kernel cannot pass unnoticed.
    bert.set_attn_implementation("eager")

    _write_graph(bert, out)
    querytok.write_files(model_dir / "tokenizer.json", out)
    for name in FILES:  # onnx creates the external data file 0600: as readable as the rest
        os.chmod(out / name, file_mode())
    hashed = hash_files(out, list(FILES))  # what is checked below is what gets recorded
    prompts = dict(st.prompts)
    dimension = int(st.get_embedding_dimension())
    encoder = OnnxEncoder(out, max_length=int(st.max_seq_length))
    cosine = _verify(st, encoder, prompts)
    vectors = encoder.encode([prompts[p] + t for p, t in REFERENCE_TEXTS], dimension)
    same_identities(out, {n: ident for n, (ident, _) in hashed.items()}, FIX)
    write_stamp(out, hashed)
    import onnxruntime

    return {
        "export_version": EXPORT_VERSION,
        "weights_fingerprint": weights_fingerprint(st),
        "dimension": dimension,
        "max_length": int(st.max_seq_length),
        "prompts": {"query": prompts["query"], "passage": prompts["passage"]},
        "files": {name: digest for name, (_, digest) in hashed.items()},
        "reference": [{"prompt": p, "text": t, "vector": [round(float(x), 8) for x in v]}
                      for (p, t), v in zip(REFERENCE_TEXTS, vectors, strict=True)],
        "min_cosine_to_sentence_transformers": round(cosine, 7),
        "opset": OPSET,
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__,
                          "onnxruntime": onnxruntime.__version__},
    }


def _write_graph(bert: Any, out: Path) -> None:
    """Trace BERT with mean pooling and L2 normalisation into ``out``'s graph and data files."""
    import warnings

    import onnx
    import torch

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


def _verify(st: Any, encoder: OnnxEncoder, prompts: dict[str, str]) -> float:
    """Same ids as the model's tokenizer and cosine >= MIN_COSINE on CHECK_TEXTS, both prompts;
    returns the lowest cosine."""
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
