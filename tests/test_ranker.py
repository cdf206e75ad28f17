"""The hybrid ranker: a passage's dense score, by its closest sentence or, for a passage of
several lines, by the better of that and its whole vector."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ampere_qa import Retriever, build_index
from ampere_qa.qa.question import clean_question

from .conftest import FakeEmbedder

FAQ = {
    "comptes.txt": "Pour supprimer votre compte, ouvrez les paramètres.\nChoisissez Gérer mon compte.\n"
                   "Sans réponse sous deux mois, écrivez-nous.\n",
    "cookies.txt": "Un cookie est un petit fichier déposé par un site.\nIl garde vos préférences.\n",
    "article.txt": "La voiture électrique progresse en Europe. " * 8 + "\n\n"
                   + "Les usines du nord produisent les batteries. " * 8 + "\n",
}


@pytest.fixture(scope="module")
def faq(tmp_path_factory) -> Retriever:
    root = tmp_path_factory.mktemp("faq")
    for name, text in FAQ.items():
        (root / "corpus").mkdir(exist_ok=True)
        (root / "corpus" / name).write_text(text, encoding="utf-8")
    embedder = FakeEmbedder()
    build_index(root / "corpus", root / "i", embedder=embedder)
    return Retriever.load(root / "i", embedder=embedder)


def _dense(retriever: Retriever, question: str) -> dict[str, tuple[float, float]]:
    """Each passage's closest-sentence and whole-vector similarity to the question."""
    data, qv = retriever.data, retriever.embedder.embed_queries([clean_question(question)])[0]
    out = {}
    for i, p in enumerate(data.passages):
        a = int(data.sentence_start[i])
        sents = data.store.get(np.arange(a, a + len(p.sentences))) @ qv
        out[p.id] = (float(sents.max()), float(data.vectors.passage_vectors[i] @ qv))
    return out


def test_lines_of_a_faq_answer_are_one_passage_and_paragraphs_of_prose_stay_apart(faq):
    by_file = {}
    for p in faq.data.passages:
        by_file.setdefault(p.source.rsplit("/", 1)[-1], []).append(p)
    assert [len(v) for v in (by_file["comptes.txt"], by_file["cookies.txt"])] == [1, 1]
    assert len(by_file["comptes.txt"][0].sentences) == 3
    # Two paragraphs that together pass pack_chars: each its own passage.
    assert len(by_file["article.txt"]) == 2 and faq.data.manifest.split["pack_chars"] < 700


@pytest.mark.parametrize("scan_max", [100_000, 0])  # every passage scanned, or only those found
@pytest.mark.parametrize("question", ["Comment supprimer mon compte ?", "Qu'est-ce qu'un cookie ?",
                                      "Où sont produites les batteries ?"])
def test_a_passage_of_several_lines_scores_the_better_of_sentence_and_whole(faq, question, scan_max,
                                                                            monkeypatch):
    from ampere_qa.retrieve import ranker

    monkeypatch.setattr(ranker, "WHOLE_SCAN_MAX", scan_max)
    dense = _dense(faq, question)
    plain = Retriever(faq.data, faq.embedder,
                      settings=dataclasses.replace(faq.settings, whole_passages=False))
    for retriever, whole_too in ((faq, True), (plain, False)):
        hits = retriever.search(question, k=10)
        assert len(hits) == len(faq.data.passages)
        for hit in hits:
            sentence, whole = dense[hit.passage_id]
            base = max(sentence, whole) if whole_too and "\n" in hit.text else sentence
            # what is left is the word-match bonus, at most lexical_weight
            assert -1e-6 <= hit.score - base <= faq.settings.lexical_weight + 1e-6, hit.text


def test_the_whole_vector_lifts_a_faq_answer_no_single_line_of_which_is_close(faq):
    question = "supprimer compte, paramètres, gérer, sans réponse sous deux mois"
    dense = _dense(faq, question)
    (top,) = faq.search(question, k=1)
    assert "comptes" in top.source and "\n" in top.text
    sentence, whole = dense[top.passage_id]
    assert whole > sentence  # the passage as a whole is closer than any of its lines
    assert top.score >= whole
