"""The Milvus store on Milvus Lite (a local .db file) and on a real Milvus server (the 2.3
standalone server of the PyPI package ``milvus``, authentication on): same answers and metrics
as FAISS, incremental updates that touch only what changed, collections that disagree with their
manifest refused, credentials kept out of every file and message. Needs the [milvus] extra and
``milvus`` (both in [test]); skipped without them."""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ampere_qa import Retriever, build_index
from ampere_qa.errors import IndexMismatchError, StoreUnavailableError
from ampere_qa.indexing.index import MANIFEST, load_index

from .conftest import INDEX, ROOT, FakeEmbedder
from .test_scale import CountingEmbedder

HAVE_PYMILVUS = importlib.util.find_spec("pymilvus") is not None
needs_milvus = pytest.mark.skipif(
    not HAVE_PYMILVUS, reason="pymilvus is not installed: pip install 'ampere-qa[milvus]' (in [test])")
pytestmark = [pytest.mark.integration, pytest.mark.milvus]

# Scores of the same vectors through FAISS and through Milvus differ only by float32 rounding.
SCORE_TOLERANCE = 1e-4
QUESTIONS = ("Qui dirige Ampere ?", "Combien de salariés compte Ampere ?", "Who leads Ampere?",
             "How many engineers work at Ampere?", "Quels modèles d'ici 2025 ?")


class MemoEmbedder:
    """The real model, each question embedded once: both evaluations (four lookups per question
    each) then cost one encode per question, and both stores see the very same query vectors."""

    def __init__(self, inner):
        self.inner, self.name, self._memo = inner, inner.name, {}

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def location(self) -> str:
        return self.inner.location()

    def embed_passages(self, texts, progress=None):
        return self.inner.embed_passages(texts, progress)

    def embed_queries(self, texts):
        todo = [t for t in texts if t not in self._memo]
        if todo:
            self._memo.update(zip(todo, self.inner.embed_queries(todo), strict=True))
        return np.stack([self._memo[t] for t in texts])


@pytest.fixture(params=["lite", "server"])
def milvus_at(request, tmp_path, monkeypatch) -> tuple[str, str]:
    """Where a test's rows go: a Milvus Lite file, or a collection of its own on the server
    (whose token the store then reads from the environment)."""
    if request.param == "lite":
        return str(tmp_path / "vectors.db"), "ampere_qa"
    uri, token = request.getfixturevalue("milvus_server")
    monkeypatch.setenv("AMPERE_QA_MILVUS_TOKEN", token)
    return uri, f"t_{uuid.uuid4().hex[:12]}"


def _collection_ids(idx: Path) -> set[int]:
    return {int(i) for i in load_index(idx).store.ids()}


def _keys(idx: Path) -> set[int]:
    keys = load_index(idx).store.keys
    return {int(k) for k in keys}


@functools.cache
def _client_at(uri: str):
    """One client per URI and token for the helpers below (a kill test polls many times a second)."""
    from ampere_qa.indexing.stores.milvus import MilvusStore

    return MilvusStore(uri, "x").client


def _generations(uri: str, collection: str) -> list[str]:
    """The generations of ``collection`` at ``uri``, whoever wrote them."""
    from ampere_qa.indexing.stores.milvus import GENERATION

    client = _client_at(uri) if "://" in uri else _fresh_client(uri)
    return sorted(n for n in client.list_collections()
                  if (m := GENERATION.match(n)) and m["alias"] == collection)


def _fresh_client(uri: str):
    from ampere_qa.indexing.stores.milvus import MilvusStore

    return MilvusStore(uri, "x").client


def _alias_target(uri: str, collection: str) -> str | None:
    from ampere_qa.indexing.stores.milvus import MilvusStore

    return MilvusStore(uri, collection).alias_target()


@needs_milvus
def test_same_answers_and_metrics_as_faiss(tmp_path, real_embedder, milvus_at):
    """CLI build into Milvus Lite (vectors reused from the committed FAISS index: nothing is
    re-embedded), then the same hits for French and English questions and the same metrics on
    the committed evaluation set."""
    from click.testing import CliRunner

    from ampere_qa.cli import cli
    from ampere_qa.eval import evaluate, load_questions

    idx = tmp_path / "index"
    shutil.copytree(INDEX, idx)
    uri, collection = milvus_at
    result = CliRunner().invoke(cli, ["build", "--corpus", str(ROOT / "corpus"), "--index", str(idx),
                                      "--store", "milvus", "--uri", uri, "--collection", collection,
                                      "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["store"] == "milvus" and report["embedded"] == 0
    assert report["upserted"] == report["sentences"] and report["deleted"] == 0
    manifest = json.loads((idx / MANIFEST).read_text())
    recorded = uri if "://" in uri else str(Path(uri).resolve())
    generation = manifest["store"].pop("generation")
    assert manifest["store"] == {"kind": "milvus", "uri": recorded, "collection": collection}
    # The rows are in a generation; the collection's name is an alias of it.
    assert _generations(uri, collection) == [generation]
    assert _alias_target(uri, collection) == generation
    assert "sentences" not in manifest["files"]  # the vectors are in Milvus, not in a FAISS file

    memo = MemoEmbedder(real_embedder)
    retriever = Retriever.load(INDEX, embedder=memo)
    milvus = Retriever.load(idx, embedder=memo)
    for q in QUESTIONS:
        a, b = retriever.search(q, 5), milvus.search(q, 5)
        # Passage ids hash the source path, given here as an absolute path: compare spans.
        assert [(h.text, h.start, h.end) for h in a] == [(h.text, h.start, h.end) for h in b], q
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=SCORE_TOLERANCE)
        assert retriever.answer(q).to_dict()["answer"] == milvus.answer(q).to_dict()["answer"]

    questions = load_questions(ROOT / "eval" / "questions.jsonl")
    faiss_metrics = evaluate(retriever, questions).systems
    milvus_metrics = evaluate(milvus, questions).systems
    assert faiss_metrics == milvus_metrics  # hit@1, hit@3, MRR, answer hit, abstention: identical


@needs_milvus
def test_incremental_builds_switch_generations(tmp_path, corpus_copy, milvus_at):
    """Add a document, change a paragraph, delete a file: the same texts are embedded as with
    FAISS; each build that changes something writes a new generation holding exactly the
    current sentences, moves the alias to it and drops the generation two builds back (the
    previous one stays for servers still running on it); a build that changes nothing writes
    nothing."""
    idx, ref = tmp_path / "index", tmp_path / "faiss"
    db, collection = milvus_at

    def both() -> tuple:
        m, f = CountingEmbedder(), CountingEmbedder()
        rm = build_index(corpus_copy, idx, embedder=m, store="milvus", uri=db, collection=collection)
        rf = build_index(corpus_copy, ref, embedder=f)
        assert rm.embedded == m.texts == rf.embedded == f.texts  # same reuse as FAISS
        assert _collection_ids(idx) == _keys(idx)  # exactly the current sentences, nothing stale
        data = load_index(idx)
        assert data.store.count() == rm.sentences
        generation = data.manifest.store["generation"]
        assert _alias_target(db, collection) == generation
        r = Retriever.load(idx, embedder=FakeEmbedder())
        assert [h.passage_id for h in r.search("Cléon", 3)] == \
            [h.passage_id for h in Retriever.load(ref, embedder=FakeEmbedder()).search("Cléon", 3)]
        return rm, r, generation

    first, _, g1 = both()
    assert first.upserted == first.sentences and first.deleted == 0

    again, _, same = both()  # nothing changed: nothing embedded, nothing written
    assert (again.embedded, again.upserted, again.deleted, same) == (0, 0, 0, g1)

    (corpus_copy / "second.txt").write_text(
        "Le laboratoire de Grenoble teste des batteries sodium-ion. Il emploie quarante chercheurs.",
        encoding="utf-8")
    added, r, g2 = both()
    # The passage, its 2 sentences (also their leave-one-out texts): 3 texts embedded.
    assert (added.embedded, added.upserted, added.deleted) == (3, first.sentences + 2, 0)
    assert r.search("batteries sodium-ion Grenoble", 1)[0].source.endswith("second.txt")
    assert _generations(db, collection) == sorted([g1, g2])

    article = corpus_copy / "renault-ampere-article.txt"
    text = article.read_text(encoding="utf-8")
    old = "L'entité rassemble maintenant 11 000 salariés du groupe"
    assert text.count(old) >= 1
    article.write_text(text.replace(old, "L'entité rassemble maintenant 12 500 salariés du groupe"),
                       encoding="utf-8")
    changed, r, g3 = both()
    # Only the edited paragraph's texts are embedded; g1 (two builds back) is dropped.
    assert 0 < changed.embedded < first.embedded and changed.deleted == first.sentences
    assert _generations(db, collection) == sorted([g2, g3])
    top = r.search("Combien de salariés rassemble l'entité ?", 1)[0]
    assert "12 500" in top.text and "11 000 salariés" not in " ".join(
        p.text for p in load_index(idx).passages)

    (corpus_copy / "second.txt").unlink()
    removed, r, g4 = both()
    assert (removed.embedded, removed.upserted, removed.deleted) == (0, first.sentences, added.sentences)
    assert all(not h.source.endswith("second.txt") for h in r.search("batteries sodium-ion", 5))
    assert _generations(db, collection) == sorted([g3, g4])

    # Back to FAISS: the index answers from its folder and every generation it wrote is gone.
    back = build_index(corpus_copy, idx, embedder=FakeEmbedder(), store="faiss")
    assert back.deleted == changed.sentences + removed.sentences
    assert _generations(db, collection) == []
    assert _alias_target(db, collection) is None
    assert load_index(idx).store.kind == "faiss"


@needs_milvus
def test_a_retriever_on_the_previous_manifest_answers_until_the_build_after(tmp_path, corpus_copy,
                                                                           milvus_at):
    """What a `serve` started before a rebuild sees: its generation is kept by the next build,
    so it answers as before; the build after drops it, and the question fails in one line that
    says to restart (never a traceback, never rows of another build)."""
    db, collection = milvus_at
    idx = tmp_path / "index"

    def build() -> None:
        build_index(corpus_copy, idx, embedder=FakeEmbedder(), store="milvus", uri=db,
                    collection=collection)

    build()
    running = Retriever.load(idx, embedder=FakeEmbedder())
    before = running.answer("Combien de salariés compte Ampere ?").to_dict()
    (corpus_copy / "second.txt").write_text("Une phrase de plus. Et une autre encore.", encoding="utf-8")
    build()
    assert running.answer("Combien de salariés compte Ampere ?").to_dict() == before
    (corpus_copy / "second.txt").write_text("Une autre phrase. Et encore une.", encoding="utf-8")
    build()
    with pytest.raises(StoreUnavailableError, match="restart to load the new index"):
        running.answer("Combien de salariés compte Ampere ?")
    assert Retriever.load(idx, embedder=FakeEmbedder()).answer(
        "Combien de salariés compte Ampere ?").to_dict()["answer"] == before["answer"]


@needs_milvus
def test_a_generation_killed_before_it_was_indexed_is_dropped(tmp_path, corpus_copy, milvus_at):
    """A build killed between creating its generation and indexing it leaves a collection the
    server cannot load ("index not found"): the next build drops it all the same."""
    from pymilvus import DataType, MilvusClient

    from ampere_qa.indexing.stores import milvus

    uri, collection = milvus_at
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, store="milvus", uri=uri, collection=collection, embedder=FakeEmbedder())
    client = _fresh_client(uri)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=FakeEmbedder.dimension)
    orphan = f"{collection}__g0123456789ab"
    client.create_collection(orphan, schema=schema, properties={
        milvus.OWNER_PROPERTY: milvus.OWNER, milvus.INDEX_PROPERTY: str(idx.resolve())})
    (corpus_copy / "extra.txt").write_text("Une phrase de plus. Et une autre encore.", encoding="utf-8")
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    assert orphan not in _generations(uri, collection)


@needs_milvus
def test_a_collection_that_disagrees_with_the_manifest_is_refused(tmp_path, corpus_copy, milvus_at):
    db, collection = milvus_at
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder(), store="milvus", uri=db, collection=collection)
    Retriever.load(idx, embedder=FakeEmbedder())

    # Another index folder building into the same collection name writes its own generation
    # (the alias follows it) and leaves this index answering.
    other = tmp_path / "other-corpus"
    other.mkdir()
    (other / "a.txt").write_text("Un tout autre texte. Sur un autre sujet.", encoding="utf-8")
    build_index(other, tmp_path / "other-index", embedder=FakeEmbedder(), store="milvus", uri=db,
                collection=collection)
    assert len(_generations(db, collection)) == 2
    data = load_index(idx)
    assert _alias_target(db, collection) != data.manifest.store["generation"]

    # The generation's metadata changed behind the manifest's back.
    meta = data.store.meta()
    data.store.set_meta({**meta, "corpus_fingerprint": "0" * 64})
    with pytest.raises(IndexMismatchError, match=r"does not match the index manifest.*ampere-qa build"):
        Retriever.load(idx, embedder=FakeEmbedder())
    data.store.set_meta(meta)

    # Rows removed behind the manifest's back: the row count is refused.
    data.store.delete(np.array([0]))  # the first sentence row
    with pytest.raises(IndexMismatchError, match="row count"):
        load_index(idx)

    # The generation dropped altogether.
    data.store.drop()
    with pytest.raises(IndexMismatchError, match=r"does not exist.*--store milvus"):
        load_index(idx)


@needs_milvus
def test_build_options_are_checked(tmp_path, corpus_copy):
    from ampere_qa.errors import BadInputError

    with pytest.raises(BadInputError, match="--uri"):
        build_index(corpus_copy, tmp_path / "i", embedder=FakeEmbedder(), store="milvus")
    with pytest.raises(BadInputError, match="--store milvus"):
        build_index(corpus_copy, tmp_path / "i", embedder=FakeEmbedder(), store="faiss", uri="x.db")


def test_missing_pymilvus_names_the_extra(monkeypatch):
    from ampere_qa.indexing.stores import milvus as stores

    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus -> ImportError
    with pytest.raises(StoreUnavailableError, match=r"pip install 'ampere-qa\[milvus\]'"):
        stores.MilvusStore("x.db")


# --------------------------------------------------------------------------- the server only


@needs_milvus
def test_the_token_opens_the_server_and_is_written_nowhere(tmp_path, corpus_copy, milvus_server,
                                                           monkeypatch):
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    uri, token = milvus_server
    monkeypatch.delenv("AMPERE_QA_MILVUS_TOKEN", raising=False)
    idx, collection = tmp_path / "index", f"t_{uuid.uuid4().hex[:12]}"
    args = ["build", "--corpus", str(corpus_copy), "--index", str(idx), "--store", "milvus",
            "--uri", uri, "--collection", collection]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code != 0 and not (idx / MANIFEST).exists()
    assert "AMPERE_QA_MILVUS_TOKEN" in refused.output and "Traceback" not in refused.output

    built = CliRunner().invoke(cli, [*args, "--token", token, "--json"])
    assert built.exit_code == 0, built.output
    asked = CliRunner().invoke(cli, ["ask", "--index", str(idx), "--json", "Qui dirige Ampere ?"])
    assert asked.exit_code == 0 and "Luca de Meo" in asked.output  # the token, from the environment
    written = "".join(p.read_text(errors="replace") for p in idx.rglob("*") if p.is_file())
    password = token.split(":", 1)[1]
    for text in (written, built.output, asked.output):
        assert password not in text
    meta = json.dumps(load_index(idx).store.meta())
    assert password not in meta


@needs_milvus
def test_two_servers_answer_from_one_milvus_server_alike(tmp_path, milvus_server, real_embedder,
                                                         monkeypatch):
    import httpx

    from .serving import running_server

    uri, token = milvus_server
    monkeypatch.setenv("AMPERE_QA_MILVUS_TOKEN", token)  # the build here and both servers
    idx, collection = tmp_path / "index", f"t_{uuid.uuid4().hex[:12]}"
    shutil.copytree(INDEX, idx)  # its vectors are reused: nothing to embed
    build_index(ROOT / "corpus", idx, embedder=real_embedder, store="milvus", uri=uri,
                collection=collection)
    env = {"AMPERE_QA_MILVUS_TOKEN": token}
    with running_server(idx, tmp_path / "a.log", env=env) as (_, a), \
            running_server(idx, tmp_path / "b.log", env=env) as (_, b):
        def ask(url: str, q: str) -> dict:
            r = httpx.post(url + "api/ask", json={"question": q}, timeout=60)
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(8) as pool:  # both at once
            got_a = list(pool.map(lambda q: ask(a, q), QUESTIONS * 2))
            got_b = list(pool.map(lambda q: ask(b, q), QUESTIONS * 2))
    assert got_a == got_b
    faiss = Retriever.load(INDEX, embedder=real_embedder)
    assert [g["answer"] for g in got_a[: len(QUESTIONS)]] == [faiss.answer(q).answer for q in QUESTIONS]


@needs_milvus
def test_a_large_collection_gets_an_approximate_index_that_finds_the_same(tmp_path, corpus_copy,
                                                                          milvus_at, monkeypatch):
    """Above FAISS's exact limit a server's collection is created with HNSW (the limit lowered
    here to the corpus's size; Milvus Lite stays FLAT): on a corpus this small, HNSW finds
    exactly what FAISS finds."""
    from ampere_qa.indexing.stores.milvus import store as milvus_store

    monkeypatch.setattr(milvus_store, "EXACT_MAX_VECTORS", 5)
    uri, collection = milvus_at
    idx, ref = tmp_path / "index", tmp_path / "faiss"
    build_index(corpus_copy, idx, embedder=FakeEmbedder(), store="milvus", uri=uri, collection=collection)
    build_index(corpus_copy, ref, embedder=FakeEmbedder())
    store = load_index(idx).store
    assert store.index_type() == ("HNSW" if "://" in uri else "FLAT")
    r, f = Retriever.load(idx, embedder=FakeEmbedder()), Retriever.load(ref, embedder=FakeEmbedder())
    for q in QUESTIONS:
        assert [h.passage_id for h in r.search(q, 3)] == [h.passage_id for h in f.search(q, 3)], q


@needs_milvus
@pytest.mark.parametrize("point", ["loading the model", "embedding", "writing the new generation",
                                   "writing the first data file", "writing the third data file"])
def test_a_build_killed_leaves_the_previous_milvus_index_answering(point, tmp_path, milvus_server,
                                                                   model_cache, real_embedder,
                                                                   monkeypatch):
    """The FAISS kill points (test_hardening.py), plus one while the new generation's rows are
    being written, on the server: the previous manifest, generation and alias stay, the index
    answers as before, and the next build drops what the killed one left."""
    from ampere_qa.indexing.stores.milvus import TOKEN_ENV

    from .test_hardening import ASK, KILL_POINTS, STALL_AFTER, grown_corpus, kill_build_when

    uri, token = milvus_server
    monkeypatch.setenv(TOKEN_ENV, token)
    collection, idx = f"t_{uuid.uuid4().hex[:12]}", tmp_path / "index"
    corpus = grown_corpus(tmp_path / "corpus")
    for _attempt in range(3):  # a build that finished before its point was seen: again
        shutil.rmtree(idx, ignore_errors=True)
        shutil.copytree(INDEX, idx)  # its vectors are reused: nothing to embed
        build_index(ROOT / "corpus", idx, embedder=real_embedder, store="milvus", uri=uri,
                    collection=collection)
        manifest_before = (idx / MANIFEST).read_bytes()
        answer_before = Retriever.load(idx, embedder=real_embedder).answer(ASK).to_dict()
        generation = json.loads(manifest_before)["store"]["generation"]
        before = set(_generations(uri, collection))
        when = KILL_POINTS.get(point) or (
            lambda t, err, new, before=before: len(set(_generations(uri, collection)) - before) > 0)
        # The generation is written after the passages file and before the sentence keys: a poll
        # that misses it still kills the build before its manifest, once the keys are in place.
        stall = STALL_AFTER.get(point, "sentence_keys." if point not in KILL_POINTS else None)
        if kill_build_when(corpus, idx, when, tmp_path / "build.log", model_cache,
                           env={TOKEN_ENV: token}, stall_after=stall):
            break
    else:
        pytest.fail(f"never killed the build while {point}")
    assert (idx / MANIFEST).read_bytes() == manifest_before
    assert Retriever.load(idx, embedder=real_embedder).answer(ASK).to_dict() == answer_before
    assert _alias_target(uri, collection) == generation
    if point == "writing the new generation":  # what it left is dropped by the next build
        assert len(set(_generations(uri, collection)) - before) == 1
        build_index(corpus, idx, embedder=real_embedder)
        now = load_index(idx).manifest.store["generation"]
        assert set(_generations(uri, collection)) == before | {now}  # the previous one kept
        assert _alias_target(uri, collection) == now
