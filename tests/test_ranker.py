"""The hybrid ranker: a passage's dense score, by its closest sentence or, for a passage of
several lines, by the better of that and its whole vector; then its document's evidence."""

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
    alone = dataclasses.replace(faq.settings, document_weight=0.0)  # the passage's own score
    whole = Retriever(faq.data, faq.embedder, settings=alone)
    plain = Retriever(faq.data, faq.embedder, settings=dataclasses.replace(alone, whole_passages=False))
    for retriever, whole_too in ((whole, True), (plain, False)):
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


def _evidence(retriever: Retriever, question: str) -> dict[str, float]:
    """Each file's closest window to the question."""
    data, qv = retriever.data, retriever.embedder.embed_queries([clean_question(question)])[0]
    windows = data.vectors.windows
    assert windows is not None
    sims = windows.vectors @ qv
    out: dict[str, float] = {}
    for j, f in enumerate(data.manifest.corpus.files):
        out[f["source"]] = float(sims[windows.docs == j].max())
    return out


@pytest.mark.parametrize("question", ["Comment supprimer mon compte ?", "Où sont produites les batteries ?"])
def test_each_passage_gets_its_documents_evidence_less_the_best(faq, question):
    evidence = _evidence(faq, question)
    top = max(evidence.values())
    alone = Retriever(faq.data, faq.embedder, settings=dataclasses.replace(faq.settings, document_weight=0.0))
    before = {h.passage_id: h.score for h in alone.search(question, k=10)}
    hits = faq.search(question, k=10)
    assert {h.passage_id for h in hits} == set(before)
    for hit in hits:
        want = before[hit.passage_id] + faq.settings.document_weight * (evidence[hit.source] - top)
        assert hit.score == pytest.approx(want, abs=1e-6)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


LONG = "Les batteries des voitures sont produites dans les usines du nord de la France. " * 9


def _shared(tmp_path, weight: float) -> Retriever:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    shared = "Pour en savoir plus, consultez la page des questions fréquentes."
    (corpus / "a.txt").write_text(f"{shared}\n\n" + "Un cookie garde vos préférences de navigation. " * 14,
                                  encoding="utf-8")
    (corpus / "b.txt").write_text(f"{shared}\n\n{LONG}", encoding="utf-8")
    if not (tmp_path / "i").exists():
        build_index(corpus, tmp_path / "i", embedder=FakeEmbedder())
    r = Retriever.load(tmp_path / "i", embedder=FakeEmbedder())
    return Retriever(r.data, r.embedder, settings=dataclasses.replace(r.settings, document_weight=weight))


def test_a_line_of_several_documents_is_cited_from_the_one_whose_windows_are_closest(tmp_path):
    question = "Pour en savoir plus sur les batteries produites dans les usines du nord ?"
    for weight, source in ((0.0, "a.txt"), (0.5, "b.txt")):
        r = _shared(tmp_path, weight)
        (hit,) = [h for h in r.search(question, k=10) if h.text.startswith("Pour en savoir plus")]
        assert hit.source.endswith(source), (weight, hit.source)
        (passage,) = [p for p in r.data.passages if p.id == hit.passage_id]
        assert [loc.source.rsplit("/", 1)[-1] for loc in passage.locations] == ["a.txt", "b.txt"]


def test_one_document_alone_is_never_moved(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.txt").write_text(FAQ["article.txt"] + "\n" + FAQ["comptes.txt"], encoding="utf-8")
    build_index(corpus, tmp_path / "i", embedder=FakeEmbedder())
    r = Retriever.load(tmp_path / "i", embedder=FakeEmbedder())
    assert r.data.vectors.windows is not None and r.ranker.documents is None
    alone = Retriever(r.data, r.embedder, settings=dataclasses.replace(r.settings, document_weight=0.0))
    for question in ("Où sont produites les batteries ?", "Comment supprimer mon compte ?"):
        assert r.search(question, k=5) == alone.search(question, k=5)


def test_an_index_built_without_windows_ranks_by_passages_alone(tmp_path):
    from ampere_qa.ingest.passages import SplitSettings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in FAQ.items():
        (corpus / name).write_text(text, encoding="utf-8")
    build_index(corpus, tmp_path / "i", embedder=FakeEmbedder(), settings=SplitSettings(window_chars=0))
    r = Retriever.load(tmp_path / "i", embedder=FakeEmbedder())
    assert r.data.vectors.windows is None and r.ranker.documents is None
    assert not any(role.startswith("window") for role in r.data.manifest.files)
    assert "comptes" in r.search("Comment supprimer mon compte ?", 1)[0].source
