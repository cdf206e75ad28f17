"""Hostile small inputs that must end in one clear message: a crafted ampere-qa.toml, a page
title that shows nothing or reorders the page, a history item past the limit."""

from __future__ import annotations

import pytest

from ampere_qa.errors import BadInputError, CorpusError
from ampere_qa.ingest.page import MAX_SETTINGS_BYTES, parse_settings

WHERE = "docs/ampere-qa.toml"


@pytest.mark.parametrize("raw, said", [
    (b"x = " + b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
    (b"x = " + b"{a = " * 5_000 + b"1" + b"}" * 5_000, "nested too deeply"),
    (b"x = " + b"9" * 5_000, "a number in it is too long"),
])
def test_a_hostile_settings_file_is_one_clear_error(raw, said):
    assert len(raw) <= MAX_SETTINGS_BYTES
    with pytest.raises(CorpusError, match=said) as err:
        parse_settings(raw, WHERE)
    assert str(err.value).startswith(WHERE) and err.value.exit_code == 2


@pytest.mark.parametrize("title, said", [
    ("\u200b", "nothing visible"),
    ("\u2060 \u200d", "nothing visible"),
    ("\u202eAmpere", "a bidirectional control"),
    ("Ampere \u2066x\u2069", "a bidirectional control"),
])
def test_a_title_that_shows_nothing_or_reorders_the_page_is_refused(title, said):
    with pytest.raises(CorpusError, match=f"title holds {said}"):
        parse_settings(f'title = "{title}"'.encode(), WHERE)


def test_a_visible_title_is_kept():
    assert parse_settings('title = "Guide – été"'.encode(), WHERE) == {"title": "Guide – été"}


def test_a_history_item_past_the_limit_is_named(tmp_path, fake_embedder):
    from ampere_qa import Retriever
    from ampere_qa.indexing.build import build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Ampere emploie 3 850 ingénieurs en France.\n", encoding="utf-8")
    build_index(docs, tmp_path / "index", embedder=fake_embedder)
    retriever = Retriever.load(tmp_path / "index", embedder=fake_embedder)
    with pytest.raises(BadInputError) as err:
        retriever.answer("Et où ?", history=["Combien ?", "x" * 1001])
    assert str(err.value) == "history[1]: it is 1001 characters long; the limit is 1000"


def _small_index(tmp_path, fake_embedder, files: int = 3):
    from ampere_qa import Retriever
    from ampere_qa.indexing.build import build_index

    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for i in range(files):
        (docs / f"{i}.txt").write_text(f"Le site {i} d'Ampere emploie {i} personnes.\n")
    build_index(docs, tmp_path / "index", embedder=fake_embedder)
    return docs, Retriever.load(tmp_path / "index", embedder=fake_embedder)


def test_the_staleness_check_reads_no_file_when_the_corpus_metadata_is_unchanged(
        tmp_path, fake_embedder, monkeypatch):
    import ampere_qa.ingest.corpus as corpus_mod

    docs, retriever = _small_index(tmp_path, fake_embedder)
    reads: list[object] = []
    real = corpus_mod.read_document
    monkeypatch.setattr(corpus_mod, "read_document", lambda *a, **k: reads.append(a) or real(*a, **k))
    assert retriever.is_stale() is False and reads == []  # names, sizes, times: as built
    (docs / "1.txt").write_text("Le site 1 d'Ampere emploie 9 personnes.\n")
    assert retriever.is_stale() is True and reads  # changed: the contents decide


def test_servers_get_the_staleness_at_constant_cost_refreshed_in_the_background(
        tmp_path, fake_embedder):
    import time

    from ampere_qa.indexing.manifest import StaleWatch

    docs, retriever = _small_index(tmp_path, fake_embedder)
    watch = retriever._stale
    assert [retriever.stale_status() for _ in range(200)] == [False] * 200
    assert watch.checks == 1  # the first call looked; the other 199 were answered from it
    (docs / "0.txt").write_text("Autre texte.\n")
    quick = StaleWatch(watch._check, every_s=0.05)
    assert quick() is True
    (docs / "0.txt").write_text("Le site 0 d'Ampere emploie 0 personnes.\n")
    time.sleep(0.1)
    quick()  # due: starts one refresh in the background and answers at once
    deadline = time.monotonic() + 30
    while quick() is not False and time.monotonic() < deadline:
        time.sleep(0.05)
    assert quick() is False
