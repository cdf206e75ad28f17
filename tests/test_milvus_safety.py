"""Milvus data ampere-qa did not write is never modified, build reports what it really removed,
and a Milvus Lite file held by another process is one line on stderr. Milvus Lite only; skipped
without pymilvus (the [milvus] extra, part of [test])."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ampere_qa import build_index
from ampere_qa.errors import BadInputError, IndexMismatchError, StoreUnavailableError
from ampere_qa.indexing.index import MANIFEST, load_index
from ampere_qa.indexing.stores.milvus import META_PROPERTY, MilvusStore

from .conftest import ROOT, FakeEmbedder
from .test_milvus import needs_milvus

pytestmark = [pytest.mark.integration, pytest.mark.milvus, needs_milvus]

FOREIGN = "customer_embeddings"


class OtherModel(FakeEmbedder):
    """Another model: other weights, and (unless told) other dimension."""

    def __init__(self, dimension: int = 128) -> None:
        super().__init__()
        self.dimension = dimension

    def fingerprint(self) -> str:
        return f"other-model-{self.dimension}"


def _client(db: Path):
    from pymilvus import MilvusClient

    return MilvusClient(uri=str(db))


def _foreign(db: Path, dim: int, rows: int = 1000, properties: dict | None = None,
             name: str = FOREIGN) -> dict[int, np.ndarray]:
    """Another application's collection (its own schema, no ampere-qa marker), left released.
    Returns its rows, id -> vector as stored (float32)."""
    from pymilvus import DataType, MilvusClient

    client = _client(db)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=params, properties=properties or {})
    vectors = np.random.default_rng(0).random((rows, dim)).astype(np.float32)
    client.insert(name, [{"id": i, "vector": v.tolist()} for i, v in enumerate(vectors)])
    client.flush(name)
    client.release_collection(name)
    return dict(enumerate(vectors))


def _assert_untouched(db: Path, rows: dict[int, np.ndarray], properties: dict | None = None,
                      name: str = FOREIGN) -> None:
    """Same properties, never loaded by us, and exactly the same rows and vectors."""
    client = _client(db)
    assert client.describe_collection(name)["properties"] == (properties or {})
    assert client.get_load_state(name)["state"].name == "NotLoad"
    client.load_collection(name)
    found = client.query(name, filter="id >= 0", output_fields=["id", "vector"], limit=len(rows) + 10)
    assert len(found) == len(rows)
    for r in found:
        np.testing.assert_array_equal(np.asarray(r["vector"], np.float32), rows[int(r["id"])])
    client.release_collection(name)


@pytest.mark.parametrize("dim", [8, FakeEmbedder.dimension])  # dropped / emptied row by row, before
def test_build_refuses_a_collection_it_did_not_create(tmp_path, corpus_copy, dim):
    db, idx = tmp_path / "shared.db", tmp_path / "index"
    rows = _foreign(db, dim)
    refused = rf"'{FOREIGN}' .* not created by ampere-qa.*another --collection"
    embedder = FakeEmbedder()
    with pytest.raises(BadInputError, match=refused):
        build_index(corpus_copy, idx, store="milvus", uri=str(db), collection=FOREIGN,
                    embedder=embedder)
    assert not (idx / MANIFEST).exists()  # no index claims the collection
    assert embedder.calls == 0 and not [p for p in idx.iterdir() if not p.name.startswith(".")]
    with pytest.raises(BadInputError, match="not created by ampere-qa"):
        MilvusStore(str(db), FOREIGN).drop()  # guarded whoever calls it
    _assert_untouched(db, rows)


def test_cli_build_into_a_foreign_collection_is_exit_2_and_one_line(tmp_path, corpus_copy, monkeypatch):
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    monkeypatch.setattr("ampere_qa.indexing.build.load_embedder", lambda model: FakeEmbedder())
    db = tmp_path / "shared.db"
    rows = _foreign(db, FakeEmbedder.dimension)
    result = CliRunner().invoke(cli, ["build", "--corpus", str(corpus_copy), "--index", str(tmp_path / "i"),
                                      "--store", "milvus", "--uri", str(db), "--collection", FOREIGN,
                                      "--json"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: Milvus collection '{FOREIGN}'")
    assert len(result.stderr.splitlines()) == 1 and "--collection" in result.stderr
    _assert_untouched(db, rows)


def test_load_refuses_a_foreign_collection_without_loading_it(tmp_path, corpus_copy):
    """The manifest's generation replaced by someone else's collection of the same shape
    (dimension, row count) and name: load refuses it unloaded, and the rebuild that follows
    neither reuses, writes nor drops it."""
    db, idx = tmp_path / "shared.db", tmp_path / "index"
    report = build_index(corpus_copy, idx, store="milvus", uri=str(db), collection="ours",
                         embedder=FakeEmbedder())
    generation = load_index(idx).manifest.store["generation"]
    client = _client(db)
    client.drop_alias("ours")
    client.drop_collection(generation)
    rows = _foreign(db, FakeEmbedder.dimension, rows=report.sentences, name=generation)
    with pytest.raises(IndexMismatchError, match=r"not created by ampere-qa.*--collection ours$"):
        load_index(idx)
    embedder = FakeEmbedder()
    rebuilt = build_index(corpus_copy, idx, embedder=embedder)  # store and collection from the manifest
    assert embedder.calls > 0 and rebuilt.upserted == rebuilt.sentences  # nothing reused from it
    assert load_index(idx).manifest.store["generation"] != generation
    _assert_untouched(db, rows, name=generation)


def test_a_collection_from_before_the_owner_marker_is_still_ours(tmp_path, corpus_copy):
    """Collections ampere-qa created before ampere_qa.owner carry only ampere_qa.meta: building
    under that name is allowed; the old collection, which no manifest of this folder names, is
    left as it is (the new rows go to a generation, read through the manifest)."""
    db, idx = tmp_path / "old.db", tmp_path / "index"
    rows = _foreign(db, FakeEmbedder.dimension, rows=5, properties={META_PROPERTY: "{}"})
    report = build_index(corpus_copy, idx, store="milvus", uri=str(db), collection=FOREIGN,
                         embedder=FakeEmbedder())
    assert (report.upserted, report.deleted) == (report.sentences, 0)
    assert load_index(idx).store.count() == report.sentences
    _assert_untouched(db, rows, properties={META_PROPERTY: "{}"})


def test_an_index_from_before_generations_is_read_then_moved_to_one(tmp_path, corpus_copy):
    """An index whose manifest names a collection updated in place (no generation) still
    loads; its next build writes a generation, drops that collection (this folder's manifest
    named it) and puts the alias in its place."""
    from ampere_qa.indexing.stores.milvus import OWNER, OWNER_PROPERTY

    db, idx = tmp_path / "old.db", tmp_path / "index"
    build_index(corpus_copy, idx, store="milvus", uri=str(db), collection="news", embedder=FakeEmbedder())
    data = load_index(idx)
    generation, client, rows = data.manifest.store["generation"], _client(db), data.store.count()
    client.drop_alias("news")  # now make "news" what an older ampere-qa wrote: the same rows, in place
    legacy = MilvusStore(str(db), "news", client=client)
    legacy.create(FakeEmbedder.dimension, data.store.meta(), properties={OWNER_PROPERTY: OWNER})
    legacy.load()
    legacy.upsert_keys(data.store.keys, data.store.get(np.arange(len(data.store.keys))))
    legacy.flush()
    client.drop_collection(generation)
    manifest = json.loads((idx / MANIFEST).read_text())
    del manifest["store"]["generation"]
    (idx / manifest["files"].pop("sentence_keys")["name"]).unlink()  # not saved then: hashed at load
    (idx / MANIFEST).write_text(json.dumps(manifest))

    assert load_index(idx).store.collection == "news"  # read as before
    (corpus_copy / "extra.txt").write_text("Une phrase de plus. Et une autre encore.", encoding="utf-8")
    report = build_index(corpus_copy, idx, embedder=FakeEmbedder())
    assert report.deleted == rows and report.upserted == report.sentences
    now = load_index(idx)
    assert now.manifest.store["generation"] != generation
    assert MilvusStore(str(db), "news", client=client).alias_target() == now.manifest.store["generation"]


@pytest.mark.parametrize("dimension", [128, FakeEmbedder.dimension])
def test_build_json_counts_the_rows_it_removes(tmp_path, corpus_copy, monkeypatch,
                                                                  dimension):
    """Rebuilt with another model, then again: `build --json` says every row each generation
    holds was written, and every row of the generation dropped was removed."""
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    db, idx = tmp_path / "x.db", tmp_path / "index"
    args = ["build", "--corpus", str(corpus_copy), "--index", str(idx), "--store", "milvus",
            "--uri", str(db), "--json"]

    def build(embedder) -> dict:
        monkeypatch.setattr("ampere_qa.indexing.build.load_embedder", lambda model: embedder)
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    first = build(FakeEmbedder())
    # One passage more, so that the rows before and after differ.
    (corpus_copy / "extra.txt").write_text("Une phrase de plus. Et une autre encore.", encoding="utf-8")
    before = load_index(idx).store.count()
    assert before == first["sentences"] == first["upserted"]
    second = build(OtherModel(dimension))
    after = load_index(idx).store.count()
    # The first generation stays one build longer (servers still running on it), then goes.
    assert second["deleted"] == 0
    assert second["upserted"] == second["sentences"] == after == before + 2
    (corpus_copy / "extra.txt").unlink()
    third = build(FakeEmbedder())
    assert third["deleted"] == before and third["upserted"] == third["sentences"] == before


def test_a_failed_connection_logs_nothing_and_restores_the_logger(tmp_path, caplog):
    """Milvus Lite logs its traceback (logger.exception) before pymilvus raises: muted for the
    attempt only. (pytest captures log records, so they are looked for in caplog, not stderr.)"""
    from ampere_qa.indexing.stores import milvus as stores

    not_lite = tmp_path / "x.db"
    not_lite.write_text("a plain file, where Milvus Lite wants its data folder")
    logger = logging.getLogger("milvus_lite")
    logger.setLevel(logging.INFO)
    try:
        with pytest.raises(StoreUnavailableError, match="cannot reach Milvus"):
            stores.MilvusStore(str(not_lite))
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(logging.NOTSET)
    assert not [r for r in caplog.records if r.name.startswith("milvus_lite")]


def test_a_milvus_lite_file_held_by_another_process_is_one_line(tmp_path, corpus_copy):
    """`ask` in a second process while this one holds the .db file: one `error:` line, no
    traceback from Milvus Lite."""
    db, idx = tmp_path / "x.db", tmp_path / "index"
    build_index(corpus_copy, idx, store="milvus", uri=str(db), embedder=FakeEmbedder())
    holder = _client(db)  # this process holds the file's lock from here on
    holder.list_collections()
    env = {k: v for k, v in os.environ.items() if k != "AMPERE_QA_DEBUG"}
    done = subprocess.run([sys.executable, "-m", "ampere_qa", "ask", "Qui dirige Ampere ?", "--index",
                           str(idx)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot reach Milvus at ") and "one process at a time" in lines[0]


def test_a_build_whose_tidying_fails_still_lands_and_the_next_one_tidies(tmp_path, corpus_copy,
                                                                         monkeypatch, caplog):
    """Dropping superseded generations happens after the commit: if Milvus fails then, the
    build has landed all the same (a warning says so) and the next build drops them."""
    from ampere_qa.indexing.stores import milvus

    db, idx = tmp_path / "x.db", tmp_path / "index"
    build = lambda: build_index(corpus_copy, idx, store="milvus", uri=str(db), embedder=FakeEmbedder())  # noqa: E731
    first = build()
    extra = corpus_copy / "extra.txt"

    def boom(*args, **kwargs):
        raise RuntimeError("server gone")

    with monkeypatch.context() as m:
        m.setattr(milvus.generations, "tidy", boom)
        extra.write_text("Une phrase de plus. Et une autre encore.", encoding="utf-8")
        second = build()
        extra.write_text("Une autre phrase. Et encore une.", encoding="utf-8")
        build()
    assert "was not tidied (server gone); the next build will try again" in caplog.text
    assert load_index(idx).store.count() == second.sentences  # landed and answering
    assert len([n for n in _client(db).list_collections() if milvus.GENERATION.match(n)]) == 3
    extra.unlink()
    last = build()
    assert last.deleted == first.sentences + second.sentences
    assert len([n for n in _client(db).list_collections() if milvus.GENERATION.match(n)]) == 2


def test_rows_are_found_by_the_saved_keys(tmp_path, corpus_copy):
    """A build saves each sentence row's key: a load reads them instead of hashing every
    passage, and maps the keys a search returns back to rows (-1 for a key of no sentence)."""
    from ampere_qa.indexing.stores.milvus import sentence_keys

    idx = tmp_path / "index"
    build_index(corpus_copy, idx, store="milvus", uri=str(tmp_path / "x.db"), embedder=FakeEmbedder())
    data = load_index(idx)
    saved = np.load(idx / data.manifest.files["sentence_keys"].name)
    np.testing.assert_array_equal(saved, sentence_keys(data.passages))
    np.testing.assert_array_equal(data.store.keys, saved)
    rows = np.array([3, 0, len(saved) - 1])
    np.testing.assert_array_equal(data.store.rows_of(np.append(saved[rows], 12345)), [*rows, -1])
    vectors = data.store.get(np.arange(len(saved)))
    _, found = data.store.search(vectors[4], 1)
    assert found[0] == 4


def test_moving_an_index_to_another_milvus_leaves_nothing_behind(tmp_path, corpus_copy):
    """Like switching to FAISS: the generations this index wrote at the old URI are dropped
    (a grace build only makes sense where the index still is)."""
    from ampere_qa.indexing.stores import milvus

    idx, first, second = tmp_path / "index", tmp_path / "first.db", tmp_path / "second.db"
    built = build_index(corpus_copy, idx, store="milvus", uri=str(first), embedder=FakeEmbedder())
    moved = build_index(corpus_copy, idx, uri=str(second), embedder=FakeEmbedder())
    assert moved.deleted == built.sentences and moved.upserted == moved.sentences
    assert not [n for n in _client(first).list_collections() if milvus.GENERATION.match(n)]
    assert load_index(idx).store.uri == str(second.resolve())



@pytest.mark.parametrize("damage", ["repeated", "negative"])
def test_saved_keys_must_be_one_distinct_positive_key_per_row(tmp_path, corpus_copy, damage):
    """A repeated key gave two rows one vector (and rows_of one row for both); a negative one is
    no sentence_key. Refused at load, in one line with the rebuild command."""
    import hashlib

    idx = tmp_path / "index"
    build_index(corpus_copy, idx, store="milvus", uri=str(tmp_path / "x.db"), embedder=FakeEmbedder())
    m = json.loads((idx / MANIFEST).read_text())
    path = idx / m["files"]["sentence_keys"]["name"]
    keys = np.load(path)
    if damage == "repeated":
        keys[1] = keys[0]
    else:
        keys[2] = -keys[2]
    np.save(path.open("wb"), keys)
    data = path.read_bytes()
    m["files"]["sentence_keys"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (idx / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match="one distinct key per sentence: rebuild it with"):
        load_index(idx)


def test_a_saved_key_the_collection_lacks_is_refused_not_a_key_error(tmp_path, corpus_copy):
    """A key that is no row of the collection used to reach a question as an unexpected KeyError."""
    import hashlib

    idx = tmp_path / "index"
    build_index(corpus_copy, idx, store="milvus", uri=str(tmp_path / "x.db"), embedder=FakeEmbedder())
    m = json.loads((idx / MANIFEST).read_text())
    path = idx / m["files"]["sentence_keys"]["name"]
    keys = np.load(path)
    keys[0] = int(keys.max()) + 1  # distinct, positive, in no row
    np.save(path.open("wb"), keys)
    data = path.read_bytes()
    m["files"]["sentence_keys"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (idx / MANIFEST).write_text(json.dumps(m))
    store = load_index(idx).store
    with pytest.raises(IndexMismatchError, match="lacks 1 of the sentence rows the index names: "
                                                 "rebuild it with"):
        store.get(np.arange(3))


def test_credentials_in_the_uri_open_the_server_and_are_recorded_nowhere(tmp_path, corpus_copy,
                                                                         milvus_server, monkeypatch,
                                                                         caplog):
    """``--uri http://user:password@host`` builds (its credentials open this command's
    connections), but the manifest records the URI without them, a warning says the next command
    needs the token, and neither a file, the output nor ``info`` shows the password."""
    import uuid

    from click.testing import CliRunner

    from ampere_qa.cli import cli
    from ampere_qa.indexing.stores import milvus

    uri, token = milvus_server
    monkeypatch.delenv(milvus.TOKEN_ENV, raising=False)
    monkeypatch.setattr(milvus.client, "_CREDENTIALS", {})
    monkeypatch.setattr("ampere_qa.indexing.build.load_embedder", lambda model: FakeEmbedder())
    user, password = token.split(":", 1)
    secret_uri = uri.replace("http://", f"http://{user}:{password}@")
    idx, collection = tmp_path / "index", f"t_{uuid.uuid4().hex[:12]}"
    built = CliRunner().invoke(cli, ["build", "--corpus", str(corpus_copy), "--index", str(idx),
                                     "--store", "milvus", "--uri", secret_uri, "--collection",
                                     collection, "--json"])
    assert built.exit_code == 0, built.output
    assert "not recorded in the index" in caplog.text  # the CLI prints it on stderr
    recorded = json.loads((idx / MANIFEST).read_text())["store"]
    assert recorded["uri"] == uri
    # A later command: this process forgot them.
    monkeypatch.setattr(milvus.client, "_CREDENTIALS", {})
    info = CliRunner().invoke(cli, ["info", "--index", str(idx)])
    refused = CliRunner().invoke(cli, ["ask", "--index", str(idx), "--json", "Qui dirige Ampere ?"])
    assert refused.exit_code == 1 and "AMPERE_QA_MILVUS_TOKEN" in refused.stderr
    written = "".join(p.read_text(errors="replace") for p in idx.rglob("*") if p.is_file())
    for text in (written, built.stdout, built.stderr, info.output, refused.stderr, caplog.text):
        assert f"{user}:{password}" not in text and f":{password}@" not in text
