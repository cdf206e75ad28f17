"""What keeps ampere-qa fast as the corpus grows: vector reuse on rebuild, the approximate index
the build picks above a size, cheap checks of big files, and O(n) top-k. Fake embedder only."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from ampere_qa import Retriever, build_index
from ampere_qa.errors import IndexMismatchError
from ampere_qa.indexing import checks
from ampere_qa.indexing import index as index_mod
from ampere_qa.indexing.index import MANIFEST, load_index
from ampere_qa.indexing.stores import faiss as faiss_backend
from ampere_qa.ingest.passages import SplitSettings
from ampere_qa.retrieve.ranker import top_k as _top_k

from .conftest import FakeEmbedder


class CountingEmbedder(FakeEmbedder):
    """Counts the texts it is asked to embed."""

    def __init__(self, fingerprint: str = "fake-fingerprint-1") -> None:
        super().__init__()
        self.texts = 0
        self._fp = fingerprint

    def fingerprint(self) -> str:
        return self._fp

    def embed_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.texts += len(texts)
        return super().embed_passages(texts, progress)


def _arrays(idx):
    data = load_index(idx)
    sent = data.store.get(np.arange(data.store.count()))
    v = data.vectors
    assert v.windows is not None
    return [sent, v.passage_vectors, v.leave_one_out, v.background, v.windows.vectors, v.windows.docs,
            v.windows.keys]


def test_rebuild_embeds_only_what_changed(tmp_path, corpus_copy):
    idx = tmp_path / "index"
    first = CountingEmbedder()
    report = build_index(corpus_copy, idx, embedder=first)
    assert report.embedded == first.texts > 0 and report.reused == 0

    again = CountingEmbedder()
    report = build_index(corpus_copy, idx, embedder=again)
    assert again.texts == 0 and again.calls == 0  # nothing new: the model is never run
    assert report.reused == first.texts and report.embedded == 0

    (corpus_copy / "more.txt").write_text("Un nouveau paragraphe sur Ampere. Il a deux phrases.",
                                          encoding="utf-8")
    more = CountingEmbedder()
    report = build_index(corpus_copy, idx, embedder=more)
    # The new passage, its two sentences and its two leave-one-out texts (which are the sentences).
    assert more.texts == report.embedded == 3  # its window is the passage's text: embedded once
    fresh = tmp_path / "fresh"
    build_index(corpus_copy, fresh, embedder=CountingEmbedder(), reuse=False)
    for a, b in zip(_arrays(idx), _arrays(fresh), strict=True):
        np.testing.assert_array_equal(a, b)


def test_other_weights_are_never_reused(tmp_path, corpus_copy):
    idx = tmp_path / "index"
    first = CountingEmbedder()
    build_index(corpus_copy, idx, embedder=first)
    other = CountingEmbedder("another-model")
    build_index(corpus_copy, idx, embedder=other)
    assert other.texts == first.texts


def test_a_damaged_previous_index_only_means_no_reuse(tmp_path, corpus_copy):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=CountingEmbedder())
    m = json.loads((idx / MANIFEST).read_text())
    (idx / m["files"]["leave_one_out"]["name"]).write_bytes(b"junk")
    again = CountingEmbedder()
    build_index(corpus_copy, idx, embedder=again)
    assert again.texts > 0 and load_index(idx).passages


def test_build_picks_ivf_above_the_threshold_and_search_agrees(tmp_path, corpus_copy, monkeypatch):
    exact = tmp_path / "exact"
    build_index(corpus_copy, exact, embedder=FakeEmbedder())
    assert json.loads((exact / MANIFEST).read_text())["faiss_index"] == "IndexFlatIP"
    monkeypatch.setattr(faiss_backend, "EXACT_MAX_VECTORS", 5)
    approx = tmp_path / "approx"
    build_index(corpus_copy, approx, embedder=FakeEmbedder())
    m = json.loads((approx / MANIFEST).read_text())
    assert m["faiss_index"] == "IndexIVFFlat" and m["faiss_params"]["nprobe"] >= 1
    a, b = (Retriever.load(i, embedder=FakeEmbedder()) for i in (exact, approx))
    for q in ("Qui dirige Ampere ?", "Qualcomm", "Combien de salariés ?"):
        assert a.search(q, 3) == b.search(q, 3)


def test_unknown_faiss_index_kind_is_refused(tmp_path, corpus_copy):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    m = json.loads((idx / MANIFEST).read_text())
    (idx / MANIFEST).write_text(json.dumps({**m, "faiss_index": "IndexHNSWFlat"}))
    with pytest.raises(IndexMismatchError, match="IndexHNSWFlat"):
        load_index(idx)


@pytest.mark.slow
def test_ivf_recall_on_clustered_vectors():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(200, 64)).astype(np.float32)
    x = centres[rng.integers(0, 200, 20_000)] + 0.3 * rng.normal(size=(20_000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:50] + 0.1 * rng.normal(size=(50, 64)).astype(np.float32)
    exact, _ = faiss_backend.make_faiss(x, "IndexFlatIP")
    approx, info = faiss_backend.make_faiss(x, "IndexIVFFlat")
    _, want = exact.search(q, 10)
    _, got = approx.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want, got, strict=True)])
    assert recall >= 0.95 and info["faiss_params"]["nlist"] == faiss_backend.ivf_lists(20_000)


def test_big_files_are_checked_by_size_and_ends_and_memory_mapped(tmp_path, corpus_copy, monkeypatch):
    monkeypatch.setattr(checks, "FULL_HASH_MAX_BYTES", 4096)
    monkeypatch.setattr(checks, "SAMPLE_BYTES", 512)
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    m = json.loads((idx / MANIFEST).read_text())
    big = [r for r, f in m["files"].items() if "sample_sha256" in f]
    assert "leave_one_out" in big and "sentences" in big
    data = load_index(idx)
    assert isinstance(data.vectors.leave_one_out, np.memmap)
    assert Retriever.load(idx, embedder=FakeEmbedder()).search("Qualcomm", 1)
    path = idx / m["files"]["leave_one_out"]["name"]
    raw = path.read_bytes()
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))  # the end changed
    with pytest.raises(IndexMismatchError, match="does not match its manifest"):
        load_index(idx)
    path.write_bytes(raw[:-8])  # truncated
    with pytest.raises(IndexMismatchError, match="does not match its manifest"):
        load_index(idx)


@pytest.mark.parametrize("seed", range(5))
def test_top_k_matches_a_stable_sort(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, 40).astype(np.float32)  # many ties
    for k in (1, 3, 10, 39, 40, 50):
        want = np.argsort(-scores, kind="stable")[:k]
        assert sorted(_top_k(scores, k).tolist()) == sorted(want.tolist())


# --- opening at scale: BM25 saved at build time, passages parsed when asked for ---------------

QUESTIONS = ("Qui dirige Ampere ?", "Combien de salariés compte Ampere ?", "How many engineers?",
             "Où sont les sites d'Ampere ?", "Qualcomm", "crêpes au sarrasin")


def _many(corpus: Path, n: int) -> Path:
    (corpus / "more.txt").write_text("\n\n".join(
        f"Le site numéro {i} accueillera {10 * i} ingénieurs en {2025 + i % 5}. "
        f"Il produira des moteurs du modèle {i}." for i in range(n)), encoding="utf-8")
    return corpus


def test_bm25_is_saved_at_build_and_scores_as_if_rebuilt(tmp_path, corpus_copy):
    from ampere_qa.indexing.lexical import LexicalIndex

    idx = tmp_path / "index"
    build_index(_many(corpus_copy, 50), idx, embedder=FakeEmbedder())
    data = load_index(idx)
    assert data.lexical is not None
    rebuilt = LexicalIndex([p.indexed_text for p in data.passages])
    assert dict(data.lexical.frequency) == dict(rebuilt.frequency)
    for q in QUESTIONS:
        assert data.lexical.query_tokens(q) == rebuilt.query_tokens(q)
        np.testing.assert_array_equal(data.lexical.scores(q), rebuilt.scores(q))


def test_load_parses_only_the_passages_it_touches(tmp_path, corpus_copy, monkeypatch):
    from ampere_qa.indexing.passage_file import PassageFile

    idx = tmp_path / "index"
    build_index(_many(corpus_copy, 400), idx, embedder=FakeEmbedder(),
                settings=SplitSettings(pack_chars=0))  # a passage a paragraph: 400 and more
    parsed: list[int] = []
    read = PassageFile._read
    monkeypatch.setattr(PassageFile, "_read", lambda self, i: parsed.append(i) or read(self, i))
    r = Retriever.load(idx, embedder=FakeEmbedder())
    n = len(r.data.passages)
    assert isinstance(r.data.passages, PassageFile)
    assert n > 400 and len(parsed) <= 2  # the first and last, checked against the table
    r.answer("Combien d'ingénieurs accueillera le site numéro 7 ?")
    assert 2 < len(set(parsed)) < 40, len(set(parsed))


def test_an_index_without_the_saved_parts_is_read_the_slow_way_alike(tmp_path, corpus_copy):
    """An index built before passage tables and saved BM25 existed (or whose analyzer changed
    since) loads as it always did: every passage parsed, BM25 rebuilt; the same answers."""
    idx, old = tmp_path / "index", tmp_path / "old"
    build_index(_many(corpus_copy, 30), idx, embedder=FakeEmbedder())
    shutil.copytree(idx, old)
    m = json.loads((old / MANIFEST).read_text())
    for role in index_mod.LAZY:
        (old / m["files"].pop(role)["name"]).unlink()
    del m["lexical"]
    (old / MANIFEST).write_text(json.dumps(m))
    new_r, old_r = (Retriever.load(i, embedder=FakeEmbedder()) for i in (idx, old))
    assert isinstance(old_r.data.passages, list) and old_r.data.lexical is None
    assert list(new_r.data.passages) == old_r.data.passages
    for q in QUESTIONS:
        assert new_r.answer(q).to_dict() == old_r.answer(q).to_dict()
    m = json.loads((idx / MANIFEST).read_text())  # saved by another analyzer: rebuilt at load
    (idx / MANIFEST).write_text(json.dumps({**m, "lexical": {"analyzer_version": 0}}))
    assert load_index(idx).lexical is None
    assert Retriever.load(idx, embedder=FakeEmbedder()).answer(QUESTIONS[0]).to_dict() == \
        old_r.answer(QUESTIONS[0]).to_dict()


@pytest.mark.parametrize("kind", ["IndexFlatIP", "IndexIVFFlat"])
def test_big_files_are_mapped_and_read_alike(tmp_path, corpus_copy, monkeypatch, kind):
    idx = tmp_path / "index"
    build_index(_many(corpus_copy, 30), idx, embedder=FakeEmbedder(), faiss_kind=kind)
    small = Retriever.load(idx, embedder=FakeEmbedder())
    monkeypatch.setattr(checks, "FULL_HASH_MAX_BYTES", 1024)  # every file "big": mapped
    monkeypatch.setattr(checks, "SAMPLE_BYTES", 64)
    build_index(corpus_copy, idx, embedder=FakeEmbedder(), faiss_kind=kind)  # records the ends' hashes
    big = Retriever.load(idx, embedder=FakeEmbedder())
    assert big.data.passages._data.__class__.__name__ == "mmap"
    manifest = big.data.manifest
    assert manifest.faiss_index == kind and manifest.files["sentences"].sample_sha256 is not None
    # A big IVF file: rows read at their saved offsets, no direct map built over the whole file.
    assert (big.data.store._rows is not None) == (kind == "IndexIVFFlat")
    rows = np.arange(big.data.store.count())
    np.testing.assert_array_equal(big.data.store.get(rows), small.data.store.get(rows))
    for q in QUESTIONS:
        assert big.answer(q).to_dict() == small.answer(q).to_dict()


@pytest.mark.slow
def test_the_same_corpus_gives_the_same_bytes_whatever_the_hash_seed(tmp_path, corpus_copy):
    """bm25s numbers its vocabulary in a set's order, which changes with PYTHONHASHSEED: the
    saved index numbers it in sorted order, so every data file is the same from run to run."""
    import subprocess
    import sys

    from .conftest import ROOT

    names = []
    for seed in ("1", "2"):
        idx = tmp_path / f"index-{seed}"
        code = ("from tests.conftest import FakeEmbedder\nfrom ampere_qa import build_index\n"
                f"build_index({str(corpus_copy)!r}, {str(idx)!r}, embedder=FakeEmbedder())")
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": seed,
                            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"})
        names.append(sorted(f["name"] for f in json.loads((idx / MANIFEST).read_text())["files"].values()))
    assert names[0] == names[1] and any(n.startswith("lexical_vocab.") for n in names[0])


@pytest.mark.parametrize("damage", ["offsets off by one", "table of another shape", "vocabulary not a list",
                                    "vocabulary one word short", "passage table missing"])
def test_damaged_saved_parts_are_refused(tmp_path, corpus_copy, damage):
    import hashlib
    import io

    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    m = json.loads((idx / MANIFEST).read_text())

    def replace(role: str, data: bytes) -> None:  # the hash updated: only the content is wrong
        (idx / m["files"][role]["name"]).write_bytes(data)
        m["files"][role].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))

    def npy(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, a)
        return buf.getvalue()

    table = np.load(idx / m["files"]["passage_index"]["name"])
    vocab = json.loads((idx / m["files"]["lexical_vocab"]["name"]).read_text())
    if damage == "offsets off by one":
        table[1, 0] += 1
        replace("passage_index", npy(table))
    elif damage == "table of another shape":
        replace("passage_index", npy(table[:, :1].copy()))
    elif damage == "vocabulary not a list":
        replace("lexical_vocab", json.dumps({"a": 1}).encode())
    elif damage == "vocabulary one word short":
        replace("lexical_vocab", json.dumps(vocab[:-1]).encode())
    else:
        (idx / m["files"]["passage_index"]["name"]).unlink()
    (idx / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match="ampere-qa build"):
        Retriever.load(idx, embedder=FakeEmbedder())


def _synthetic(n: int, dim: int):
    from ampere_qa.indexing.index import Vectors
    from ampere_qa.types import Location, Passage

    passages = [Passage(id=f"p{i:05d}", text=f"Le site {i} ouvre.", sentences=((0, 17),),
                        locations=(Location("corpus/a.txt", 0, 17),)) for i in range(n)]
    rng = np.random.default_rng(0)
    unit = lambda rows: (lambda v: v / np.linalg.norm(v, axis=1, keepdims=True))(  # noqa: E731
        rng.standard_normal((rows, dim), dtype=np.float32))
    return passages, Vectors(sentences=unit(n), passage_vectors=unit(n), leave_one_out=unit(n),
                             background=unit(8))


@pytest.mark.slow
def test_the_writer_holds_no_copy_of_every_file_at_once(tmp_path):
    """Data files are streamed one at a time, arrays in np.save's 16 MB slices and FAISS through
    a callback: the writer's own allocations stay under one 64 MB array (0.33 of one measured),
    where holding a copy of every file came to 3.3 (faiss's own memory is not traced)."""
    import tracemalloc

    from ampere_qa.indexing import folder
    from ampere_qa.indexing.index import write_index

    passages, vectors = _synthetic(2000, 8192)  # each array 64 MB
    size = vectors.sentences.nbytes
    described = {"model": {"name": "fake", "fingerprint": "f", "location": ""},
                 "corpus": {"path": "../corpus", "relative_to": "index", "fingerprint": "x",
                            "files": []},
                 "split": {}, "duplicates": {"exact": 0, "near": 0}, "answer": {"min_relevance": 0.0}}
    idx = tmp_path / "index"
    idx.mkdir()
    tracemalloc.start()
    try:
        with folder.build_lock(idx):
            write_index(idx, passages, vectors, described, set())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size, peak / size
    data = load_index(idx)
    assert np.array_equal(data.vectors.leave_one_out, vectors.leave_one_out)
    assert np.array_equal(data.store.get(np.arange(2000)), vectors.sentences)

