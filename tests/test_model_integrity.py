"""The model cache is checked before it answers, and a damaged one says what repairs it.

Every case works on its own copy of the session's model cache (tests/conftest.py,
``model_cache``), never on the cache itself: small files are copied and the two 470 MB weights
files hard-linked, and a case damages a file by replacing it, never by writing into it (that
would write into the shared inode). Questions go through the real command line, onnxruntime and
files, in fresh processes, as a user would see them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ampere_qa.errors import IndexMismatchError

from .conftest import ROOT, FakeEmbedder

ASK = "Qui dirige Ampere ?"
INSTALL = "ampere-qa model install"
BIG = 1 << 20  # files larger than this are hard-linked into a case's copy


# --------------------------------------------------------------------------- copies of the cache


@pytest.fixture(scope="module")
def installed(model_cache: Path) -> Path:
    """The bundled model, converted and exported in the session's cache (never damaged here)."""
    from ampere_qa.embed.model import ensure_bundled_model
    from ampere_qa.embed.model.export import ensure_export

    model_dir = ensure_bundled_model(model_cache, progress=False)
    ensure_export(model_dir, progress=False)
    return model_dir


def _clone(model_dir: Path, cache: Path) -> Path:
    """A copy of the cache holding ``model_dir``, at ``cache``; returns the copy's model folder."""
    models = cache / "models"
    models.mkdir(parents=True)
    note = model_dir.parent / ".source-sha256.json"
    if note.is_file():
        shutil.copy2(note, models / note.name)

    def link_or_copy(src: str, dst: str) -> None:
        if os.path.getsize(src) > BIG:
            try:
                os.link(src, dst)
                return
            except OSError:  # another file system
                pass
        shutil.copy2(src, dst)

    shutil.copytree(model_dir, models / model_dir.name, copy_function=link_or_copy)
    return models / model_dir.name


@pytest.fixture
def clone(installed: Path, tmp_path: Path) -> Path:
    return _clone(installed, tmp_path / "cache")


def _cache_of(model_dir: Path) -> Path:
    return model_dir.parent.parent


def _replace(path: Path, data: bytes) -> None:
    """New content in a new file: never written into a hard-linked original."""
    path.unlink()
    path.write_bytes(data)


def _head(path: Path, n: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def _edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    _replace(path, json.dumps(change(json.loads(path.read_text(encoding="utf-8")))).encode())


def _old_sample_digest(path: Path, samples: int = 16, size: int = 1 << 16) -> str:
    """The check the export had: the length and 16 evenly spaced 64 KB blocks."""
    h = hashlib.sha256()
    total = path.stat().st_size
    h.update(str(total).encode())
    with path.open("rb") as fh:
        for i in range(samples):
            fh.seek(max(0, (total - size) * i // max(1, samples - 1)))
            h.update(fh.read(size))
    return h.hexdigest()[:32]


def _zero_between_samples(data: Path) -> None:
    """Replace ``data`` by a copy with every byte between the old sampled blocks zeroed."""
    tmp = data.with_name(data.name + ".new")
    shutil.copyfile(data, tmp)
    total, size, samples = tmp.stat().st_size, 1 << 16, 16
    starts = [max(0, (total - size) * i // (samples - 1)) for i in range(samples)]
    with tmp.open("r+b") as fh:
        for a, b in itertools.pairwise(starts):
            fh.seek(a + size)
            fh.write(bytes(b - a - size))
    data.unlink()
    tmp.rename(data)


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "AMPERE_QA_CACHE": str(cache), **extra}
    env.pop("AMPERE_QA_DEBUG", None)
    return env


def run(cache: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``ampere-qa ARGS`` (default: ask the usual question) with ``cache`` as the model cache."""
    return subprocess.run([sys.executable, "-m", "ampere_qa", *(args or ("ask", ASK))],
                          capture_output=True, text=True, cwd=ROOT, env=_env(cache, **env),
                          timeout=600)


def one_error_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    if proc.args[3] == "ask":
        assert proc.stdout == ""  # never an answer from a damaged model
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- 7: the weights check


@pytest.mark.integration
def test_weights_zeroed_between_the_sampled_blocks_are_refused(clone):
    data = clone / "onnx" / "model.onnx.data"
    before = _old_sample_digest(data)
    _zero_between_samples(data)
    assert _old_sample_digest(data) == before  # what the sampled hash could not see
    one_error_line(run(_cache_of(clone)), str(data), "is damaged", INSTALL)


@pytest.mark.integration
def test_weights_that_hash_as_recorded_but_give_other_vectors_are_refused(clone):
    """A record rewritten to match other weights (as a half-copied export would be): the hashes
    check, the reference vectors do not."""
    folder = clone / "onnx"
    _zero_between_samples(folder / "model.onnx.data")
    digest = hashlib.sha256((folder / "model.onnx.data").read_bytes()).hexdigest()
    _edit_json(folder / "export.json",
               lambda r: {**r, "files": {**r["files"], "model.onnx.data": digest}})
    one_error_line(run(_cache_of(clone)), str(folder / "model.onnx.data"),
                   "does not give the vectors", str(folder / "export.json"), INSTALL)


@pytest.mark.integration
def test_the_session_that_answers_is_the_one_checked(clone):
    """Files replaced after an embedder was created, before its session opens, or before a
    second session opens for another thread count: refused, never answered from."""
    from ampere_qa.embed.embedding import OnnxEmbedder, load_embedder
    from ampere_qa.embed.model.integrity import CacheDamagedError

    cache = _cache_of(clone)
    answering = load_embedder("bundled", cache_dir=cache, engine="onnx")
    assert isinstance(answering, OnnxEmbedder)
    assert answering.embed_queries([ASK]).shape == (1, 384)
    created = load_embedder("bundled", cache_dir=cache, engine="onnx")  # checked, no session yet
    data = clone / "onnx" / "model.onnx.data"
    _zero_between_samples(data)
    with pytest.raises(CacheDamagedError, match=f"{data} is damaged.*{INSTALL}"):
        created.embed_queries([ASK])
    answering.query_threads = 1  # a new session for one thread
    with pytest.raises(CacheDamagedError, match=f"{data} is damaged.*{INSTALL}"):
        answering.embed_queries([ASK])


@pytest.mark.slow
def test_a_file_is_hashed_once_then_again_when_its_identity_changes(installed, tmp_path,
                                                                    monkeypatch):
    """The stamp: one full hash per identity (device, inode, size, mtime, ctime); a read-only
    cache hashes every time and still works."""
    from ampere_qa.embed.model import integrity
    from ampere_qa.embed.model.export import check_files, read_export

    model_dir = _clone(installed, tmp_path / "cache")
    record = read_export(model_dir)
    assert record is not None
    hashed: list[str] = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))

    def new_process() -> list[str]:
        hashed.clear()
        monkeypatch.setattr(integrity, "_VERIFIED", {})
        check_files(model_dir, record)
        return sorted(hashed)

    folder = model_dir / "onnx"
    (folder / integrity.STAMP_FILE).unlink()
    assert new_process() == sorted(record["files"])  # first use: everything hashed once
    stamp = json.loads((folder / integrity.STAMP_FILE).read_text())["files"]["model.onnx.data"]
    st = (folder / "model.onnx.data").stat()
    assert stamp == {"st_dev": st.st_dev, "st_ino": st.st_ino, "st_size": st.st_size,
                     "st_mtime_ns": st.st_mtime_ns, "st_ctime_ns": st.st_ctime_ns,
                     "sha256": record["files"]["model.onnx.data"]}
    assert new_process() == []  # the stamp stands for the hash
    os.utime(folder / "pieces.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert new_process() == ["pieces.txt"]  # touched: hashed again (same content: accepted)
    assert new_process() == []

    def read_only(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(integrity, "write_atomic", read_only)
    (folder / integrity.STAMP_FILE).unlink()
    assert new_process() == sorted(record["files"])
    assert new_process() == sorted(record["files"])  # every time, never refused
    assert not (folder / integrity.STAMP_FILE).exists()


@pytest.mark.slow
def test_a_stamp_is_never_trusted_for_another_file(installed, tmp_path):
    """Same size and modification time, other content: the inode and change time differ."""
    from ampere_qa.embed.model.export import check_files, read_export
    from ampere_qa.embed.model.integrity import CacheDamagedError

    model_dir = _clone(installed, tmp_path / "cache")
    record = read_export(model_dir)
    assert record is not None
    check_files(model_dir, record)  # stamps them
    pieces = model_dir / "onnx" / "pieces.txt"
    st = pieces.stat()
    _replace(pieces, b"y" * st.st_size)
    os.utime(pieces, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(CacheDamagedError, match=f"{pieces} is damaged"):
        check_files(model_dir, record)


def test_an_export_of_the_previous_version_is_exported_again(tmp_path, monkeypatch):
    """Exports written before the full hashes and reference vectors (version 1) cannot be
    checked: they are exported again, under the conversion's lock, on first use."""
    from ampere_qa.embed.model import export as export_mod

    folder = tmp_path / "model" / "onnx"
    folder.mkdir(parents=True)
    for name in ("model.onnx", "model.onnx.data", "pieces.txt", "scores.npy", "pipeline.json"):
        (folder / name).write_bytes(b"old")
    old = {"export_version": 1, "weights_fingerprint": "6274fdf0e45f7db5f721d7544f99bf9e",
           "dimension": 384, "max_length": 512,
           "prompts": {"query": "query: ", "passage": "passage: "},
           "data_digest": "1654fc4bcbf8f8fe2776c351b326403e",
           "min_cosine_to_sentence_transformers": 0.9999996, "opset": 17}
    (folder / "export.json").write_text(json.dumps(old))
    assert export_mod.read_export(tmp_path / "model") is None
    calls = []

    def exported(model_dir: Path, out: Path) -> dict[str, Any]:
        calls.append((tmp_path / ".convert.lock").exists())
        (out / "model.onnx").write_bytes(b"new graph")
        return {"export_version": export_mod.EXPORT_VERSION}

    monkeypatch.setattr(export_mod, "_export_into", exported)
    export_mod.ensure_export(tmp_path / "model", progress=False)
    assert calls == [True]  # once, with the lock taken
    assert (folder / "model.onnx").read_bytes() == b"new graph"


# --------------------------------------------------------------------------- 8: damaged files


def _export_damage(kind: str, folder: Path) -> Path:
    """Damage one file of the export in ``folder``; returns the file to be named."""
    from ampere_qa.embed.model import querytok

    graph, pieces = folder / "model.onnx", folder / querytok.PIECES_FILE
    scores, pipeline = folder / querytok.SCORES_FILE, folder / querytok.PIPELINE_FILE
    record = folder / "export.json"
    if kind == "graph truncated":
        _replace(graph, _head(graph, 1000))
    elif kind == "graph garbled":
        _replace(graph, b"garbage" * 100)
    elif kind == "pieces truncated":
        _replace(pieces, _head(pieces, 1000))
    elif kind == "pieces empty":
        _replace(pieces, b"")
    elif kind == "scores truncated":
        _replace(scores, _head(scores, 1000))
    elif kind == "scores garbled":
        _replace(scores, b"xx")
    elif kind == "pipeline truncated":
        _replace(pipeline, _head(pipeline, 1000))
    elif kind == "pipeline without its ampere_qa key":
        _edit_json(pipeline, lambda p: {k: v for k, v in p.items() if k != "ampere_qa"})
        return pipeline
    elif kind == "record not JSON":
        _replace(record, b"{not json")
    elif kind == "record a list":
        _replace(record, b"[]")
    elif kind == "record with wrong types":
        _edit_json(record, lambda r: {**r, "dimension": "x", "max_length": None, "prompts": 3})
    elif kind == "record missing keys":
        _edit_json(record, lambda r: {k: v for k, v in r.items()
                                      if k not in ("prompts", "max_length", "files")})
    else:
        raise AssertionError(kind)
    return {"graph": graph, "pieces": pieces, "scores": scores, "pipeline": pipeline,
            "record": record}[kind.split()[0]]


EXPORT_DAMAGE = ["graph truncated", "graph garbled", "pieces truncated", "pieces empty",
                 "scores truncated", "scores garbled", "pipeline truncated",
                 "pipeline without its ampere_qa key", "record not JSON", "record a list",
                 "record with wrong types", "record missing keys"]


@pytest.mark.integration
@pytest.mark.parametrize("kind", EXPORT_DAMAGE)
def test_a_damaged_export_file_is_one_line_naming_it_and_the_fix(kind, clone):
    damaged = _export_damage(kind, clone / "onnx")
    one_error_line(run(_cache_of(clone)), str(damaged), "damaged", INSTALL)


CONVERTED_DAMAGE = {
    "config.json": b"{bad",
    "config.json wrong types": b'{"model_type": "bert", "hidden_size": "x"}',
    "tokenizer.json": b"{bad",
    "tokenizer_config.json": b"{bad",
    "modules.json": b"{bad",
    "1_Pooling/config.json": b"{bad",
    "model.safetensors": None,  # truncated
}


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(CONVERTED_DAMAGE))
def test_a_damaged_file_of_the_converted_model_is_named_before_it_is_read(kind, clone):
    """Read by the torch engine (and by an export): named with the fix, torch never loaded."""
    path = clone / kind.split(" ")[0]
    data = CONVERTED_DAMAGE[kind]
    _replace(path, _head(path, 1000) if data is None else data)
    one_error_line(run(_cache_of(clone), AMPERE_QA_ENGINE="torch"), str(path), "damaged", INSTALL)


@pytest.mark.integration
def test_an_export_is_never_made_from_a_damaged_converted_model(clone):
    shutil.rmtree(clone / "onnx")  # to be exported on first use
    _replace(clone / "config.json", b"{bad")
    one_error_line(run(_cache_of(clone)), str(clone / "config.json"), "damaged", INSTALL)
    assert not (clone / "onnx").exists()


@pytest.mark.integration
def test_a_damaged_marker_is_named(clone):
    marker = clone / "ampere_qa_model.json"
    _replace(marker, b"{bad")
    one_error_line(run(_cache_of(clone)), str(marker), "damaged", INSTALL)


@pytest.mark.integration
def test_model_install_repairs_a_damaged_model_and_export(clone):
    """One install converts and exports again what does not check, then questions work; the
    export's files have the mode the rest of the cache has."""
    cache = _cache_of(clone)
    _replace(clone / "tokenizer_config.json", b"{bad")
    _zero_between_samples(clone / "onnx" / "model.onnx.data")
    one_error_line(run(cache), "model.onnx.data", INSTALL)  # the files the query path reads
    proc = run(cache, "model", "install")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tokenizer_config.json is damaged" in proc.stderr and "ONNX export ready" in proc.stdout
    answered = run(cache)
    assert answered.returncode == 0 and "Luca de Meo" in answered.stdout, answered.stderr
    mode = stat.S_IMODE((clone / "config.json").stat().st_mode)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in (clone / "onnx").iterdir()} == {
        p.name: mode for p in (clone / "onnx").iterdir()}


@pytest.mark.integration
def test_model_install_repairs_a_damaged_export_alone(clone):
    cache = _cache_of(clone)
    _replace(clone / "onnx" / "pipeline.json", b"{}")
    proc = run(cache, "model", "install")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pipeline.json is damaged" in proc.stderr and "converting" not in proc.stderr
    answered = run(cache)
    assert answered.returncode == 0 and "Luca de Meo" in answered.stdout, answered.stderr


@pytest.mark.integration
def test_model_install_says_what_to_remove_when_the_folder_is_not_ours(clone):
    folder = clone / "onnx"
    (folder / "export.json").unlink()  # nothing proves the folder is ours any more
    (folder / "notes.txt").write_text("mine")
    for args in (("model", "install"), ("ask", ASK)):
        line = one_error_line(run(_cache_of(clone), *args), "not written by ampere-qa")
        assert f"remove {folder} yourself" in line and INSTALL in line
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "model.onnx").exists()


@pytest.mark.integration
def test_the_exports_files_have_the_mode_of_the_rest_of_the_cache(installed):
    mode = stat.S_IMODE((installed / "config.json").stat().st_mode)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (installed / "onnx").iterdir()}
    assert modes == dict.fromkeys(modes, mode)
    assert stat.S_IMODE((installed / "model.safetensors").stat().st_mode) == mode


def test_an_index_of_other_weights_says_what_differs_and_what_fixes_it():
    from ampere_qa import Retriever
    from ampere_qa.embed.model import BUNDLED_MODEL_NAME
    from ampere_qa.indexing.manifest import MANIFEST

    recorded = json.loads((ROOT / "index" / MANIFEST).read_text())["model"]["fingerprint"]

    class Reinstalled(FakeEmbedder):
        name = BUNDLED_MODEL_NAME
        dimension = 384

        def fingerprint(self) -> str:
            return "0123456789abcdef" * 2

    with pytest.raises(IndexMismatchError) as caught:
        Retriever.load(ROOT / "index", embedder=Reinstalled())
    message = str(caught.value)
    for fragment in ("other model weights", recorded, "0123456789abcdef" * 2, "ampere-qa build",
                     INSTALL):
        assert fragment in message, message
    assert message.count(BUNDLED_MODEL_NAME) <= 2 and "\n" not in message


@pytest.mark.slow
def test_reference_vectors_are_what_the_export_gives(installed):
    """The record's reference vectors are this export's own, unit length, and checked."""
    from ampere_qa.embed.model.export import MIN_COSINE, export_dir, open_encoder, read_export

    record = read_export(installed)
    assert record is not None and len(record["reference"]) == 2
    encoder = open_encoder(installed, record, threads=1)
    refs = record["reference"]
    got = encoder.encode([record["prompts"][r["prompt"]] + r["text"] for r in refs], 384)
    want = np.array([r["vector"] for r in refs])
    assert np.min(np.sum(got * want, axis=1)) >= MIN_COSINE
    assert np.allclose(np.linalg.norm(want, axis=1), 1.0, atol=1e-5)
    assert export_dir(installed).is_dir()
