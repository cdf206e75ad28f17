"""Reading corpus folders: what is read, what is skipped, what stops the build."""

from __future__ import annotations

import pytest

from ampere_qa.errors import CorpusError
from ampere_qa.ingest.corpus import read_corpus


def test_reads_txt_and_md_in_order_and_skips_empty(tmp_path):
    (tmp_path / "b.md").write_text("Deuxième.", encoding="utf-8")
    (tmp_path / "a.txt").write_text("\ufeffPremier.", encoding="utf-8")  # BOM removed
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "notes.json").write_text("{}", encoding="utf-8")  # not readable: reported
    corpus = read_corpus(tmp_path)
    assert [d.text for d in corpus.documents] == ["Premier.", "Deuxième."]
    assert [(s.source, s.reason) for s in corpus.skipped] == [
        (f"{tmp_path.name}/empty.txt", "empty file"),
        (f"{tmp_path.name}/notes.json", "cannot read .json files: convert it to .txt, .md or .html"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"PK\x03\x04\x00\x00binary", "looks binary"), ("Électrique".encode("latin-1"), "not UTF-8")],
)
def test_binary_or_other_encoding_is_an_error_naming_the_file(tmp_path, content, message):
    (tmp_path / "ok.txt").write_text("Bonjour.", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(content)
    with pytest.raises(CorpusError, match=message) as err:
        read_corpus(tmp_path)
    assert "bad.txt" in str(err.value)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        read_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match=r"no \.txt, \.md or \.html files"):
        read_corpus(tmp_path)
    (tmp_path / "e.txt").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty"):
        read_corpus(tmp_path)


def test_fingerprint_ignores_how_the_folder_is_spelled_but_not_content(tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("Un.", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    first = read_corpus("c").fingerprint
    assert read_corpus("./c").fingerprint == first == read_corpus(tmp_path / "c").fingerprint
    (tmp_path / "c" / "a.txt").write_text("Deux.", encoding="utf-8")
    assert read_corpus("c").fingerprint != first
