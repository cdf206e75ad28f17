"""The store seam: every backend behind one interface (stores/base.py), found by kind in one
registry (stores.BACKENDS), and nothing outside stores/ knowing which backends there are.

The proof that a new backend needs no change elsewhere: a toy one, registered here only, is
chosen by its own build option, builds, loads, answers and is shown by ``info`` and the rebuild
hint exactly as it describes itself, and a rebuild moves the index back to FAISS.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

from ampere_qa import Retriever, build_index
from ampere_qa.cli import cli
from ampere_qa.indexing import stores
from ampere_qa.indexing.folder import DATA_FILE
from ampere_qa.indexing.index import load_index
from ampere_qa.indexing.manifest import read_manifest, rebuild_hint, summary
from ampere_qa.indexing.stores.base import Backend, CheckedFiles, Option, Written, load_npy
from ampere_qa.types import BuildReport, Passage

from .conftest import FakeEmbedder


class ArrayStore:
    """Sentence vectors in one array, searched exactly."""

    kind = "toy"

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def count(self) -> int:
        return len(self.vectors)

    def search(self, qv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.vectors @ qv
        rows = np.argsort(-scores, kind="stable")[:k]
        return scores[rows].astype(np.float32), rows.astype(np.int64)

    def get(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.vectors[np.asarray(rows, np.int64)], np.float32)

    def upsert(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def delete(self, rows: np.ndarray) -> None:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


class ToyBackend(Backend):
    kind = "toy"
    label = "a toy array"
    files: ClassVar[Mapping[str, str]] = {"toy_vectors": "npy"}
    options = (Option("--toy-note", "A note the toy store records."),)
    schema: ClassVar[Mapping[str, type]] = {"note": str}

    @classmethod
    def implied(cls, given: Mapping[str, Any]) -> bool:
        return bool(given.get("toy_note"))

    @classmethod
    def configure(cls, given: Mapping[str, Any], previous: Mapping[str, Any] | None) -> ToyBackend:
        return cls({"kind": cls.kind, "note": given.get("toy_note") or "none"})

    def write(self, passages: list[Passage], vectors: np.ndarray, meta: dict[str, Any],
              options: dict[str, Any]) -> Written:
        return Written(files={"toy_vectors": vectors}, manifest={"store": self.config})

    def open(self, manifest: dict[str, Any], files: CheckedFiles, passages: Sequence[Passage],
             hint: str) -> ArrayStore:
        return ArrayStore(load_npy(*files["toy_vectors"]))

    def where(self) -> str:
        return f"a toy array ({self.config['note']})"

    def rebuild_options(self) -> str:
        return f" --store toy --toy-note {self.config['note']}"


@pytest.mark.parametrize("kind", stores.KINDS)
def test_every_registered_backend_fulfils_the_interface(kind):
    cls = stores.BACKENDS[kind]
    assert issubclass(cls, Backend) and not inspect.isabstract(cls) and cls.kind == kind
    assert cls.label and isinstance(cls.options, tuple)
    for role, ext in {**cls.files, **cls.optional_files}.items():
        assert DATA_FILE.match(f"{role}.{'0' * 12}.{ext}"), (role, ext)  # a file the folder may tidy
    assert cls().where() and cls({"kind": kind}).shown()["kind"] == kind
    # No two backends claim one option or one data file.
    others = [b for k, b in stores.BACKENDS.items() if k != kind]
    assert not {o.name for o in cls.options} & {o.name for b in others for o in b.options}
    assert not {*cls.files, *cls.optional_files} & {r for b in others for r in (*b.files, *b.optional_files)}


def test_the_cli_offers_what_the_backends_take():
    build_help = CliRunner().invoke(cli, ["build", "--help"]).output
    ask_help = CliRunner().invoke(cli, ["ask", "--help"]).output
    for option in (o for b in stores.BACKENDS.values() for o in b.options):
        assert option.name in build_help
        assert (option.name in ask_help) == (option.env is not None)  # secrets: every command
    assert f"[{'|'.join(stores.KINDS)}]" in build_help


def test_options_choose_and_refuse_a_backend():
    assert stores.configure(None, {}, None).kind == stores.DEFAULT
    with pytest.raises(TypeError, match="no_such"):
        stores.configure(None, {"no_such": "x"}, None)
    with pytest.raises(stores.BadInputError, match="unknown vector store 'nope'"):
        stores.configure("nope", {}, None)


def test_build_report_details_keep_the_json_keys(tmp_path):
    report = BuildReport(index="i", files=1, passages=2, sentences=3, duplicates_collapsed=0,
                         exact_duplicates=0, near_duplicates=0, skipped=(), seconds=0.0, model="m",
                         store="x", details={"upserted": 4, "deleted": 5})
    assert list(report.to_dict())[-3:] == ["store", "upserted", "deleted"]
    assert (report.upserted, report.deleted, report.to_dict()["deleted"]) == (4, 5, 5)


def test_a_new_backend_needs_no_change_outside_stores(tmp_path, corpus_copy, monkeypatch):
    monkeypatch.setitem(stores.BACKENDS, "toy", ToyBackend)
    idx, ref = tmp_path / "index", tmp_path / "faiss"
    report = build_index(corpus_copy, idx, embedder=FakeEmbedder(), toy_note="hello")
    assert report.store == "toy" and report.to_dict()["upserted"] == 0
    data = load_index(idx)
    assert isinstance(data.store, ArrayStore) and data.manifest.store == {"kind": "toy", "note": "hello"}
    build_index(corpus_copy, ref, embedder=FakeEmbedder())
    toy, faiss = Retriever.load(idx, embedder=FakeEmbedder()), Retriever.load(ref, embedder=FakeEmbedder())
    for q in ("Qui dirige Ampere ?", "Who invests in Ampere?"):
        assert toy.answer(q).to_dict() == faiss.answer(q).to_dict()
    manifest = read_manifest(idx)
    assert rebuild_hint(Path(idx), manifest).endswith(" --store toy --toy-note hello")
    assert summary(Path(idx), manifest)["store"] == {"kind": "toy", "note": "hello"}
    assert "a toy array (hello)" in stores.where(manifest.store)
    # A rebuild keeps the store; --store faiss moves the index, and the toy file goes.
    assert build_index(corpus_copy, idx, embedder=FakeEmbedder()).store == "toy"
    build_index(corpus_copy, idx, embedder=FakeEmbedder(), store="faiss")
    assert read_manifest(idx).store is None and not list(idx.glob("toy_vectors.*"))
