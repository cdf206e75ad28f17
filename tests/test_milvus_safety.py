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
from ampere_qa.index import MANIFEST, load_index
from ampere_qa.stores.milvus import META_PROPERTY, MilvusStore

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


def _foreign(db: Path, dim: int, rows: int = 1000, properties: dict | None = None) -> dict[int, np.ndarray]:
    """Another application's collection (its own schema, no ampere-qa marker), left released.
    Returns its rows, id -> vector as stored (float32)."""
    from pymilvus import DataType, MilvusClient

    client = _client(db)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(FOREIGN, schema=schema, index_params=params, properties=properties or {})
    vectors = np.random.default_rng(0).random((rows, dim)).astype(np.float32)
    client.insert(FOREIGN, [{"id": i, "vector": v.tolist()} for i, v in enumerate(vectors)])
    client.flush(FOREIGN)
    client.release_collection(FOREIGN)
    return dict(enumerate(vectors))


def _assert_untouched(db: Path, rows: dict[int, np.ndarray], properties: dict | None = None) -> None:
    """Same properties, never loaded by us, and exactly the same rows and vectors."""
    client = _client(db)
    assert client.describe_collection(FOREIGN)["properties"] == (properties or {})
    assert client.get_load_state(FOREIGN)["state"].name == "NotLoad"
    client.load_collection(FOREIGN)
    found = client.query(FOREIGN, filter="id >= 0", output_fields=["id", "vector"], limit=len(rows) + 10)
    assert len(found) == len(rows)
    for r in found:
        np.testing.assert_array_equal(np.asarray(r["vector"], np.float32), rows[int(r["id"])])
    client.release_collection(FOREIGN)


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

    monkeypatch.setattr("ampere_qa.build.load_embedder", lambda model: FakeEmbedder())
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
    """The manifest's collection replaced by someone else's of the same shape (dimension, row
    count): load refuses it unloaded, and the rebuild that follows neither reuses nor writes it."""
    db, idx = tmp_path / "shared.db", tmp_path / "index"
    report = build_index(corpus_copy, idx, store="milvus", uri=str(db), collection=FOREIGN,
                         embedder=FakeEmbedder())
    _client(db).drop_collection(FOREIGN)
    rows = _foreign(db, FakeEmbedder.dimension, rows=report.sentences)
    with pytest.raises(IndexMismatchError, match=r"not created by ampere-qa.*--collection ANOTHER_NAME"):
        load_index(idx)
    with pytest.raises(BadInputError, match="not created by ampere-qa"):
        build_index(corpus_copy, idx, embedder=FakeEmbedder())  # store and collection from the manifest
    _assert_untouched(db, rows)


def test_a_collection_from_before_the_owner_marker_is_still_ours(tmp_path, corpus_copy):
    """Collections ampere-qa created before ampere_qa.owner carry only ampere_qa.meta."""
    db, idx = tmp_path / "old.db", tmp_path / "index"
    _foreign(db, FakeEmbedder.dimension, rows=5, properties={META_PROPERTY: "{}"})
    report = build_index(corpus_copy, idx, store="milvus", uri=str(db), collection=FOREIGN,
                         embedder=FakeEmbedder())
    assert (report.upserted, report.deleted) == (report.sentences, 5)  # ids 0..4 are no sentence keys
    assert load_index(idx).store.count() == report.sentences


@pytest.mark.parametrize("dimension", [128, FakeEmbedder.dimension])
def test_build_json_counts_the_rows_another_models_collection_lost(tmp_path, corpus_copy, monkeypatch,
                                                                  dimension):
    """Our collection built with another model is dropped and refilled: `build --json` says
    every row it had was deleted, every row it has now upserted."""
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    db, idx = tmp_path / "x.db", tmp_path / "index"
    args = ["build", "--corpus", str(corpus_copy), "--index", str(idx), "--store", "milvus",
            "--uri", str(db), "--json"]

    def build(embedder) -> dict:
        monkeypatch.setattr("ampere_qa.build.load_embedder", lambda model: embedder)
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
    assert second["deleted"] == before  # today: 0
    assert second["upserted"] == second["sentences"] == after == before + 2


def test_a_failed_connection_logs_nothing_and_restores_the_logger(tmp_path, caplog):
    """Milvus Lite logs its traceback (logger.exception) before pymilvus raises: muted for the
    attempt only. (pytest captures log records, so they are looked for in caplog, not stderr.)"""
    from ampere_qa.stores import milvus as stores

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
