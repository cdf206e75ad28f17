"""What is byte-for-byte repeatable, with the real model (README, "Scale"): a fresh build of the
same corpus by the same engine gives the same files, and a rebuild that reuses every vector
gives the files it started from."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import CORPUS


def _data_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".npy", ".faiss", ".jsonl", ".json")
                  and p.name != "manifest.json")


@pytest.mark.integration
def test_the_same_corpus_gives_the_same_files_and_a_rebuild_keeps_them(tmp_path, real_embedder):
    from ampere_qa.indexing.build import build_index

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    first, second = tmp_path / "a", tmp_path / "b"
    build_index(corpus, first, embedder=real_embedder)
    build_index(corpus, second, embedder=real_embedder, reuse=False)
    assert _data_files(first) == _data_files(second)  # names are content hashes
    before = _data_files(first)
    report = build_index(corpus, first, embedder=real_embedder)
    assert report.embedded == 0 and _data_files(first) == before
    assert os.listdir(first)  # the folder was really written
