"""Nothing lost, nothing exposed: what build may delete, what load may read, and clear refusals.

Each test reproduces a defect found by trying to break ampere-qa (it failed before the fix).
Fast tier: fake embedder, in process, except where a real process is what is under test.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ampere_qa import Retriever, build_index
from ampere_qa.errors import BadInputError, IndexMismatchError
from ampere_qa.indexing import checks
from ampere_qa.indexing import index as index_mod
from ampere_qa.indexing import manifest as manifest_mod
from ampere_qa.indexing import write as write_mod
from ampere_qa.indexing.index import MANIFEST, load_index, read_manifest

from .conftest import CORPUS, ROOT, FakeEmbedder

USER_FILES = {
    "results.0123456789ab.npy": b"\x93NUMPY results",
    "experiment.deadbeefcafe.jsonl": b'{"run": 1}\n',
    ".manifest.json.old.tmp": b"old",
    "thesis.txt": b"four years of work",
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# -- 1. build deletes only what it wrote --------------------------------------------------------

def test_build_refuses_a_folder_that_holds_no_index_and_touches_nothing(tmp_path, corpus_copy):
    target = tmp_path / "work"
    target.mkdir()
    for name, data in {**USER_FILES, MANIFEST: b'{"name": "my experiment"}'}.items():
        (target / name).write_bytes(data)
    before = _snapshot(target)
    for attempt in range(2):  # the manifest.json of someone else, then no manifest at all
        embedder = FakeEmbedder()
        with pytest.raises(BadInputError, match="--force") as err:
            build_index(corpus_copy, target, embedder=embedder)
        assert embedder.calls == 0 and err.value.exit_code == 2
        assert _snapshot(target) == before
        if attempt == 0:
            (target / MANIFEST).unlink()
            before = _snapshot(target)


def test_force_builds_beside_other_files_and_never_removes_them(tmp_path, corpus_copy):
    target = tmp_path / "work"
    target.mkdir()
    for name, data in USER_FILES.items():
        (target / name).write_bytes(data)
    build_index(corpus_copy, target, embedder=FakeEmbedder(), force=True)
    first = read_manifest(target)
    (corpus_copy / "more.txt").write_text("Un autre paragraphe sur les batteries d'Ampere.")
    build_index(corpus_copy, target, embedder=FakeEmbedder())  # the folder is an index now
    second = read_manifest(target)
    assert all((target / name).read_bytes() == data for name, data in USER_FILES.items())
    names = {p.name for p in target.iterdir()}
    gone = {f.name for f in first.files.values()} - {f.name for f in second.files.values()}
    assert gone and not gone & names  # superseded files of ours are removed
    assert names == set(USER_FILES) | {MANIFEST, ".ampere-qa.lock"} | {
        f.name for f in second.files.values()}


@pytest.mark.parametrize("role", ["passages", "passage_vectors"])  # the first and third written
def test_a_file_in_the_way_of_a_data_file_is_not_overwritten(tmp_path, corpus_copy, role):
    """The user's file is untouched; the data files the build wrote before it are removed,
    and no journal or temporary file is left."""
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    name = read_manifest(idx).files[role].name
    # Another folder holding a user's file under exactly the name the build wants to write.
    other = tmp_path / "other"
    other.mkdir()
    (other / name).write_bytes(b"not ours")
    with pytest.raises(BadInputError, match="in the way"):
        build_index(corpus_copy, other, embedder=FakeEmbedder(), force=True)
    assert (other / name).read_bytes() == b"not ours"
    assert sorted(p.name for p in other.iterdir()) == sorted([name, ".ampere-qa.lock"])


def test_a_build_killed_after_writing_data_files_is_cleaned_up_by_the_next(tmp_path, corpus_copy,
                                                                         monkeypatch):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    before = _snapshot(idx)
    (corpus_copy / "more.txt").write_text("Un autre paragraphe sur les batteries d'Ampere.")
    real = write_mod.write_atomic

    def die_on_manifest(path: Path, data: bytes, **kw) -> None:
        if path.name == MANIFEST:
            raise KeyboardInterrupt
        real(path, data, **kw)

    monkeypatch.setattr(write_mod, "write_atomic", die_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus_copy, idx, embedder=FakeEmbedder())
    monkeypatch.undo()
    assert (idx / ".ampere-qa-journal.json").exists()  # what the killed build wrote is recorded
    (corpus_copy / "more.txt").unlink()
    build_index(corpus_copy, idx, embedder=FakeEmbedder())  # same corpus as before the kill
    assert {k: v for k, v in _snapshot(idx).items() if k != MANIFEST} == \
        {k: v for k, v in before.items() if k != MANIFEST}


# -- 3. concurrent builds ------------------------------------------------------------------------

def _build_loop(corpus: str, index: str, seconds: float, errors) -> None:  # runs in a child process
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        try:
            build_index(corpus, index, embedder=FakeEmbedder(), reuse=n % 2 == 0)
        except Exception as exc:
            errors.put(f"{type(exc).__name__}: {exc}")
        n += 1


@pytest.mark.integration  # three processes for six seconds
def test_concurrent_builds_and_readers_never_see_a_broken_index(tmp_path):
    idx = tmp_path / "index"
    corpora = []
    for i in range(2):  # two corpora, so each commit really changes the files
        c = tmp_path / f"corpus{i}"
        c.mkdir()
        (c / "a.txt").write_text((CORPUS / "renault-ampere-article.txt").read_text()
                                 + f"\n\nParagraphe propre au corpus {i} sur Ampere.\n")
        corpora.append(c)
    build_index(corpora[0], idx, embedder=FakeEmbedder())
    # Not "fork": a child forked while the Milvus Lite tests' gRPC threads run can deadlock
    # ("skipping fork() handlers"); the builds then never end and the test times out.
    ctx = multiprocessing.get_context("forkserver")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_build_loop, args=(str(c), str(idx), 6.0, errors)) for c in corpora]
    for p in procs:
        p.start()
    loads, load_errors = 0, []
    while any(p.is_alive() for p in procs):
        try:
            load_index(idx)
            loads += 1
        except Exception as exc:
            load_errors.append(f"{type(exc).__name__}: {exc}")
    for p in procs:
        p.join()
    build_errors = []
    while not errors.empty():
        build_errors.append(errors.get())
    assert build_errors == [] and load_errors == [], (build_errors[:3], load_errors[:3])
    assert loads > 10
    manifest = read_manifest(idx)
    load_index(idx)
    assert {p.name for p in idx.iterdir()} == {MANIFEST, ".ampere-qa.lock"} | {
        f.name for f in manifest.files.values()}


# -- 4. the stale warning names the corpus that was indexed --------------------------------------

def test_the_corpus_is_found_from_the_index_folder_not_the_current_one(tmp_path, corpus_copy,
                                                                      monkeypatch):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "corpus").mkdir(parents=True)
    (elsewhere / "corpus" / "other.txt").write_text("Un tout autre sujet : la pâtisserie.")
    monkeypatch.chdir(elsewhere)
    retriever = Retriever.load(idx, embedder=FakeEmbedder())
    assert retriever.is_stale() is False
    (corpus_copy / "renault-ampere-article.txt").write_text("Ampere a changé de nom.")
    assert retriever.is_stale() is True
    warning = manifest_mod.stale_warning(idx, retriever.data.manifest)
    assert f"--corpus {corpus_copy}" in warning and f"--index {idx}" in warning
    # Following the advice literally, or omitting --corpus, rebuilds from that corpus.
    report = build_index(index_dir=idx, embedder=FakeEmbedder())
    assert report.passages == 1
    assert Retriever.load(idx, embedder=FakeEmbedder()).is_stale() is False


# -- 5. symlinks and special files in the corpus -------------------------------------------------

def test_links_out_of_the_corpus_and_special_files_are_skipped(tmp_path, corpus_copy):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash")
    (corpus_copy / "passwd.txt").symlink_to(secret)
    (corpus_copy / "kallsyms.txt").symlink_to("/proc/self/status")
    (corpus_copy / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    os.mkfifo(corpus_copy / "pipe.txt")  # reading it would block the build forever
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "more.txt").write_text("root:x:0:0 from a linked folder")
    (corpus_copy / "linked").symlink_to(outside)
    (corpus_copy / "alias.txt").symlink_to(corpus_copy / "renault-ampere-article.txt")  # inside: fine
    idx = tmp_path / "index"
    report = build_index(corpus_copy, idx, embedder=FakeEmbedder())
    reasons = {Path(s.source).name: s.reason for s in report.skipped}
    assert reasons == {"passwd.txt": "it links outside the corpus folder",
                       "kallsyms.txt": "it links outside the corpus folder",
                       "dangling.txt": "it is a broken link",
                       "pipe.txt": "it is not a regular file"}
    texts = " ".join(p.text for p in load_index(idx).passages)
    assert "root:x" not in texts and "Luca de Meo" in texts


def test_the_size_limit_applies_to_what_is_read(tmp_path, monkeypatch):
    from ampere_qa.ingest import corpus as corpus_mod

    monkeypatch.setattr(corpus_mod, "MAX_FILE_BYTES", 1000)
    (tmp_path / "c").mkdir()
    path = tmp_path / "c" / "a.txt"
    real_fstat = os.fstat

    def lying_fstat(fd):  # as /proc files do: size 0, then bytes
        st = real_fstat(fd)
        return os.stat_result((*st[:6], 0, *st[7:]))

    path.write_text("é" * 800)  # 1,600 bytes
    monkeypatch.setattr(corpus_mod.os, "fstat", lying_fstat)
    with pytest.raises(BadInputError, match="limit for one corpus file"):
        corpus_mod.read_corpus(tmp_path / "c")


# -- 6. manifest names stay inside the index folder ----------------------------------------------

@pytest.mark.parametrize("name", ["/dev/zero", "../passages.0123456789ab.jsonl", "/etc/passwd",
                                  "sentences.0123456789ab.faiss", "passages.x.jsonl"])
def test_manifest_file_names_must_be_data_files_of_the_folder(tmp_path, corpus_copy, name):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    m = read_manifest(idx).to_dict()
    m["files"]["passages"]["name"] = name
    (idx / MANIFEST).write_text(json.dumps(m))
    t0 = time.monotonic()
    with pytest.raises(IndexMismatchError, match="not a data file of this index folder"):
        load_index(idx)
    assert time.monotonic() - t0 < 1


def test_a_data_file_linking_out_of_the_folder_is_refused(tmp_path, corpus_copy):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    name = read_manifest(idx).files["passages"].name
    outside = tmp_path / "copy.jsonl"
    (idx / name).rename(outside)
    (idx / name).symlink_to(outside)
    with pytest.raises(IndexMismatchError, match="not a data file of this index folder"):
        load_index(idx)


def test_sizes_are_checked_before_reading(tmp_path, corpus_copy):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    name = read_manifest(idx).files["passages"].name
    with (idx / name).open("ab") as fh:
        fh.truncate(8 * 2**30)  # sparse: 8 GB claimed, nothing allocated
    t0 = time.monotonic()
    with pytest.raises(IndexMismatchError, match="does not match its manifest"):
        load_index(idx)
    assert time.monotonic() - t0 < 1


def _craft_faiss(idx: Path, claimed: int) -> None:
    """A 20 KB flat FAISS file claiming ``claimed`` vectors, with a manifest that agrees."""
    m = read_manifest(idx).to_dict()
    dim = m["dimension"]
    raw = (b"IxFI" + struct.pack("<iqqq?i", dim, claimed, 1 << 20, 1 << 20, True, 0)
           + struct.pack("<Q", claimed * dim) + b"\0" * 20_000)
    digest = checks.sha256(raw)
    name = f"sentences.{digest[:12]}.faiss"
    (idx / name).write_bytes(raw)
    m["files"]["sentences"] = {"name": name, "sha256": digest, "bytes": len(raw)}
    m["sentence_count"] = claimed
    for role in index_mod.LAZY:  # read as an index from before them: FAISS's check comes first
        del m["files"][role]
    (idx / MANIFEST).write_text(json.dumps(m))


def test_a_crafted_faiss_file_is_refused_before_faiss_allocates(tmp_path, corpus_copy):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    _craft_faiss(idx, 3_000_000)  # 3 GB of floats claimed
    # Peak memory from VmHWM: it starts afresh at exec, while ru_maxrss keeps the peak of the
    # forked parent (a test process holding the model).
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'src')!r})\n"
            "from ampere_qa.indexing.index import load_index\n"
            "from ampere_qa.errors import IndexMismatchError\n"
            f"try:\n    load_index({str(idx)!r})\nexcept IndexMismatchError as e:\n    print('refused', e)\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("refused") and "truncated" in lines[0], out.stdout + out.stderr
    assert int(lines[-1]) < 400 * 1024, "peak RSS in KiB"


# -- 8. file names that are not UTF-8 -------------------------------------------------------------

def test_a_non_utf8_file_name_is_skipped_and_breaks_nothing(tmp_path, corpus_copy):
    bad = os.path.join(os.fsencode(corpus_copy), b"bad\xff\xfename.txt")
    with open(bad, "wb") as fh:
        fh.write(b"Texte quelconque.")
    idx = tmp_path / "index"
    report = build_index(corpus_copy, idx, embedder=FakeEmbedder())
    json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")  # printable as JSON
    assert [s.reason for s in report.skipped] == ["its name is not valid UTF-8: rename it"]
    assert "bad\ufffd\ufffdname.txt" in report.skipped[0].source
    retriever = Retriever.load(idx, embedder=FakeEmbedder())
    assert retriever.is_stale() is False


# -- 11. damaged manifests, writability, question length ------------------------------------------

def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("field, value", [
    ("model", '"bundled"'), ("corpus", "[1, 2]"), ("model", None), ("answer", '{"min_relevance": "high"}'),
    ("files", '{"passages": {"name": 3}}'), ("passage_count", "-1"), ("dimension", "true"),
    ("store", '{"kind": ["milvus"]}'),
])
def test_damaged_manifest_fields_are_refused_with_the_rebuild_hint(tmp_path, corpus_copy, field, value):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    m = read_manifest(idx).to_dict()
    text = json.dumps({**m, field: "@@"}).replace('"@@"', value or _nested(100_000))
    (idx / MANIFEST).write_text(text)
    with pytest.raises(IndexMismatchError, match="ampere-qa build"):
        Retriever.load(idx, embedder=FakeEmbedder())


def test_an_index_path_that_cannot_be_written_fails_before_embedding(tmp_path, corpus_copy):
    (tmp_path / "afile").write_text("x")
    for target, message in [(tmp_path / "afile", "is a file"), (Path("/proc/ampere-index"), "cannot write"),
                            (tmp_path / "afile" / "sub", "is a file|cannot write")]:
        embedder = FakeEmbedder()
        with pytest.raises(BadInputError, match=message):
            build_index(corpus_copy, target, embedder=embedder)
        assert embedder.calls == 0
    assert (tmp_path / "afile").read_text() == "x"


def test_the_length_limit_counts_what_was_typed():
    from ampere_qa.qa.question import MAX_QUESTION_CHARS, clean_question

    typed = "\u0344" * 600  # NFC turns each into two characters
    assert len(clean_question(typed)) == 1200
    with pytest.raises(BadInputError, match=f"is {MAX_QUESTION_CHARS + 1} characters"):
        clean_question("a" * (MAX_QUESTION_CHARS + 1))


# -- sibling of 1: the model cache ----------------------------------------------------------------

@pytest.mark.integration  # converts the real model
def test_model_conversion_never_deletes_a_folder_it_did_not_write(tmp_path):
    from ampere_qa.embed.model import bundled_model_dir, ensure_bundled_model
    from ampere_qa.errors import ModelError

    target = bundled_model_dir(tmp_path)
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="not written by ampere-qa"):
        ensure_bundled_model(tmp_path, progress=False)
    assert (target / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([target.name, ".convert.lock",
                                                                     ".source-sha256.json"])


# -- the command line: refusals are one line with the right status ---------------------------------

def _cli(*args: str):
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_cli_build_into_a_foreign_folder_is_exit_2_and_one_line(tmp_path, corpus_copy):
    target = tmp_path / "work"
    target.mkdir()
    (target / "thesis.txt").write_text("mine")
    result = _cli("build", "--corpus", str(corpus_copy), "--index", str(target))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds no ampere-qa index (found: thesis.txt)" in lines[0]
    assert sorted(p.name for p in target.iterdir()) == ["thesis.txt"]


def test_info_fails_when_data_files_are_gone(tmp_path, corpus_copy):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    assert _cli("info", "--index", str(idx)).exit_code == 0
    (idx / read_manifest(idx).files["leave_one_out"].name).unlink()
    result = _cli("info", "--index", str(idx))
    assert result.exit_code == 1 and "missing" in result.stderr and "ampere-qa build" in result.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path, corpus_copy):
    """``ampere-qa info | head -1``: no BrokenPipeError, no traceback."""
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    proc = subprocess.Popen([sys.executable, "-m", "ampere_qa", "info", "--index", str(idx)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # the reader is gone before the command writes a byte
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141 and err == b"", err.decode()
