"""Hostile small inputs that must end in one clear message: a crafted ampere-qa.toml, a page
title that shows nothing or reorders the page, a history item past the limit."""

from __future__ import annotations

import pytest

from ampere_qa.errors import BadInputError, CorpusError
from ampere_qa.page import MAX_SETTINGS_BYTES, parse_settings

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
    from ampere_qa.build import build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Ampere emploie 3 850 ingénieurs en France.\n", encoding="utf-8")
    build_index(docs, tmp_path / "index", embedder=fake_embedder)
    retriever = Retriever.load(tmp_path / "index", embedder=fake_embedder)
    with pytest.raises(BadInputError) as err:
        retriever.answer("Et où ?", history=["Combien ?", "x" * 1001])
    assert str(err.value) == "history[1]: it is 1001 characters long; the limit is 1000"
