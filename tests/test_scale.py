"""What keeps ampere-qa fast as the corpus grows: vector reuse on rebuild, the approximate index
the build picks above a size, cheap checks of big files, and O(n) top-k. Fake embedder only."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from ampere_qa import Retriever, build_index
from ampere_qa import index as index_mod
from ampere_qa.errors import IndexMismatchError
from ampere_qa.index import MANIFEST, load_index
from ampere_qa.search import _top_k
from ampere_qa.stores import faiss as faiss_backend

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
    return [sent, v.passage_vectors, v.leave_one_out, v.background]


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
    assert more.texts == report.embedded == 3
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
    monkeypatch.setattr(index_mod, "FULL_HASH_MAX_BYTES", 4096)
    monkeypatch.setattr(index_mod, "SAMPLE_BYTES", 512)
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
