"""Trying to break the index and the build for real: killed builds, damaged index files,
read-only folders, a stale corpus, and corpus files that are not what they should be.

Unit checks of each refusal live in test_index.py (fake embedder); here the real command, the
real server entry point (app.py) and the real model see the damage.
"""

from __future__ import annotations

import builtins
import html
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from .conftest import CORPUS, INDEX, ROOT

ASK = "Qui dirige Ampere ?"
ARTICLE = CORPUS / "renault-ampere-article.txt"
EXTRA = ("Ampere prévoit aussi un nouveau centre de recherche consacré aux batteries, "
         "selon un porte-parole du groupe. Les premiers essais commenceront au printemps.")


def _many_paragraphs(n: int) -> str:
    """``n`` distinct three-sentence paragraphs: ~7 texts each to embed."""
    return "\n\n".join(
        f"Le site numéro {i} d'Ampere accueillera {10 * i} ingénieurs en {2025 + i % 5}. "
        f"{EXTRA} Le projet {i} sera présenté aux investisseurs le {1 + i % 28} mars."
        for i in range(n)
    )


def _env(model_cache: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    if model_cache:
        env["AMPERE_QA_CACHE"] = str(model_cache)
    env.pop("AMPERE_QA_DEBUG", None)
    return env


def run(*args: str, cwd: Path = ROOT, model_cache: Path | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ampere_qa", *args], capture_output=True, text=True,
                          cwd=cwd, env=_env(model_cache), timeout=timeout)


def run_app(index: Path, model_cache: Path | None = None) -> subprocess.CompletedProcess:
    """``python app.py --index INDEX``: with a broken index it must exit, not serve."""
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "--index", str(index), "--port", "1"],
                          capture_output=True, text=True, cwd=ROOT, env=_env(model_cache), timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def copy_index(dst: Path) -> Path:
    shutil.copytree(INDEX, dst)
    return dst


def _manifest(idx: Path) -> dict:
    return json.loads((idx / "manifest.json").read_text(encoding="utf-8"))


def _file(idx: Path, role: str) -> Path:
    return idx / _manifest(idx)["files"][role]["name"]


def _replace_data_file(idx: Path, role: str, data: bytes) -> None:
    """Put ``data`` in place of ``role``'s file with a manifest that agrees with it (as a
    half-copied index from another build would): the hash check passes, the content is wrong."""
    import hashlib

    m = _manifest(idx)
    path = idx / m["files"][role]["name"]
    path.write_bytes(data)
    m["files"][role]["sha256"] = hashlib.sha256(data).hexdigest()
    m["files"][role]["bytes"] = len(data)
    (idx / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


# --- killed builds ---------------------------------------------------------------------------

def _answer(idx: Path, embedder) -> dict:
    from ampere_qa import Retriever

    return Retriever.load(idx, embedder=embedder).answer(ASK).to_dict()


def grown_corpus(dst: Path) -> Path:
    """The corpus, grown by enough new text to embed for several seconds (vectors of the
    unchanged article are reused from the previous index and cost nothing)."""
    shutil.copytree(CORPUS, dst)
    (dst / "extra.txt").write_text(_many_paragraphs(40), encoding="utf-8")
    return dst


# Each kill point: (when to send SIGKILL, given seconds since start, stderr so far and the names
# that appeared in the index folder). Data files are written in the order passages, sentences,
# passage_vectors, the other arrays and the lazy-loading tables (each skipped when identical),
# then the manifest.
KILL_POINTS: dict[str, Callable[[float, str, set[str]], bool]] = {
    "loading the model": lambda t, err, new: t > 1.0,
    "embedding": lambda t, err, new: re.search(r"embedding:\s+\d+%\|[^|]*\| [1-9]\d*/\d+", err) is not None,
    "writing the first data file": lambda t, err, new: bool(new),
    "writing the third data file": lambda t, err, new: any("passage_vectors" in n for n in new),
}
# A write-phase point also stalls the build once that data file is in place (stalled_build.py),
# so a poll that comes late still kills it before the manifest is committed.
STALL_AFTER = {"writing the first data file": "passages.",
               "writing the third data file": "passage_vectors."}
STALLED_BUILD = Path(__file__).with_name("stalled_build.py")


def kill_build_when(corpus: Path, idx: Path, when: Callable[[float, str, set[str]], bool],
                    log: Path, model_cache: Path, timeout: float = 300,
                    env: dict[str, str] | None = None, stall_after: str | None = None) -> bool:
    """Start ``ampere-qa build`` and SIGKILL it once ``when`` holds; False if it finished first.

    With ``stall_after``, the build sleeps once a data file whose name contains it is in place.
    """
    from .stalled_build import STALL_ENV

    before = set(os.listdir(idx))
    stall = {STALL_ENV: stall_after} if stall_after else {}
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(STALLED_BUILD), "build", "--corpus", str(corpus), "--index", str(idx)],
            cwd=ROOT, env={**_env(model_cache), **(env or {}), **stall},
            stdout=subprocess.DEVNULL, stderr=err)
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - t0
            assert elapsed < timeout, "build did not reach the kill point"
            if when(elapsed, log.read_text(errors="replace"), set(os.listdir(idx)) - before):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.0005)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.integration
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_build_killed_leaves_the_previous_index_answering(point, tmp_path, model_cache, real_embedder):
    idx = copy_index(tmp_path / "index")
    corpus = grown_corpus(tmp_path / "corpus")
    manifest_before = (idx / "manifest.json").read_bytes()
    answer_before = _answer(idx, real_embedder)
    # A build that finished before its kill point was seen is tried again.
    for _attempt in range(3):
        if kill_build_when(corpus, idx, KILL_POINTS[point], tmp_path / "build.log", model_cache,
                           stall_after=STALL_AFTER.get(point)):
            break
        shutil.rmtree(idx)
        copy_index(idx)
    else:
        pytest.fail(f"never killed the build while {point}")
    assert (idx / "manifest.json").read_bytes() == manifest_before
    assert _answer(idx, real_embedder) == answer_before
    if point == "writing the third data file":  # once, through the command a user runs
        proc = run("ask", ASK, "--index", str(idx), "--json", model_cache=model_cache)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == answer_before


# --- damaged index files ---------------------------------------------------------------------

def _damage(idx: Path, kind: str) -> None:
    m = _manifest(idx)
    if kind == "faiss truncated":
        p = _file(idx, "sentences")
        p.write_bytes(p.read_bytes()[:100])
    elif kind == "faiss garbage (hash updated)":
        _replace_data_file(idx, "sentences", b"IxFI" + os.urandom(4000))
    elif kind == "faiss bit flipped":
        p = _file(idx, "sentences")
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x10
        p.write_bytes(bytes(data))
    elif kind == "passages truncated":
        p = _file(idx, "passages")
        p.write_bytes(p.read_bytes()[:500])
    elif kind == "passages not JSON (hash updated)":
        _replace_data_file(idx, "passages", b'{"id": "x", "text": \n')
    elif kind == "passages file missing":
        _file(idx, "passages").unlink()
    elif kind == "manifest truncated":
        p = idx / "manifest.json"
        p.write_bytes(p.read_bytes()[:200])
    elif kind == "manifest empty":
        (idx / "manifest.json").write_bytes(b"")
    elif kind == "manifest not an object":
        (idx / "manifest.json").write_text("[1, 2, 3]")
    elif kind == "manifest of another dimension":
        (idx / "manifest.json").write_text(json.dumps({**m, "dimension": 768}))
    elif kind == "fewer passages than vectors (hash updated)":
        p = _file(idx, "passages")
        lines = p.read_bytes().splitlines(keepends=True)
        _replace_data_file(idx, "passages", b"".join(lines[:-1]))
    elif kind == "fewer passage vectors than passages (hash updated)":
        vecs = np.load(_file(idx, "passage_vectors"))
        _replace_data_file(idx, "passage_vectors", _npy(vecs[:-1]))
    elif kind == "sentence vectors of another dimension (hash updated)":
        from ampere_qa.indexing.stores.faiss import serialize_faiss

        n = _manifest(idx)["sentence_count"]
        _replace_data_file(idx, "sentences", serialize_faiss(np.eye(n, 768, dtype=np.float32)))
    else:  # pragma: no cover
        raise AssertionError(kind)


DAMAGES = [
    "faiss truncated", "faiss garbage (hash updated)", "faiss bit flipped", "passages truncated",
    "passages not JSON (hash updated)", "passages file missing", "manifest truncated",
    "manifest empty", "manifest not an object", "manifest of another dimension",
    "fewer passages than vectors (hash updated)", "fewer passage vectors than passages (hash updated)",
    "sentence vectors of another dimension (hash updated)",
]


@pytest.mark.integration  # two real processes per damage: the command and the server entry point
@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_index_is_refused_by_ask_and_by_the_server(kind, tmp_path):
    """One line on stderr naming the command that fixes it, exit 1, before any model loads."""
    idx = copy_index(tmp_path / "index")
    _damage(idx, kind)
    with ThreadPoolExecutor(2) as pool:
        ask = pool.submit(run, "ask", ASK, "--index", str(idx), "--json")
        app = pool.submit(run_app, idx)
        ask_proc, app_proc = ask.result(), app.result()
    assert ask_proc.stdout == ""  # never an answer from a damaged index
    line = assert_one_line_error(ask_proc, 1, "ampere-qa build", str(idx))
    assert assert_one_line_error(app_proc, 1) == line
    assert "ready on" not in app_proc.stdout


@pytest.mark.integration
def test_an_index_built_with_other_weights_is_refused(tmp_path, model_cache):
    idx = copy_index(tmp_path / "index")
    m = _manifest(idx)
    m["model"]["fingerprint"] = "0" * 64
    (idx / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with ThreadPoolExecutor(2) as pool:
        ask = pool.submit(run, "ask", ASK, "--index", str(idx), model_cache=model_cache)
        app = pool.submit(run_app, idx, model_cache)
        ask_proc, app_proc = ask.result(), app.result()
    assert ask_proc.stdout == ""
    assert_one_line_error(ask_proc, 1, "other model weights", "ampere-qa build")
    assert_one_line_error(app_proc, 1, "other model weights", "ampere-qa build")


def test_info_on_a_damaged_manifest_is_one_line(tmp_path):
    idx = copy_index(tmp_path / "index")
    _damage(idx, "manifest truncated")
    assert_one_line_error(run("info", "--index", str(idx)), 1, "corrupted", "ampere-qa build")


# --- stale corpus ----------------------------------------------------------------------------

@pytest.fixture
def stale_checkout(tmp_path: Path) -> Path:
    """A checkout-like folder whose corpus changed after its index was built."""
    shutil.copytree(CORPUS, tmp_path / "corpus")
    copy_index(tmp_path / "index")
    with (tmp_path / "corpus" / ARTICLE.name).open("a", encoding="utf-8") as f:
        f.write("\n" + EXTRA + "\n")
    return tmp_path


def test_info_says_the_index_is_stale(stale_checkout):
    proc = run("info", "--json", cwd=stale_checkout)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["stale"] is True
    assert "corpus changed" in proc.stderr
    assert "ampere-qa build --corpus corpus --index index" in proc.stderr  # the indexed corpus


@pytest.mark.integration
def test_ask_says_the_index_is_stale_and_still_answers(stale_checkout, model_cache):
    proc = run("ask", ASK, "--json", cwd=stale_checkout, model_cache=model_cache)
    assert proc.returncode == 0, proc.stderr
    assert "Luca de Meo" in json.loads(proc.stdout)["answer"]
    assert "warning: the corpus changed" in proc.stderr and "ampere-qa build" in proc.stderr


@pytest.mark.integration
def test_the_page_shows_a_stale_notice(stale_checkout, real_embedder, monkeypatch):
    import urllib.request

    from ampere_qa import Retriever
    from ampere_qa.web import create_app, stale_notice

    from .serving import free_port

    assert stale_notice(Retriever.load(INDEX, embedder=real_embedder)) == ""
    monkeypatch.chdir(stale_checkout)
    retriever = Retriever.load("index", embedder=real_embedder)
    assert retriever.is_stale() is True
    notice = html.unescape(stale_notice(retriever))
    assert "corpus changed" in notice and "ampere-qa build" in notice
    assert str(stale_checkout) not in notice  # visitors are shown no server path
    demo = create_app(retriever)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                ssr_mode=False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as resp:
            config = json.load(resp)
        shown = [c["props"] for c in config["components"]
                 if c.get("props", {}).get("elem_id") == "aqa-stale"]
        assert len(shown) == 1 and shown[0]["visible"] is True
        assert "corpus changed since the index was built" in html.unescape(shown[0]["value"])
    finally:
        demo.close()


# --- read-only index -------------------------------------------------------------------------

def _read_only(idx: Path) -> None:
    for p in idx.iterdir():
        p.chmod(0o444)
    idx.chmod(0o555)


@pytest.mark.integration
def test_a_read_only_index_is_queried_without_opening_anything_for_writing(tmp_path, model_cache,
                                                                           monkeypatch):
    """Root ignores file modes, so besides chmod the test refuses every write-mode open while
    loading (index and model) and answering: a read-only mount would behave the same."""
    from ampere_qa import Retriever

    idx = copy_index(tmp_path / "index")
    _read_only(idx)
    try:
        proc = run("ask", ASK, "--index", str(idx), "--json", model_cache=model_cache)
        assert proc.returncode == 0, proc.stderr
        assert "Luca de Meo" in json.loads(proc.stdout)["answer"]

        writes: list[str] = []
        real_open, real_os_open = builtins.open, os.open

        def guarded_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
            if any(ch in str(mode) for ch in "wax+"):
                writes.append(f"open({file!r}, {mode!r})")
                raise PermissionError(f"read-only: {file}")
            return real_open(file, mode, *args, **kwargs)

        def guarded_os_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC):
                writes.append(f"os.open({path!r}, {flags:#o})")
                raise PermissionError(f"read-only: {path}")
            return real_os_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(io, "open", guarded_open)
        monkeypatch.setattr(os, "open", guarded_os_open)
        retriever = Retriever.load(idx)  # a fresh model load from the cache, too
        result = retriever.answer(ASK)
        retriever.is_stale()
        monkeypatch.undo()
        assert writes == []
        assert result.answered and "Luca de Meo" in result.answer
    finally:
        idx.chmod(0o755)


# --- corpus files ----------------------------------------------------------------------------

def _build_rusage(corpus: Path, idx: Path) -> tuple[int, str, int]:
    """Run ``ampere-qa build``; its exit code, stderr, and peak resident memory in KiB."""
    err = idx.parent / "build.err"
    with err.open("w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ampere_qa", "build", "--corpus", str(corpus), "--index", str(idx)],
            cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=f)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err.read_text(), usage.ru_maxrss


def _write_big_text(path: Path, size: int) -> None:
    chunk = (ARTICLE.read_text(encoding="utf-8") + "\n").encode() * 64
    with path.open("wb") as f:
        while f.tell() < size:
            f.write(chunk)
        f.truncate(size)


@pytest.mark.slow
def test_a_huge_corpus_file_is_refused_from_its_size_with_memory_bounded(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    (small / "a.txt").write_text("Bonjour.", encoding="utf-8")
    (small / "b.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    base_code, _, base_rss = _build_rusage(small, tmp_path / "i1")
    assert base_code == 2

    huge = tmp_path / "huge"
    huge.mkdir()
    shutil.copy(ARTICLE, huge / ARTICLE.name)
    _write_big_text(huge / "dump.txt", 50 * 2**20)  # real text, 50 MB
    code, err, rss = _build_rusage(huge, tmp_path / "i2")
    assert code == 2 and "Traceback" not in err, err
    assert "dump.txt is 50.0 MB, over the 2 MB limit" in err and "remove it from the corpus" in err
    # Had the file been read, the peak would be 50 MB higher than a build failing on a tiny file.
    assert rss - base_rss < 16 * 1024, (rss, base_rss)
    assert not (tmp_path / "i2").exists()

    many = tmp_path / "many"
    many.mkdir()
    for i in range(5):  # each under the per-file limit, together over the corpus limit
        _write_big_text(many / f"part{i}.txt", 2 * 2**20 - 1)
    code, err, rss = _build_rusage(many, tmp_path / "i3")
    assert code == 2 and "over the 8 MB limit" in err, err
    assert rss - base_rss < 16 * 1024, (rss, base_rss)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.txt looks binary"),
    ("latin1.txt", "Électricité à Cléon, été 2024.".encode("latin-1"), "latin1.txt is not UTF-8"),
    ("utf16.txt", "Électricité à Cléon.".encode("utf-16"), "utf16.txt is UTF-16, not UTF-8"),
    ("utf32.md", "Électricité à Cléon.".encode("utf-32"), "utf32.md is UTF-32, not UTF-8"),
])
def test_a_corpus_file_that_is_not_utf8_text_stops_the_build(tmp_path, name, content, message):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / name).write_bytes(content)
    idx = copy_index(tmp_path / "index")
    before = (idx / "manifest.json").read_bytes()
    line = assert_one_line_error(run("build", "--corpus", str(corpus), "--index", str(idx)), 2, message)
    assert "convert it" in line or "remove it" in line
    assert (idx / "manifest.json").read_bytes() == before  # the previous index is untouched


def test_an_empty_corpus_file_is_skipped_with_a_warning(tmp_path, monkeypatch, fake_embedder):
    from click.testing import CliRunner

    from ampere_qa.cli import cli
    from ampere_qa.indexing import build as build_mod

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "blank.txt").write_text(" \n\t\n", encoding="utf-8")
    monkeypatch.setattr(build_mod, "load_embedder", lambda *a, **k: fake_embedder)
    result = CliRunner().invoke(cli, ["build", "--corpus", str(corpus), "--index", str(tmp_path / "i")])
    assert result.exit_code == 0, result.output
    assert "warning: skipped corpus/empty.md: empty file" in result.stderr
    assert "warning: skipped corpus/blank.txt: empty file" in result.stderr
    assert "Indexed 1 file(s) into 5 passages" in result.stdout
