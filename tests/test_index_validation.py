"""A crafted index (its manifest's hashes updated to match) is refused at load, in one line with
the rebuild command, instead of loading and then failing every question: BM25 arrays, the passage
table, vectors, the BM25 vocabulary's size, FAISS row offsets and ids. And Milvus names and URIs:
a bad ``--collection`` is refused before connecting (exit 2), credentials never shown nor recorded.
The Milvus Lite cases are in test_milvus_safety.py."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from ampere_qa import Retriever, build_index
from ampere_qa.errors import BadInputError, IndexMismatchError, StoreUnavailableError
from ampere_qa.indexing import checks, lexical
from ampere_qa.indexing import index as index_mod
from ampere_qa.indexing.index import MANIFEST, load_index
from ampere_qa.indexing.manifest import Manifest, rebuild_hint
from ampere_qa.indexing.stores import base, milvus

from .conftest import CORPUS, FakeEmbedder
from .test_scale import _many

REBUILD = "ampere-qa build"
# Milvus's 255 characters, less the generation suffix ("__g" and 12 hex digits).
MAX_COLLECTION = 255 - 15


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


class Crafted:
    """An index folder whose files a test rewrites, the manifest's hashes updated to match."""

    def __init__(self, idx: Path):
        self.idx = idx
        self.m = json.loads((idx / MANIFEST).read_text())

    def path(self, role: str) -> Path:
        return self.idx / self.m["files"][role]["name"]

    def array(self, role: str) -> np.ndarray:
        return np.load(self.path(role))

    def replace(self, role: str, data: bytes | np.ndarray) -> None:
        data = _npy(data) if isinstance(data, np.ndarray) else data
        self.path(role).write_bytes(data)
        entry = self.m["files"][role]
        entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        entry.pop("sample_sha256", None)
        if len(data) > checks.FULL_HASH_MAX_BYTES:
            entry["sample_sha256"] = checks.ends_sha256(
                len(data), data[:checks.SAMPLE_BYTES], data[-checks.SAMPLE_BYTES:])
        self.save()

    def save(self) -> None:
        (self.idx / MANIFEST).write_text(json.dumps(self.m))


@pytest.fixture(scope="module")
def _built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped corpus and 20 more passages, built once for the module: a folder holding
    ``corpus`` and ``index`` as a test's ``tmp_path`` holds them."""
    base = tmp_path_factory.mktemp("crafted")
    corpus = _many(Path(shutil.copytree(CORPUS, base / "corpus")), 20)
    build_index(corpus, base / "index", embedder=FakeEmbedder())
    return base


@pytest.fixture
def crafted(tmp_path, _built_once) -> Crafted:
    """A copy of the module's build in ``tmp_path`` (corpus and index, times kept): the files
    building there would write, but for ``built_at``."""
    shutil.copytree(_built_once, tmp_path, dirs_exist_ok=True)
    return Crafted(tmp_path / "index")


def _refused(idx: Path, match: str) -> str:
    with pytest.raises(IndexMismatchError, match=match) as err:
        load_index(idx)
    text = str(err.value)
    assert REBUILD in text and "\n" not in text
    return text


# --------------------------------------------------------------------------- 6: BM25 arrays

def _bm25_damage(c: Crafted, damage: str) -> None:
    data, indices, indptr = (c.array(r) for r in lexical.SAVED_ARRAYS)
    n = c.m["passage_count"]
    if damage == "index out of range":
        indices[len(indices) // 2] = n
        c.replace("lexical_indices", indices)
    elif damage == "negative index":
        indices[len(indices) // 2] = -1
        c.replace("lexical_indices", indices)
    elif damage == "NaN score":
        data[len(data) // 2] = np.nan
        c.replace("lexical_data", data)
    elif damage == "infinite score":
        data[3] = np.inf
        c.replace("lexical_data", data)
    elif damage == "short data":
        c.replace("lexical_data", data[:-1].copy())
    elif damage == "short indices":
        c.replace("lexical_indices", indices[:-1].copy())
    elif damage == "pointer past the end":
        indptr[-1] = len(data) + 1
        c.replace("lexical_indptr", indptr)
    elif damage == "middle pointer past the end":
        indptr[len(indptr) // 2] = len(data) + 10
        c.replace("lexical_indptr", indptr)
    elif damage == "pointers going back":
        nonempty = np.flatnonzero(np.diff(indptr) > 0)  # columns with scores
        i = int(nonempty[len(nonempty) // 2])
        indptr[i], indptr[i + 1] = indptr[i + 1], indptr[i]  # totals unchanged, one step back
        c.replace("lexical_indptr", indptr)
    elif damage == "first pointer not 0":
        indptr[0] = 1
        c.replace("lexical_indptr", indptr)


@pytest.mark.parametrize("damage", ["index out of range", "negative index", "NaN score",
                                    "infinite score", "short data", "short indices",
                                    "pointer past the end", "middle pointer past the end",
                                    "pointers going back", "first pointer not 0"])
def test_damaged_bm25_arrays_are_refused_at_load(crafted, damage):
    """Each used to load, then every question failed with an unexpected IndexError/ValueError
    (or scored NaN)."""
    _bm25_damage(crafted, damage)
    _refused(crafted.idx, "BM25")


def test_the_checks_find_nothing_wrong_in_a_real_index(crafted):
    arrays = {r: crafted.array(r) for r in lexical.SAVED_ARRAYS}
    vocab = json.loads(crafted.path("lexical_vocab").read_text())
    assert lexical.saved_problem(arrays, len(vocab), crafted.m["passage_count"]) is None
    assert Retriever.load(crafted.idx, embedder=FakeEmbedder()).answer("Qui dirige Ampere ?").citations


# --------------------------------------------------------------------------- 6: the passage table

def test_a_middle_passage_whose_table_row_disagrees_is_refused_not_an_index_error(crafted):
    """The table moves one sentence row from passage i+1 to passage i (totals unchanged, so the
    table itself still adds up, and the first and last passages, parsed at load, still agree):
    the passage is refused when parsed, so a question never reaches an IndexError."""
    table = crafted.array("passage_index")
    counts = np.diff(table[:, 1])
    i = next(j for j in range(1, len(counts) - 2) if counts[j + 1] > 1)
    table[i + 1, 1] += 1
    crafted.replace("passage_index", table)
    data = load_index(crafted.idx)  # loads: only what a question touches is parsed
    with pytest.raises(IndexMismatchError, match=rf"passage {i} .* has {counts[i]} sentences, its "
                                                 rf"table row says {counts[i] + 1}: .*{REBUILD}"):
        data.passages[i]
    with pytest.raises(IndexMismatchError, match=f"passage {i + 1} "):
        data.passages[i + 1]
    with pytest.raises(IndexMismatchError):
        list(data.passages)
    # A question whose words find the passage: refused in one line, never an IndexError.
    retriever = Retriever.load(crafted.idx, embedder=FakeEmbedder())
    words = _words_of(crafted, i)
    with pytest.raises(IndexMismatchError, match=REBUILD):
        retriever.answer(words)


def _words_of(c: Crafted, i: int) -> str:
    """The text of passage ``i``, read straight from the passages file (a question that finds it)."""
    table = c.array("passage_index")
    raw = c.path("passages").read_bytes()[table[i, 0]:table[i + 1, 0]]
    return json.loads(raw)["text"]


def test_the_first_and_last_passages_are_still_checked_at_load(crafted):
    table = crafted.array("passage_index")
    table[1, 1] += 1  # passage 0 claims one more sentence
    crafted.replace("passage_index", table)
    _refused(crafted.idx, "passage 0 .* sentences")


# --------------------------------------------------------------------------- 6: the vocabulary

def test_a_vocabulary_file_over_the_cap_is_refused_before_it_is_read(crafted, monkeypatch):
    """33 MB of valid JSON (the list padded with spaces): over MAX_VOCABULARY_BYTES, so refused by
    its size, with no byte of it read."""
    vocab = crafted.path("lexical_vocab").read_bytes()
    cap = 32 * 2**20  # lexical.MAX_VOCABULARY_BYTES (the crafted 60 MB file took 1.4 GB)
    crafted.replace("lexical_vocab", vocab[:-1] + b" " * (cap + 1) + b"]")
    opened: list[str] = []
    real_check = index_mod.check_file
    monkeypatch.setattr(index_mod, "check_file",
                        lambda d, role, *a: opened.append(role) or real_check(d, role, *a))
    _refused(crafted.idx, r"BM25 vocabulary of 33,5\d\d,\d\d\d bytes, more than the 33,554,432")
    assert "lexical_vocab" not in opened and cap == lexical.MAX_VOCABULARY_BYTES


def test_a_vocabulary_of_more_stems_than_the_cap_is_refused_before_it_is_parsed(crafted, monkeypatch):
    """A consistent vocabulary (extra stems with empty columns) over MAX_VOCABULARY: refused from
    the column count, before the words are parsed."""
    vocab = json.loads(crafted.path("lexical_vocab").read_text())
    indptr = crafted.array("lexical_indptr")
    extra = [f"zz{i:05d}" for i in range(500)]
    crafted.replace("lexical_vocab", json.dumps(vocab + extra).encode())
    crafted.replace("lexical_indptr", np.concatenate([indptr, np.full(500, indptr[-1], indptr.dtype)]))
    assert load_index(crafted.idx).lexical is not None  # consistent: loads under the real cap
    monkeypatch.setattr(lexical, "MAX_VOCABULARY", len(vocab) + 499, raising=False)
    _refused(crafted.idx, rf"{len(vocab) + 500:,} stems, more than the {len(vocab) + 499:,}")


@pytest.mark.parametrize("cap", ["MAX_VOCABULARY", "MAX_VOCABULARY_BYTES"])
def test_a_build_over_the_vocabulary_cap_refuses_and_leaves_the_previous_index(tmp_path, corpus_copy,
                                                                               monkeypatch, cap):
    idx = tmp_path / "index"
    build_index(corpus_copy, idx, embedder=FakeEmbedder())
    before = sorted(p.name for p in idx.iterdir())
    with monkeypatch.context() as m:
        m.setattr(lexical, cap, 50, raising=False)
        with pytest.raises(BadInputError, match=rf"more than the 50 an index may hold \(lexical\.{cap}\)"):
            build_index(_many(corpus_copy, 20), idx, embedder=FakeEmbedder())
    assert sorted(p.name for p in idx.iterdir() if not p.name.startswith(".ampere-qa-tmp")) == before
    load_index(idx)  # the previous index, whole


def test_cli_build_over_the_cap_is_exit_2_and_one_line(tmp_path, corpus_copy, monkeypatch):
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    monkeypatch.setattr("ampere_qa.indexing.build.load_embedder", lambda model: FakeEmbedder())
    monkeypatch.setattr(lexical, "MAX_VOCABULARY", 50, raising=False)
    result = CliRunner().invoke(cli, ["build", "--corpus", str(corpus_copy), "--index",
                                      str(tmp_path / "i"), "--json"])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and "distinct word stems" in result.stderr


# --------------------------------------------------------------------------- 6: siblings, vectors

@pytest.mark.parametrize("role,value", [("passage_vectors", np.nan), ("leave_one_out", np.inf),
                                        ("background", -np.inf), ("leave_one_out", np.nan)])
def test_vectors_holding_nan_or_infinity_are_refused(crafted, role, value):
    a = crafted.array(role)
    a[len(a) // 2, 3] = value
    crafted.replace(role, a)
    _refused(crafted.idx, f"{role} holds NaN or infinite values")


def test_a_big_mapped_array_changed_in_its_middle_is_refused(tmp_path, corpus_copy, monkeypatch):
    """A big file is checked by its size and the hash of its ends: a NaN in its middle got
    through without even a manifest change. Its values are checked (chunk by chunk, mapped)."""
    monkeypatch.setattr(checks, "FULL_HASH_MAX_BYTES", 4096)
    monkeypatch.setattr(checks, "SAMPLE_BYTES", 512)
    monkeypatch.setattr(base, "CHECK_CHUNK", 1000, raising=False)  # several chunks
    idx = tmp_path / "index"
    build_index(_many(corpus_copy, 20), idx, embedder=FakeEmbedder())
    c = Crafted(idx)
    assert "sample_sha256" in c.m["files"]["leave_one_out"]
    assert isinstance(load_index(idx).vectors.leave_one_out, np.memmap)
    path = c.path("leave_one_out")
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2 // 4 * 4
    raw[middle:middle + 4] = np.float32(np.nan).tobytes()
    path.write_bytes(bytes(raw))
    _refused(idx, "leave_one_out holds NaN")


# --------------------------------------------------------------------------- 6: siblings, FAISS

def _ivf(tmp_path, corpus_copy, monkeypatch, mapped: bool) -> Crafted:
    if mapped:  # every file "big": the IVF file is mapped, rows read at their saved offsets
        monkeypatch.setattr(checks, "FULL_HASH_MAX_BYTES", 1024)
        monkeypatch.setattr(checks, "SAMPLE_BYTES", 64)
    idx = tmp_path / "index"
    build_index(_many(corpus_copy, 120), idx, embedder=FakeEmbedder(), faiss_kind="IndexIVFFlat")
    return Crafted(idx)


@pytest.mark.parametrize("damage", ["unaligned", "into the ids", "repeated", "before the lists"])
def test_row_offsets_of_a_big_ivf_file_must_each_be_a_vector_of_its_own(tmp_path, corpus_copy,
                                                                        monkeypatch, damage):
    """They were checked only to fall inside the file: an offset into a list's ids, a header or
    another row's vector loaded, and questions read garbage as a sentence's vector."""
    c = _ivf(tmp_path, corpus_copy, monkeypatch, mapped=True)
    assert load_index(c.idx).store._rows is not None
    offsets = c.array("sentence_offsets")
    dim = c.m["dimension"]
    if damage == "unaligned":
        offsets[5] += 4
    elif damage == "into the ids":  # the ids of the first list, well inside the file
        lists = [(s, k) for s, k in _faiss_regions(c)[1] if k]
        assert len(lists) > 1
        offsets[0] = lists[0][0] + lists[0][1] * 4 * dim
    elif damage == "repeated":
        offsets[1] = offsets[0]
    else:
        offsets[2] = 8
    c.replace("sentence_offsets", offsets)
    _refused(c.idx, "row offsets do not fit")


def _faiss_regions(c: Crafted) -> tuple[bytearray, list[tuple[int, int]]]:
    """An IVF file's bytes, and each inverted list's (offset of its vectors, rows)."""
    from ampere_qa.indexing.stores.faiss_format import _ivf_flat, _Reader

    raw = bytearray(c.path("sentences").read_bytes())
    lists: list[tuple[int, int]] = []
    r = _Reader(bytes(raw))
    assert r.fourcc() == b"IwFl"
    _ivf_flat(r, c.m["dimension"], lists)
    return raw, lists


def test_a_faiss_vector_holding_nan_is_refused_when_read(crafted):
    """The FAISS file's values are not scanned at load (the biggest file at a million passages):
    what a question reads from it is checked, every time, and refused in one line."""
    raw = bytearray(crafted.path("sentences").read_bytes())
    first = 4 + 33 + 8  # flat: fourcc, header, vector count; then the vectors
    row = 7 * crafted.m["dimension"] * 4
    raw[first + row:first + row + 4] = np.float32(np.nan).tobytes()
    crafted.replace("sentences", bytes(raw))
    store = load_index(crafted.idx).store
    np.testing.assert_array_equal(np.isfinite(store.get(np.arange(7))), True)
    with pytest.raises(IndexMismatchError, match=f"FAISS file holds NaN or infinite vectors: .*{REBUILD}"):
        store.get(np.arange(5, 9))


def test_an_ivf_id_out_of_range_never_reaches_a_question_as_an_index_error(tmp_path, corpus_copy,
                                                                           monkeypatch):
    """The ids of an IVF file's lists are read from the file: one past the sentence count used to
    be returned by a search, and sentence_owner[row] raised IndexError."""
    c = _ivf(tmp_path, corpus_copy, monkeypatch, mapped=True)
    raw, lists = _faiss_regions(c)
    dim, n = c.m["dimension"], c.m["sentence_count"]
    start, rows = next((s, k) for s, k in lists if k)
    ids_at = start + rows * 4 * dim
    wanted = int(np.frombuffer(bytes(raw), np.int64, 1, ids_at)[0])
    raw[ids_at:ids_at + 8] = np.int64(n + 7).tobytes()
    c.path("sentences").write_bytes(bytes(raw))  # a big file: same size and ends, no manifest change
    store = load_index(c.idx).store
    query = store.get(np.array([wanted]))[0]
    with pytest.raises(IndexMismatchError, match=f"returns row {n + 7} of {n}: .*{REBUILD}"):
        store.search(query, 5)


def test_an_ivf_id_out_of_range_in_a_small_file_is_refused_at_load(tmp_path, corpus_copy, monkeypatch):
    """(A guard: a small IVF file gets FAISS's direct map at load, which refuses such an id.)"""
    c = _ivf(tmp_path, corpus_copy, monkeypatch, mapped=False)
    raw, lists = _faiss_regions(c)
    start, rows = next((s, k) for s, k in lists if k)
    ids_at = start + rows * 4 * c.m["dimension"]
    raw[ids_at:ids_at + 8] = np.int64(c.m["sentence_count"] + 7).tobytes()
    c.replace("sentences", bytes(raw))
    _refused(c.idx, "cannot be read")


# --------------------------------------------------------------------------- 6: what the checks cost

@pytest.mark.slow
def test_the_checks_are_chunked_and_cheap_on_a_big_mapped_array(tmp_path):
    """50M float32 (200 MB) memory-mapped: the finiteness check takes a fraction of a second and
    leaves the pages it read out of the process's resident memory."""
    path = tmp_path / "big.npy"
    a = np.lib.format.open_memmap(path, "w+", np.float32, (50_000_000,))
    a[:] = 0.5
    a[-1] = np.nan
    a.flush()
    del a
    mapped = np.load(path, mmap_mode="r")
    t0 = time.perf_counter()
    assert not base.all_finite(mapped)
    seconds = time.perf_counter() - t0
    assert seconds < 5, seconds  # ~0.05 s measured on the 2-core machine (BENCHMARKS-like figure)
    ints = np.load(path, mmap_mode="r").view(np.int32)
    assert base.value_range(ints[:10]) == (int(ints[:10].min()), int(ints[:10].max()))
    assert base.first_decrease(np.array([0, 1, 1, 3, 2, 5])) == 4
    assert base.first_decrease(np.array([0, 1, 1, 3]), strict=True) == 2
    assert base.first_decrease(np.arange(10)) is None


@pytest.mark.parametrize("size", [1, 3, 7])
def test_the_chunked_checks_agree_with_numpy_across_chunk_edges(monkeypatch, size):
    monkeypatch.setattr(base, "CHECK_CHUNK", size, raising=False)
    rng = np.random.default_rng(size)
    for _ in range(50):
        a = np.cumsum(rng.integers(-1, 3, 20))
        back = np.flatnonzero(np.diff(a) < 0)
        level = np.flatnonzero(np.diff(a) <= 0)
        assert base.first_decrease(a) == (int(back[0]) + 1 if len(back) else None)
        assert base.first_decrease(a, strict=True) == (int(level[0]) + 1 if len(level) else None)
        assert base.value_range(a) == (int(a.min()), int(a.max()))
        f = rng.random(20).astype(np.float32)
        f[rng.integers(20)] = rng.choice([np.nan, np.inf, -np.inf, 0.5])
        assert base.all_finite(f) == bool(np.isfinite(f).all())


# --------------------------------------------------------------------------- 10: Milvus names

@pytest.mark.parametrize("name", ["../evil", "a" * 300, "a" * (MAX_COLLECTION + 1), "1abc",
                                  "with-dash", "with space", "évier", "x/y", ""])
def test_bad_collection_names_are_refused_before_connecting(tmp_path, corpus_copy, monkeypatch, name):
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    def no_connection(*args, **kwargs):
        raise AssertionError("connected")

    monkeypatch.setattr(milvus.client, "connect", no_connection)
    monkeypatch.setattr("ampere_qa.indexing.build.load_embedder", lambda model: FakeEmbedder())
    if name:
        result = CliRunner().invoke(cli, ["build", "--corpus", str(corpus_copy), "--index",
                                          str(tmp_path / "i"), "--store", "milvus", "--uri",
                                          str(tmp_path / "x.db"), "--collection", name])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: --collection ")
        assert "not a Milvus collection name" in result.stderr
        assert len(result.stderr.splitlines()) == 1 and len(result.stderr) < 400
    with pytest.raises(BadInputError, match="not a Milvus collection name"):
        config = {"kind": "milvus", "uri": str(tmp_path / "x.db"), "collection": name}
        milvus.MilvusBackend(config).check_writable()
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("name", ["ampere_qa", "_x", "A1_b2", "a" * MAX_COLLECTION])
def test_good_collection_names_pass(name):
    assert milvus.MAX_COLLECTION == MAX_COLLECTION
    assert milvus.name_problem(name) is None
    assert len(f"{name}__g{'0' * 12}") <= milvus.MAX_NAME


def test_a_manifest_naming_a_bad_collection_is_refused_before_connecting(crafted, monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError("connected")

    monkeypatch.setattr(milvus.client, "connect", no_connection)
    for store, shown in [({"generation": "../../evil__g0123456789ab"}, "'../../evil__g0123456789ab'"),
                         ({"collection": "b" * 300}, f"'{'b' * 60}…'")]:
        crafted.m["store"] = {"kind": "milvus", "uri": "http://host:19530", "collection": "ok", **store}
        with pytest.raises(IndexMismatchError,
                           match=f"names Milvus collection {shown}, which .*: rebuild it"):
            milvus.open_milvus(Manifest.from_dict(crafted.m), "rebuild it")


# --------------------------------------------------------------------------- 10: credentials

SECRET = "S3cr3t-pw"
URI = f"http://alice:{SECRET}@127.0.0.1:1"


@pytest.fixture
def no_credentials(monkeypatch):
    monkeypatch.delenv(milvus.TOKEN_ENV, raising=False)
    monkeypatch.setattr(milvus.client, "_CREDENTIALS", {})


class EchoingClient:
    """A pymilvus client that fails, echoing what it was given (as a library may)."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, uri: str, token: str = ""):
        EchoingClient.seen.append((uri, token))
        raise RuntimeError(f"cannot connect to {uri} with token {token!r} (password {SECRET!r}?)")


def test_the_cli_never_prints_the_password_of_a_uri(tmp_path, corpus_copy, monkeypatch, no_credentials):
    """Real pymilvus, nothing listening: one line, the URI's credentials masked."""
    from click.testing import CliRunner

    from ampere_qa.cli import cli

    pytest.importorskip("pymilvus")
    monkeypatch.setattr("ampere_qa.indexing.build.load_embedder", lambda model: FakeEmbedder())
    result = CliRunner().invoke(cli, ["build", "--corpus", str(corpus_copy), "--index",
                                      str(tmp_path / "i"), "--store", "milvus", "--uri", URI])
    assert result.exit_code == 1, result.output
    assert "cannot reach Milvus at http://127.0.0.1:1" in result.stderr
    assert SECRET not in result.output and SECRET not in result.stderr
    assert "alice" not in result.stderr.splitlines()[-1]


def test_every_message_masks_the_uri_credentials_and_the_token(monkeypatch, no_credentials):
    import pymilvus

    monkeypatch.setattr(pymilvus, "MilvusClient", EchoingClient)
    EchoingClient.seen.clear()
    with pytest.raises(StoreUnavailableError) as err:
        milvus.MilvusStore(URI)
    assert SECRET not in str(err.value) and "cannot reach Milvus at http://127.0.0.1:1" in str(err.value)
    # The credentials left the URI for the token argument: pymilvus gets the host alone.
    assert EchoingClient.seen == [("http://127.0.0.1:1", f"alice:{SECRET}")]
    monkeypatch.setenv(milvus.TOKEN_ENV, "root:Another-pw")
    with pytest.raises(StoreUnavailableError) as err:
        milvus.client.connect("http://bob:x@h:2")  # a URI's own credentials win over the token
    assert "Another-pw" not in str(err.value) and "bob:x" not in str(err.value)
    assert "http://***@h:2" in str(err.value)
    for text, shown in [
        (f"at {URI} (oops)", "at http://***@127.0.0.1:1 (oops)"),
        ("https://u:p@w@host/x", "https://***@host/x"),
        ("grpc://host:1?token=abc&db=x", "grpc://host:1?token=***&db=x"),
        ("failed with Another-pw", "failed with ***"),
        ("local /tmp/a@b.db", "local /tmp/a@b.db"),
    ]:
        assert milvus.redact(text) == shown


def test_the_manifest_records_the_uri_without_credentials(monkeypatch, no_credentials, caplog):
    """What build records (normalize_uri, then the backend's manifest entry): never a password;
    a warning says later commands need the token; this process's connections still get it."""
    from ampere_qa.indexing import stores

    config = stores.configure("milvus", {"uri": URI, "collection": "news"}, None).config
    assert config == {"kind": "milvus", "uri": "http://127.0.0.1:1", "collection": "news"}
    assert "not recorded in the index" in caplog.text and SECRET not in caplog.text
    assert {"http://127.0.0.1:1": f"alice:{SECRET}"} == milvus.client._CREDENTIALS
    monkeypatch.setattr(milvus.generations, "reusable", lambda *a: False)
    monkeypatch.setattr(milvus.generations, "write_generation", lambda *a: "news__g0123456789ab")
    written = milvus.MilvusBackend({**config, "uri": URI}).write([], np.zeros((0, 4), np.float32), {}, {})
    assert written.manifest["store"]["uri"] == "http://127.0.0.1:1"
    assert SECRET not in json.dumps(written.manifest)


def test_an_older_manifest_holding_credentials_is_shown_masked(crafted, monkeypatch, no_credentials):
    """An index built before the URI was stripped: loads still connect with its credentials, and
    every message (the rebuild hint included) masks them."""
    import pymilvus

    monkeypatch.setattr(pymilvus, "MilvusClient", EchoingClient)
    EchoingClient.seen.clear()
    crafted.m["store"] = {"kind": "milvus", "uri": URI, "collection": "news",
                          "generation": "news__g0123456789ab"}
    crafted.save()
    with pytest.raises(StoreUnavailableError) as err:
        load_index(crafted.idx)
    assert SECRET not in str(err.value)
    assert EchoingClient.seen == [("http://127.0.0.1:1", f"alice:{SECRET}")]
    hint = rebuild_hint(crafted.idx, Manifest.from_dict(crafted.m))
    assert "--uri http://***@127.0.0.1:1" in hint and SECRET not in hint


def test_tidying_logs_mask_the_uri(monkeypatch, no_credentials, caplog):
    def boom(*args):
        raise RuntimeError(f"lost {URI}")

    monkeypatch.setattr(milvus.generations, "tidy", boom)
    store = {"kind": "milvus", "uri": URI, "collection": "c", "generation": "c__g0123456789ab"}
    with caplog.at_level(logging.WARNING, "ampere_qa"):
        assert milvus.MilvusBackend.after_commit(store, None, "x") == 0
    assert "was not tidied" in caplog.text and SECRET not in caplog.text


def test_a_store_shows_no_credentials(monkeypatch, no_credentials):
    class Quiet:
        def __init__(self, uri: str, token: str = ""):
            self.token = token

    import pymilvus

    monkeypatch.setattr(pymilvus, "MilvusClient", Quiet)
    store = milvus.MilvusStore(URI, "c")
    assert store.uri == "http://127.0.0.1:1" and store.client.token == f"alice:{SECRET}"
    shown = json.dumps([store.describe(), store.config(), store.foreign_error(),
                        str(store._unavailable(RuntimeError(f"at {URI}")))])
    assert SECRET not in shown and "alice" not in shown


# --------------------------------------------------------------------------- 6: document windows

def _window_damage(c: Crafted, damage: str) -> None:
    vectors, docs, keys = (c.array(r) for r in checks.WINDOW_ARRAYS)
    if damage == "NaN":
        vectors[len(vectors) // 2, 1] = np.nan
        c.replace("window_vectors", vectors)
    elif damage == "documents":
        docs[-1] = len(c.m["corpus"]["files"])
        c.replace("window_docs", docs)
    elif damage == "order":
        c.replace("window_docs", docs[::-1].copy())
    elif damage == "keys":
        c.replace("window_keys", keys[:-1].copy())
    elif damage == "count":
        c.replace("window_vectors", vectors[:-1].copy())


@pytest.mark.parametrize("damage,match", [
    ("NaN", "window vectors hold NaN"), ("documents", r"windows of documents \(0, 2\) for 2 files"),
    ("order", "windows out of document order"), ("keys", "window keys shaped"),
    ("count", "window vectors shaped")])
def test_document_windows_that_do_not_fit_are_refused(crafted, damage, match):
    assert len(crafted.m["corpus"]["files"]) == 2
    _window_damage(crafted, damage)
    _refused(crafted.idx, match)


def test_an_index_without_windows_loads_and_ranks_by_passages_alone(crafted):
    for role in checks.WINDOW_ARRAYS:
        crafted.path(role).unlink()
        del crafted.m["files"][role]
    crafted.save()
    r = Retriever.load(crafted.idx, embedder=FakeEmbedder())
    assert r.data.vectors.windows is None and r.ranker.documents is None
    assert "Luca de Meo" in r.search("Qui dirige Ampere ?", 1)[0].text


def test_a_document_with_more_windows_than_a_corpus_file_makes_is_refused(crafted, monkeypatch):
    from ampere_qa.ingest import corpus

    assert load_index(crafted.idx).vectors.windows is not None  # as built: accepted
    monkeypatch.setattr(corpus, "MAX_FILE_BYTES", 100)  # files of 100 bytes make 1 window each
    _refused(crafted.idx, r"a document of \d+ windows, more than a corpus file makes \(1\)")


@pytest.mark.parametrize("role", checks.WINDOW_ARRAYS)
def test_window_files_must_be_data_files_of_the_folder(crafted, role):
    crafted.m["files"][role]["name"] = "/dev/zero"
    crafted.save()
    _refused(crafted.idx, "not a data file of this index folder")
