"""SQuAD-format sets: reading them, writing their corpus, the chunk baselines and the scores."""

from __future__ import annotations

import json

import pytest

from ampere_qa.errors import BadInputError
from ampere_qa.eval.squad import (
    ChunkBm25,
    ChunkDense,
    DocTally,
    load_squad,
    word_recall,
    write_corpus,
)

CONTEXTS = [
    "Le cookie est un petit fichier déposé sur votre ordinateur lors de la visite d'un site.",
    "Pour supprimer votre compte, utilisez le formulaire de suppression des paramètres du compte.",
    "La vidéoprotection filme la voie publique ; elle est autorisée par le préfet.",
]


def _entry(title, context, *qas):
    return {"title": title, "paragraphs": [{"context": context, "qas": list(qas)}]}


def _squad(tmp_path, contexts=CONTEXTS, extra=()):
    data = [_entry(f"t{i}", c, {"id": f"q{i}", "question": f"Question {i} ?",
                                "answers": [{"text": c.split()[1], "answer_start": 3}]})
            for i, c in enumerate(contexts)]
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"version": "v1.0", "data": [*data, *extra]}), encoding="utf-8")
    return path


def test_contexts_become_numbered_files_and_questions_point_at_them(tmp_path):
    extra = [_entry("dup", CONTEXTS[0], {"id": "again", "question": "Encore ?", "answers": []}),
             _entry("junk", ".", {"id": "j", "question": "X ?", "answers": []}),
             _entry("v2", CONTEXTS[2], {"id": "imp", "question": "Y ?", "answers": [],
                                        "is_impossible": True})]
    squad = load_squad(_squad(tmp_path, extra=extra))
    assert list(squad.files) == ["0001.txt", "0002.txt", "0003.txt"]  # the same context once
    assert [(q.id, q.file) for q in squad.questions] == [
        ("q0", "0001.txt"), ("q1", "0002.txt"), ("q2", "0003.txt"), ("again", "0001.txt")]
    corpus = tmp_path / "corpus"
    write_corpus(squad, corpus)
    assert (corpus / "0002.txt").read_text(encoding="utf-8").strip() == CONTEXTS[1]
    with pytest.raises(BadInputError, match="not an empty folder"):
        write_corpus(squad, corpus)  # nothing is ever written over
    assert sorted(p.name for p in corpus.iterdir()) == ["0001.txt", "0002.txt", "0003.txt"]


@pytest.mark.parametrize("content", [b"", b"{}", b'{"data": 3}', b"\xff\xfe", b'{"data": []}',
                                     b"[" * 100_000 + b"]" * 100_000])
def test_files_that_are_not_squad_sets_are_refused_clearly(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match=r"not a SQuAD-format file|no answerable question"):
        load_squad(path)


def test_baselines_rank_the_file_that_holds_the_words(tmp_path, fake_embedder):
    files = {f"{i:04d}.txt": c for i, c in enumerate(CONTEXTS, start=1)}
    for system in (ChunkDense(files, fake_embedder), ChunkBm25(files, "french")):
        assert system.rank("Comment supprimer mon compte ?")[0] == "0002.txt"
        assert system.rank("vidéoprotection de la voie publique")[0] == "0003.txt"


def test_tallies_and_recall():
    t = DocTally()
    assert t.add(["a", "b"], "a") == 1 and t.add(["b", "c", "d", "e", "f", "a"], "a") == 6
    assert t.add([], "a") is None
    m = t.metrics()
    assert (m["hit@1"], m["hit@5"], m["mrr"]) == (round(1 / 3, 3), round(1 / 3, 3), round((1 + 1 / 6) / 3, 3))
    assert word_recall(["petit fichier déposé"], "Un PETIT fichier.") == pytest.approx(2 / 3)
    assert word_recall([], "x") == 0.0


def test_eval_squad_from_the_command_line(tmp_path, monkeypatch, fake_embedder):
    from click.testing import CliRunner

    from ampere_qa.cli import cli
    monkeypatch.setattr("ampere_qa.search.load_embedder", lambda *a, **k: fake_embedder)
    monkeypatch.setattr("ampere_qa.indexing.build.load_embedder", lambda *a, **k: fake_embedder)
    path = _squad(tmp_path)
    result = CliRunner().invoke(cli, ["eval", "--squad", str(path), "--build-corpus",
                                      str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert set(report["systems"]) == {"ampere-qa", "chunk-dense", "chunk-bm25"}
    assert report["systems"]["ampere-qa"]["all"]["questions"] == 3
    assert set(report["systems"]["ampere-qa"]["all"]) >= {"hit@1", "hit@5", "mrr", "answered"}
    assert (tmp_path / "c-index" / "manifest.json").exists()
    text = CliRunner().invoke(cli, ["eval", "--squad", str(path), "--index", str(tmp_path / "c-index")])
    assert text.exit_code == 0, text.output
    lines = [line.split("\r")[-1].lstrip() for line in text.output.splitlines()]  # past the bar
    head = next((i for i, line in enumerate(lines) if line.startswith("system")), None)
    assert head is not None, repr(text.output)
    rows = {line.split()[0]: line.split()[1:] for line in lines[head + 1:head + 4]}
    assert set(rows) == {"ampere-qa", "chunk-dense", "chunk-bm25"} and rows["ampere-qa"][0] == "3"
