"""The query path without torch: the ONNX export, its tokenizer and the engine choice.

Unit tests use a small Unigram tokenizer built here and a fake export; integration tests the
bundled model's real export against sentence-transformers, in this process and in fresh ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampere_qa.embed.embedding import (
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    load_embedder,
)
from ampere_qa.embed.model import export as export_mod
from ampere_qa.embed.model.querytok import QueryTokenizer, write_files
from ampere_qa.embed.model.tokenizer import build_precompiled_charsmap
from ampere_qa.errors import ModelError

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "e5_reference.json"
HEAVY = ("torch", "transformers", "sentence_transformers")


# --------------------------------------------------------------------------- the tokenizer


def _small_tokenizer(folder: Path, max_length: int) -> Any:
    """A Unigram pipeline shaped like the bundled model's (a normalisation map, collapsed
    spaces, Metaspace, <s> … </s>, <mask> with lstrip), over a small vocabulary whose scores
    take few values, so ties between segmentations are common."""
    from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    chars = "abcdeéèàç'-?.,ABÉ0123"
    words = ["▁", "ab", "abc", "bc", "cd", "ea", "▁a", "▁ab", "▁abc", "▁b", "▁c", "▁é", "é", "▁l'",
             "l'", "▁-", "▁?", "de", "▁de", "▁dé", "ç", "▁A", "▁AB", "00", "▁12", "▁<", "s>", "<s"]
    pieces = specials + sorted(set(chars) | {"▁" + c for c in chars[:8]}) + words + ["<mask>"]
    vocab = [(p, 0.0 if p in specials or p == "<mask>" else -float(1 + i % 4))
             for i, p in enumerate(pieces)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    norm = {ord("Ａ"): (ord("A"),), ord("ﬁ"): (ord("f"), ord("i")), ord("\t"): (32,),
            ord("\u00ad"): (), ord("É"): (ord("E"), 0x301)}
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(build_precompiled_charsmap(norm)),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials]
                           + [AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    tok.save(str(folder / "tokenizer.json"))
    tok.enable_truncation(max_length)
    write_files(folder / "tokenizer.json", folder)
    return tok


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, QueryTokenizer]:
    folder = tmp_path_factory.mktemp("tok")
    full = _small_tokenizer(folder, max_length=12)
    return full, QueryTokenizer(folder, max_length=12)


ATOMS = [*"abcdeéèàç'-?., ABÉxyz\tﬁＡ\u00ad\u0301\n\u3000🙂",
         "<s>", "</s>", "<mask>", "<pad>", "<unk>", "  ", "l'abc"]
TEXT = st.lists(st.sampled_from(ATOMS), max_size=14).map("".join)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_the_query_tokenizer_gives_the_ids_tokenizers_gives(small, text):
    full, light = small
    assert light.ids(text) == full.encode(text).ids


def test_ties_unknowns_specials_and_truncation_follow_tokenizers(small):
    full, light = small
    for text in ["abcd", "zzz abc", "x<s>y", "a <mask>b", "<mask>", "   ", "", "ﬁ Ａ É",
                 "abc " * 20, "\u00ad", "l'abc-de?"]:
        assert light.ids(text) == full.encode(text).ids, text
    ids, mask = light.batch(["abc", "abc abc abc"])
    assert ids.dtype == np.int64 and ids.shape == mask.shape
    assert mask[0].sum() == len(light.ids("abc")) and ids[0, -1] == 1  # padded with <pad>


def test_a_tokenizer_it_cannot_reproduce_is_refused(tmp_path):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}}))
    with pytest.raises(ValueError, match="Unigram"):
        write_files(tmp_path / "tokenizer.json", tmp_path)


# --------------------------------------------------------------------------- export and engine


def test_the_engine_is_checked_before_any_model_is_loaded(monkeypatch):
    with pytest.raises(ModelError, match="unknown engine"):
        load_embedder("bundled", engine="gpu")
    monkeypatch.setenv("AMPERE_QA_ENGINE", "fast")
    with pytest.raises(ModelError, match="AMPERE_QA_ENGINE"):
        load_embedder("bundled")
    with pytest.raises(ModelError, match="only the bundled model"):
        load_embedder("some/other-model", engine="onnx")
    # Any other model goes through sentence-transformers (nothing is loaded until it is used).
    assert isinstance(load_embedder("some/other-model", engine="auto"), SentenceTransformerEmbedder)
    assert isinstance(load_embedder("bundled", engine="torch"), SentenceTransformerEmbedder)


def test_a_failed_export_leaves_nothing_and_a_killed_one_is_cleaned(tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    dead = model_dir / ".onnx.tmp-999999999-abcd"  # no such pid
    dead.mkdir()
    (dead / "model.onnx.data").write_bytes(b"half")

    def fails(model_dir: Path, out: Path) -> dict[str, Any]:
        (out / "model.onnx").write_bytes(b"partial")
        raise ModelError("ONNX export: cosine 0.9 to sentence-transformers (< 0.9999); not installed")

    monkeypatch.setattr(export_mod, "_export_into", fails)
    with pytest.raises(ModelError, match="not installed"):
        export_mod.ensure_export(model_dir, progress=False)
    assert sorted(p.name for p in model_dir.iterdir()) == []  # neither onnx/ nor any temp folder
    assert export_mod.read_export(model_dir) is None


def _fake_export(model_dir: Path) -> dict[str, Any]:
    """An export folder of small stand-in files and a complete record of them."""
    import hashlib

    folder = model_dir / "onnx"
    folder.mkdir(parents=True)
    for name in export_mod.FILES:
        (folder / name).write_bytes(b"x" * 100)
    record = {"export_version": export_mod.EXPORT_VERSION, "weights_fingerprint": "f" * 32,
              "dimension": 2, "max_length": 512,
              "prompts": {"query": "query: ", "passage": "passage: "},
              "files": {n: hashlib.sha256(b"x" * 100).hexdigest() for n in export_mod.FILES},
              "reference": [{"prompt": "query", "text": "a", "vector": [0.6, 0.8]}],
              "min_cosine_to_sentence_transformers": 0.9999996}
    (folder / "export.json").write_text(json.dumps(record))
    return record


def test_an_export_whose_weights_file_changed_is_refused(tmp_path):
    from ampere_qa.embed.model.integrity import CacheDamagedError

    record = _fake_export(tmp_path / "model")
    folder = tmp_path / "model" / "onnx"
    assert export_mod.read_export(tmp_path / "model") == record
    OnnxEmbedder(tmp_path / "model", record)  # the recorded files: accepted
    with (folder / "model.onnx.data").open("ab") as fh:
        fh.write(b"y")
    with pytest.raises(CacheDamagedError, match=r"model\.onnx\.data is damaged .*ampere-qa model install"):
        OnnxEmbedder(tmp_path / "model", record)
    (folder / "export.json").write_text(json.dumps({**record, "export_version": 1}))
    assert export_mod.read_export(tmp_path / "model") is None  # an older export is redone


# --------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def onnx_embedder(model_cache: Path) -> OnnxEmbedder:
    embedder = load_embedder("bundled", cache_dir=model_cache, engine="onnx")
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


@pytest.fixture(scope="module")
def torch_embedder(model_cache: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("bundled", cache_dir=model_cache)


@pytest.mark.integration
def test_the_export_is_tied_to_the_weights_the_index_names(onnx_embedder, torch_embedder):
    from ampere_qa.indexing.index import load_index

    assert onnx_embedder.fingerprint() == torch_embedder.fingerprint()
    assert onnx_embedder.dimension == torch_embedder.dimension == 384
    manifest = load_index(ROOT / "index").manifest
    assert onnx_embedder.fingerprint() == manifest.model_fingerprint


@pytest.mark.integration
def test_vectors_match_sentence_transformers_on_the_reference_texts(onnx_embedder, torch_embedder):
    records = json.loads(REFERENCE.read_text(encoding="utf-8"))["records"]
    model = torch_embedder.model
    for prompt in ("query", "passage"):
        texts = [r["text"] for r in records if r["prompt"] == prompt]
        assert len(texts) > 40
        ours = onnx_embedder.encode(texts, prompt)
        ref = model.encode(texts, prompt_name=prompt, normalize_embeddings=True, convert_to_numpy=True)
        cosines = np.sum(ours * ref, axis=1)
        assert cosines.min() >= 0.9999, (prompt, texts[int(cosines.argmin())], cosines.min())
        prefixed = [model.prompts[prompt] + t for t in texts]
        want = model.tokenizer(prefixed, truncation=True, max_length=512)["input_ids"]
        assert [onnx_embedder.encoder.tokenizer.ids(t) for t in prefixed] == [list(w) for w in want]


@pytest.mark.integration
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_the_query_tokenizer_matches_the_models_on_any_text(onnx_embedder, full_tokenizer, text):
    assert onnx_embedder.encoder.tokenizer.ids(text) == full_tokenizer.encode(text).ids


@pytest.fixture(scope="module")
def full_tokenizer(onnx_embedder: OnnxEmbedder) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(onnx_embedder.location()) / "tokenizer.json"))
    tok.enable_truncation(512)
    return tok


@pytest.mark.integration
@pytest.mark.parametrize("name", ["questions.jsonl", "dialogues.jsonl"])
def test_eval_is_identical_to_the_torch_path(name, onnx_embedder, torch_embedder):
    from ampere_qa import Retriever
    from ampere_qa.eval import (
        evaluate,
        evaluate_dialogues,
        is_dialogue_set,
        load_dialogues,
        load_questions,
    )

    path = ROOT / "eval" / name
    results = []
    for embedder in (onnx_embedder, torch_embedder):
        retriever = Retriever.load(ROOT / "index", embedder=embedder)
        if is_dialogue_set(path):
            results.append(evaluate_dialogues(retriever, load_dialogues(path)).to_dict())
        else:
            results.append(evaluate(retriever, load_questions(path)).to_dict())
    assert results[0] == results[1]  # every metric, every failure, every score


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.mark.integration
def test_questions_never_import_torch_in_a_fresh_process(model_cache, tmp_path):
    """ask (the CLI), Retriever.load().search/answer and eval, in one real process."""
    questions = tmp_path / "q.jsonl"
    lines = (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions.write_text("\n".join(lines[:6]), encoding="utf-8")
    proc = _run(f"""
        import sys
        from ampere_qa.cli import cli
        cli(["ask", "--json", "Qui dirige Ampere ?"], prog_name="ampere-qa", standalone_mode=False)
        from ampere_qa import Retriever
        r = Retriever.load({str(ROOT / "index")!r})
        assert r.search("Combien de salariés ?")
        assert "Luca de Meo" in r.answer("Qui dirige Ampere ?").answer
        cli(["eval", {str(questions)!r}, "--json"], prog_name="ampere-qa", standalone_mode=False)
        print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))
    """)
    assert proc.returncode == 0, proc.stderr
    assert '"answer"' in proc.stdout and '"hit@1"' in proc.stdout
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]
    assert "onnxruntime" not in proc.stderr  # no warnings of its own on the way


@pytest.mark.integration
def test_the_torch_engine_stays_available_and_agrees(model_cache):
    proc = _run("""
        import sys
        from ampere_qa import Retriever
        r = Retriever.load("index")
        print(type(r.embedder).__name__, r.answer("Qui dirige Ampere ?").answer)
        print("torch loaded:", "torch" in sys.modules)
    """, env={"AMPERE_QA_ENGINE": "torch"})
    assert proc.returncode == 0, proc.stderr
    assert "SentenceTransformerEmbedder" in proc.stdout and "Luca de Meo" in proc.stdout
    assert "torch loaded: True" in proc.stdout


def test_auto_falls_back_to_sentence_transformers_when_the_export_cannot_be_written(
        monkeypatch, tmp_path, caplog):
    import ampere_qa.embed.model as model_pkg

    def read_only(model_dir: Path, progress: bool = True, repair: bool = True) -> dict[str, Any]:
        raise ModelError(f"Could not write the ONNX export into {model_dir} (read-only file system)")

    monkeypatch.setattr(model_pkg, "ensure_bundled_model", lambda cache_dir=None, **kw: tmp_path)
    monkeypatch.setattr(export_mod, "ensure_export", read_only)
    embedder = load_embedder("bundled", engine="auto")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert "read-only" in caplog.text and "sentence-transformers instead" in caplog.text
    with pytest.raises(ModelError, match="read-only"):
        load_embedder("bundled", engine="onnx")


def test_a_folder_ampere_qa_did_not_write_is_never_replaced(tmp_path, monkeypatch):
    model_dir = tmp_path / "model"
    (model_dir / "onnx").mkdir(parents=True)
    (model_dir / "onnx" / "notes.txt").write_text("mine")

    def exported(model_dir: Path, out: Path) -> dict[str, Any]:
        (out / "model.onnx").write_bytes(b"graph")
        return {"export_version": export_mod.EXPORT_VERSION}

    monkeypatch.setattr(export_mod, "_export_into", exported)
    with pytest.raises(ModelError, match="not written by ampere-qa"):
        export_mod.ensure_export(model_dir, progress=False)
    assert (model_dir / "onnx" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in model_dir.iterdir()) == ["onnx"]  # no temp folder left
    # An earlier export of ours (it has its record) is replaced.
    (model_dir / "onnx" / "export.json").write_text("{}")
    export_mod.ensure_export(model_dir, progress=False)
    assert not (model_dir / "onnx" / "notes.txt").exists()
    assert (model_dir / "onnx" / "model.onnx").read_bytes() == b"graph"
