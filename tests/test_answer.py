"""Answer composition and the retriever's logic, with the fake embedder."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from ampere_qa import Retriever, build_index
from ampere_qa.errors import BadInputError
from ampere_qa.qa.compose import compose, not_found, wording
from ampere_qa.qa.question import MAX_QUESTION_CHARS, clean_question
from ampere_qa.types import Hit

from .conftest import CORPUS, FakeEmbedder

KEYS = {"question", "language", "answered", "answer", "citations", "short_answer", "understood"}
CITATION_KEYS = {"rank", "passage_id", "source", "start", "end", "text", "score", "context"}


@pytest.fixture(scope="module")
def fake_retriever(tmp_path_factory):
    """One build for the module: the tests only ask it questions."""
    tmp = tmp_path_factory.mktemp("answer")
    corpus, embedder = shutil.copytree(CORPUS, tmp / "corpus"), FakeEmbedder()
    build_index(corpus, tmp / "i", embedder=embedder)
    # Hashed trigrams know nothing of topics: the off-topic cut-off is real-model business.
    return _with_cutoff(Retriever.load(tmp / "i", embedder=embedder), -1.0)


def _with_cutoff(retriever: Retriever, cutoff: float) -> Retriever:
    """The same index and model, answering "not found" below relevance ``cutoff``."""
    settings = dataclasses.replace(retriever.settings, min_relevance=cutoff)
    return Retriever(retriever.data, retriever.embedder, settings=settings)


# The shipped corpus's noun (corpus/ampere-qa.toml [answer]).
FR, EN = wording("fr", "l'article"), wording("en", "the article")


def _hit(rank: int, pid: str, text: str, score: float) -> Hit:
    return Hit(rank, pid, "a.txt", 10 * rank, 10 * rank + len(text), text, score)


def test_compose_numbers_each_excerpt_once_in_order_of_use():
    a = _hit(1, "p1", "Phrase un. Phrase deux.", 0.9)
    b = _hit(2, "p2", "Autre phrase.", 0.8)
    ans = compose("q ?", "fr", FR, [(a, (0, 10)), (b, (0, 13)), (a, (11, 23))])
    assert ans.answer == ("D'après l'article : « Phrase un. » [1] « Autre phrase. » [2] "
                          "« Phrase deux. » [1]")
    assert [c.rank for c in ans.citations] == [1, 2]
    assert [c.passage_id for c in ans.citations] == ["p1", "p2"]
    assert ans.citations[0].highlights == ((0, 10), (11, 23))
    d = ans.to_dict()
    assert set(d) == KEYS and all(set(c) == CITATION_KEYS for c in d["citations"])


def test_not_found_is_phrased_in_the_reply_language_with_its_reason():
    fr = not_found("Quel est le prix ?", "fr", FR).to_dict()
    en = not_found("Wie teuer?", "de", EN).to_dict()
    assert fr["answered"] is False and "pas trouvé" in fr["answer"] and fr["citations"] == []
    assert en["language"] == "de" and "found no answer" in en["answer"]
    assert fr["reason"] == en["reason"] == "off_topic" and fr["short_answer"] is None
    tesla = not_found("q", "fr", FR, "not_mentioned", what="Tesla").to_dict()
    assert tesla["answer"] == "L'article ne mentionne pas Tesla." and tesla["reason"] == "not_mentioned"
    price = not_found("q", "en", EN, "not_given", subject="R5", concept_label="no price")
    assert price.answer == "The article gives no price for R5." and price.reason == "not_given"
    assert set(price.to_dict()) == KEYS | {"reason"}
    assert "reason" not in compose("q", "en", EN, [(_hit(1, "p", "A b.", 0.9), (0, 4))]).to_dict()


def test_the_short_answer_comes_first_and_locates_itself_in_the_source():
    hit = _hit(1, "p1", "Luca de Meo dirige. Autre.", 0.9)
    ans = compose("Qui ?", "fr", FR, [(hit, (0, 19))], shorts=[(hit, (0, 11))])
    assert ans.answer.startswith("Luca de Meo — D'après l'article : « Luca de Meo dirige. » [1]")
    d = ans.to_dict()["short_answer"]
    assert d == {"text": "Luca de Meo", "rank": 1, "start": hit.start, "end": hit.start + 11}


def test_see_also_cites_more_excerpts_without_quoting_them():
    a, b = _hit(1, "p1", "Un. Deux.", 0.9), _hit(2, "p2", "Trois.", 0.89)
    ans = compose("q ?", "en", EN, [(a, (0, 3))], see_also=[a, b])
    assert ans.answer.endswith("“Un.” [1] See also [2].")
    assert [c.passage_id for c in ans.citations] == ["p1", "p2"] and ans.citations[1].highlights == ()


def test_answer_quotes_a_sentence_not_the_whole_passage(fake_retriever):
    ans = fake_retriever.answer("Ampere : Luca de Meo directeur général")
    assert ans.answered and ans.language == "fr"
    assert "Luca de Meo, directeur général du groupe" in ans.answer
    cited = ans.citations[0]
    assert len(ans.answer) < len(cited.text) + 40
    assert "Cléon" not in ans.answer  # another sentence of the same passage
    # The citation locates the excerpt in its file.
    article = Path(cited.source).read_text(encoding="utf-8")
    assert article[cited.start:cited.end] == cited.text


def test_no_excerpt_is_cited_twice(fake_retriever):
    for q in ["Qualcomm Nissan Mitsubishi investir", "logo losange", "11 000 salariés", "Cléon"]:
        ids = [c.passage_id for c in fake_retriever.answer(q, k=5).citations]
        assert len(ids) == len(set(ids)) >= 1


def test_below_the_cut_off_is_not_found(fake_retriever):
    relevance = fake_retriever.relevance("Qualcomm")
    above = _with_cutoff(fake_retriever, relevance + 1e-3)
    assert above.cutoff == relevance + 1e-3
    ans = above.answer("Qualcomm")
    assert not ans.answered and ans.citations == () and ans.reason == "off_topic"
    assert _with_cutoff(fake_retriever, relevance - 1e-3).answer("Qualcomm").answered


def test_relevance_is_best_passage_minus_best_background(fake_retriever):
    import numpy as np

    q = "Qualcomm semi-conducteurs"
    qv = fake_retriever.embedder.embed_queries([q])[0]
    background = float((fake_retriever.data.vectors.background @ qv).max())
    store = fake_retriever.data.store
    best_sentence = float((store.get(np.arange(store.count())) @ qv).max())
    assert fake_retriever.relevance(q) == pytest.approx(best_sentence - background)
    assert fake_retriever.answer(q).relevance == pytest.approx(fake_retriever.relevance(q))
    assert "relevance" not in fake_retriever.answer(q).to_dict()
    # The top hit's score is that sentence's similarity plus the full word-match bonus.
    top = fake_retriever.search(q, 1)[0]
    assert top.score == pytest.approx(best_sentence + fake_retriever.settings.lexical_weight)
    assert np.isfinite(top.score)


def test_search_ranks_and_bounds_k(fake_retriever):
    hits = fake_retriever.search("Qualcomm semi-conducteurs", k=50)
    assert len(hits) == 5 and [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert "Qualcomm" in hits[0].text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert set(hits[0].to_dict()) == CITATION_KEYS
    assert hits[0].context == ""  # the shipped article has no headings


@pytest.mark.parametrize("bad", ["", "   \n\t ", "\x00\x01", None, 42])
def test_empty_or_non_text_questions_are_bad_input(fake_retriever, bad):
    with pytest.raises(BadInputError):
        fake_retriever.answer(bad)


def test_over_long_question_is_bad_input_with_the_limit():
    with pytest.raises(BadInputError, match=str(MAX_QUESTION_CHARS)):
        clean_question("a" * (MAX_QUESTION_CHARS + 1))


def test_odd_characters_are_cleaned_not_fatal(fake_retriever):
    assert clean_question("Qui\x00 dirige\ud800 Ampere ?\u202e") == "Qui dirige? Ampere ?\u202e"
    ans = fake_retriever.answer("<img src=x onerror=alert(1)> Qualcomm")
    assert ans.question == "<img src=x onerror=alert(1)> Qualcomm"
