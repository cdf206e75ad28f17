"""The index folder: what build writes, and every check load makes before answering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ampere_qa import Retriever, build_index
from ampere_qa.errors import IndexMismatchError, IndexNotFoundError
from ampere_qa.indexing import checks
from ampere_qa.indexing import manifest as manifest_mod
from ampere_qa.indexing import write as write_mod
from ampere_qa.indexing.index import MANIFEST, load_index, read_manifest
from ampere_qa.indexing.stores.faiss import serialize_faiss

from .conftest import CORPUS, FakeEmbedder


@pytest.fixture(scope="module")
def _built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped corpus built once for the module, beside its copy as ``corpus_copy`` lays it."""
    base = tmp_path_factory.mktemp("built")
    build_index(shutil.copytree(CORPUS, base / "corpus"), base / "index", embedder=FakeEmbedder())
    return base / "index"


@pytest.fixture
def built(tmp_path, corpus_copy, _built_once) -> Path:
    """The index ``build_index(corpus_copy, tmp_path / "index")`` writes, as a copy of the module's
    build: the same files but for ``built_at`` (the corpus is named relative to the index, and
    both copies of it keep the shipped files' sizes and times)."""
    return Path(shutil.copytree(_built_once, tmp_path / "index"))


def _manifest(idx: Path) -> dict:
    return json.loads((idx / MANIFEST).read_text())


def _file(idx: Path, role: str) -> Path:
    return idx / _manifest(idx)["files"][role]["name"]


def test_manifest_records_what_was_built(built, corpus_copy):
    m = _manifest(built)
    assert m["format_version"] == 1
    assert m["passage_count"] == 5 and m["dimension"] == FakeEmbedder.dimension
    assert m["model"] == {"name": FakeEmbedder.name, "fingerprint": "fake-fingerprint-1",
                          "location": "(in memory)"}
    assert m["normalization"] == "l2" and m["metric"] == "inner_product"
    assert m["corpus"]["path"] == "../corpus" and m["corpus"]["relative_to"] == "index"
    assert len(m["corpus"]["fingerprint"]) == 64
    assert m["split"]["max_chars"] == 1000 and m["duplicates"] == {"exact": 4, "near": 0}
    assert m["package_version"] and m["built_at"].endswith("Z")
    assert sorted(p.name for p in built.iterdir()) == sorted(
        [MANIFEST, ".ampere-qa.lock"] + [f["name"] for f in m["files"].values()])


def test_loaded_vectors_are_normalised_and_match_the_passages(built):
    data = load_index(built)
    assert len(data.passages) == 5
    assert data.store.count() == sum(len(p.sentences) for p in data.passages) == 13
    sentences = data.store.get(np.arange(13))
    for arr in (sentences, data.vectors.passage_vectors, data.vectors.leave_one_out,
                data.vectors.background):
        assert np.allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    assert data.vectors.background.shape[0] >= 50
    assert data.sentence_owner.tolist() == [
        i for i, p in enumerate(data.passages) for _ in p.sentences]


def test_missing_index(tmp_path):
    with pytest.raises(IndexNotFoundError, match="ampere-qa build"):
        load_index(tmp_path / "nowhere")


@pytest.mark.parametrize("role", ["passages", "sentences", "passage_vectors", "leave_one_out", "background"])
def test_truncated_or_corrupted_files_are_refused(built, role):
    path = _file(built, role)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexMismatchError, match=r"does not match its manifest.*ampere-qa build"):
        load_index(built)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(IndexMismatchError):
        load_index(built)
    path.unlink()
    with pytest.raises(IndexMismatchError, match="missing"):
        load_index(built)


@pytest.mark.parametrize("damage", ["garbage", "format", "no-files", "count"])
def test_bad_manifests_are_refused(built, damage):
    m = _manifest(built)
    text = {
        "garbage": '{"format_version": 1, "mod',
        "format": json.dumps({**m, "format_version": 99}),
        "no-files": json.dumps({**m, "files": {}}),
        "count": json.dumps({**m, "passage_count": 6}),
    }[damage]
    (built / MANIFEST).write_text(text)
    with pytest.raises(IndexMismatchError, match="ampere-qa build"):
        load_index(built)


def test_passages_and_vectors_of_different_counts(built, fake_embedder):
    """A vectors file from another build, with a manifest that agrees with it, is still caught."""
    import faiss

    m = _manifest(built)
    vecs = np.eye(4, FakeEmbedder.dimension, dtype=np.float32)
    raw = serialize_faiss(vecs)
    name = f"sentences.{checks.sha256(raw)[:12]}.faiss"
    (built / name).write_bytes(raw)
    m["files"]["sentences"] = {"name": name, "sha256": checks.sha256(raw), "bytes": len(raw)}
    (built / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match="4 vectors, the manifest says 13"):
        load_index(built)
    assert faiss  # the real library wrote the file


def test_other_model_or_dimension_is_refused(built):
    class Other(FakeEmbedder):
        def fingerprint(self) -> str:
            return "another-model"

    with pytest.raises(IndexMismatchError, match="other model weights"):
        Retriever.load(built, embedder=Other())

    class Smaller(FakeEmbedder):
        dimension = 128

    with pytest.raises(IndexMismatchError, match="128-dimensional"):
        Retriever.load(built, embedder=Smaller())


def test_a_build_that_dies_before_commit_leaves_the_old_index(built, corpus_copy, monkeypatch):
    before = read_manifest(built)
    answer_before = Retriever.load(built, embedder=FakeEmbedder()).search("Qui dirige Ampere ?", 2)
    (corpus_copy / "more.txt").write_text("Un nouveau paragraphe sur Ampere.", encoding="utf-8")
    real = write_mod.write_atomic

    def die_on_manifest(path: Path, data: bytes, **kw) -> None:
        if path.name == MANIFEST:
            raise KeyboardInterrupt  # as if killed just before the commit
        real(path, data, **kw)

    monkeypatch.setattr(write_mod, "write_atomic", die_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus_copy, built, embedder=FakeEmbedder())
    monkeypatch.undo()
    assert read_manifest(built) == before
    after = Retriever.load(built, embedder=FakeEmbedder()).search("Qui dirige Ampere ?", 2)
    assert after == answer_before
    # The next successful build commits and removes the superseded files.
    build_index(corpus_copy, built, embedder=FakeEmbedder())
    assert read_manifest(built).passage_count == 6
    # manifest, lock and the data files it names: nothing superseded, no journal, no temporary file
    assert len(list(built.iterdir())) == 2 + len(read_manifest(built).files) == 15


def test_stale_when_the_corpus_changes(built, corpus_copy):
    r = Retriever.load(built, embedder=FakeEmbedder())
    assert r.is_stale() is False
    (corpus_copy / "renault-ampere-article.txt").write_text("Autre texte.", encoding="utf-8")
    assert r.is_stale() is True


def test_read_only_index_can_be_queried(built):
    for p in [built, *built.iterdir()]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        hits = Retriever.load(built, embedder=FakeEmbedder()).search("Qualcomm", 1)
        assert "Qualcomm" in hits[0].text
    finally:
        built.chmod(0o755)


def test_committed_index_is_up_to_date_with_corpus_and_splitter(monkeypatch):
    """Fails when corpus/ or the splitting code changed and `make index` was not run."""
    from ampere_qa.ingest.corpus import read_corpus
    from ampere_qa.ingest.passages import SplitSettings, deduplicate, split_documents

    from .conftest import INDEX, ROOT

    monkeypatch.chdir(ROOT / "tests")  # the recorded corpus does not depend on the current folder
    manifest = read_manifest(INDEX)
    assert manifest_mod.recorded_corpus(INDEX, manifest) == ROOT / "corpus"
    monkeypatch.chdir(ROOT)  # passage ids hold the source path as given to build: corpus/…
    corpus = read_corpus("corpus")
    assert manifest.corpus.fingerprint == corpus.fingerprint, "run: make index"
    assert manifest.split == SplitSettings().to_dict(), "run: make index"
    passages, _ = deduplicate(split_documents(corpus.documents, SplitSettings()), SplitSettings())
    assert load_index(INDEX).passages == passages, "run: make index"


def test_temporary_files_of_a_killed_write_are_removed_by_the_next_build(built, corpus_copy):
    leftover = built / ".ampere-qa-tmp.sentences.0123456789ab.faiss.k3j2.tmp"
    leftover.write_bytes(b"half")
    # Files of the user's, even named like ours once were, are never removed.
    unrelated = [built / "notes.txt", built / ".sentences.0123456789ab.faiss.k3j2.tmp",
                 built / ".manifest.json.old.tmp", built / "passages.0123456789ab.jsonl"]
    for path in unrelated:
        path.write_text("mine")
    build_index(corpus_copy, built, embedder=FakeEmbedder())
    assert not leftover.exists()
    assert all(path.read_text() == "mine" for path in unrelated)


def test_faiss_store_behind_the_seam(built):
    """The FAISS store numbers rows by position: search and get agree with the raw index,
    upsert appends, delete renumbers (build rewrites FAISS whole, so nothing relies on more)."""
    from ampere_qa.indexing.stores.faiss import FaissStore

    data = load_index(built)
    store = data.store
    assert isinstance(store, FaissStore)
    n = store.count()
    vecs = store.get(np.arange(n))
    scores, ids = store.search(vecs[2], 3)
    assert ids[0] == 2 and abs(scores[0] - 1.0) < 1e-5
    np.testing.assert_array_equal(store.get(np.array([3, 1])), vecs[[3, 1]])
    store.upsert(np.array([n]), vecs[:1])
    assert store.count() == n + 1
    with pytest.raises(ValueError, match="only appending"):
        store.upsert(np.array([0]), vecs[:1])
    store.delete(np.array([n]))
    assert store.count() == n


def test_the_manifest_is_read_typed_and_written_back_as_it_was(built):
    """Readers use the typed manifest; to_dict() gives back the JSON the build wrote."""
    raw = json.loads((built / MANIFEST).read_text())
    m = read_manifest(built)
    assert m.to_dict() == raw and m.to_dict() is not m.raw  # a copy: callers cannot change it
    assert (m.passage_count, m.sentence_count, m.dimension) == (
        raw["passage_count"], raw["sentence_count"], raw["dimension"])
    assert m.model_name == raw["model"]["name"] and m.model_fingerprint == raw["model"]["fingerprint"]
    assert m.corpus.relative_to == manifest_mod.CORPUS_BASE and m.corpus.stat_signature
    assert {role: e.name for role, e in m.files.items()} == {
        role: e["name"] for role, e in raw["files"].items()}
    assert m.store is None and m.store_kind == "faiss" and m.faiss_index == "IndexFlatIP"
    assert m.answer == raw["answer"] and m.analyzer_version == raw["lexical"]["analyzer_version"]
