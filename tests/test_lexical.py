"""The word matcher (indexing/lexical.py) with the real bm25s and PyStemmer, no model: what the
analyzer keeps of a text, how English words reach a French corpus through the lexicon, the BM25
scores, and the saved form (its round trip and what a load refuses)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import Stemmer

from ampere_qa.errors import BadInputError
from ampere_qa.indexing import lexical
from ampere_qa.indexing.lexical import MAX_BRIDGES, SAVED_ARRAYS, LexicalIndex, saved_problem
from ampere_qa.packs.lang import strip_accents

PASSAGES = [
    "Les salariés de l'usine de Cléon fabriquent des moteurs électriques.",
    "Le directeur général dirige la société Ampere depuis 2023.",
    "L'usine de Douai produit des batteries.",
    "Les collaborateurs, le personnel, les effectifs, l'emploi et les travailleurs.",
    "et de la les",  # no content word at all
]


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex(PASSAGES)


# analyze ------------------------------------------------------------------------------------


def test_analyze_folds_accents_after_stemming(index):
    french = Stemmer.Stemmer("french").stemWords
    # The stemmer sees "salariés" with its accent: folding first would give another stem.
    assert french([strip_accents("salariés")]) == ["salar"]
    assert index.analyze("salariés") == ["salari"]
    # The stem keeps the accent the stemmer saw; the stored form has it folded.
    assert french(["électriques"]) == ["électr"]
    assert index.analyze("électriques") == ["electr"]
    # A question typed without the accent still meets the corpus's stem.
    assert index.analyze("Cleon") == index.analyze("Cléon") == ["cleon"]
    assert all(s == strip_accents(s) for s in index.vocabulary)


def test_analyze_lowers_and_drops_the_stop_words_of_every_language(index):
    # French ("les", "de", "la", "des") and English ("the", "and", "of") stop words both go, so
    # do the question words ("how", "many", "combien"); one-letter tokens never count as words.
    assert index.analyze("Les salariés de la société") == ["salari", "societ"]
    assert index.analyze("The engines and the batteries of l'usine") == ["engin", "batter", "usin"]
    assert index.analyze("How many ? Combien ?") == []
    assert index.analyze("A B c") == []
    # Accented stop words are matched folded: "était" and "etait" both go.
    assert index.analyze("était etait") == []


def test_stop_words_follow_the_configured_languages():
    french_only = LexicalIndex(["x"], languages=("fr",))
    assert french_only.analyze("the les") == ["the"]
    english_only = LexicalIndex(["x"], languages=("en",))
    assert english_only.analyze("the les") == ["les"]  # no longer a stop word


def test_english_first_language_uses_the_english_stemmer():
    english = LexicalIndex(["The employees are running electric motors."], languages=("en",))
    assert english.languages == ("en",)
    assert english.analyze("running motors") == ["run", "motor"]
    assert english.vocabulary == ["electr", "employe", "motor", "run"]
    # The default (French first) leaves English inflections alone.
    assert LexicalIndex(["x"]).analyze("running motors") == ["running", "motor"]


def test_vocabulary_is_sorted_and_counts_passages(index):
    assert index.vocabulary == sorted(index.vocabulary)
    assert index.size == len(PASSAGES)
    assert index.frequency["usin"] == 2  # Cléon and Douai
    assert index.frequency["cleon"] == 1
    assert "moteur" in index.frequency and "engine" not in index.frequency
    assert len(index.frequency) == len(index.vocabulary) == len(set(index.frequency))
    assert index.knows(("directeur", "general")) and not index.knows(("directeur", "chief"))


# terms and query_tokens -----------------------------------------------------------------------


def test_terms_bridge_an_english_word_to_french(index):
    (term,) = index.terms("How many employees?")
    assert term.word == "employees"
    assert term.stem == "employe"  # its own stem, unknown to this French corpus
    assert ("salari",) in term.options and ("collabor",) in term.options
    # Translations are reduced like the corpus and each appears once ("salarié", "salariés").
    assert len(set(term.options)) == len(term.options)
    assert index.query_tokens("How many employees work in Cleon?")[-1] == "cleon"


def test_terms_of_a_multi_word_phrase(index):
    terms = index.terms("Who is the chief executive officer of Ampere?")
    assert [t.word for t in terms] == ["chief executive officer", "Ampere"]
    ceo = terms[0]
    assert ceo.stem == "chief"
    assert ("directeur", "general") in ceo.options and ("pdg",) in ceo.options
    tokens = index.query_tokens("Who is the chief executive officer of Ampere?")
    assert tokens == ["directeur", "general", "amper"]


def test_a_word_the_corpus_knows_is_not_bridged(index):
    # "batteries" is in the lexicon, but its own stem is already a corpus word.
    (term,) = index.terms("batteries")
    assert term.options[0] == ("batter",)
    assert index.query_tokens("batteries") == ["batter"]
    assert index.query_tokens("Douai") == index.analyze("Douai") == ["dou"]


def test_a_lexicon_entry_made_of_stop_words_is_dropped(index):
    # French "comment" is a stop word, and English "comment" -> "commentaire" must not fire.
    assert [t.word for t in index.terms("Comment fonctionne l'usine ?")] == ["fonctionne", "usine"]
    assert all("comment" not in t.word.lower() for t in index.terms("Who will run it?"))


def test_query_tokens_cap_the_bridges_of_one_word(index):
    (term,) = index.terms("employees")
    known = [o for o in term.options if index.knows(o)]
    assert len(known) > MAX_BRIDGES  # the corpus knows more translations than the cap
    tokens = index.query_tokens("employees")
    assert tokens == [s for option in known[:MAX_BRIDGES] for s in option]
    assert len(tokens) == MAX_BRIDGES


def test_query_tokens_follow_the_cap(index, monkeypatch):
    monkeypatch.setattr(lexical, "MAX_BRIDGES", 2)
    assert len(index.query_tokens("employees")) == 2


def test_query_tokens_skip_words_nothing_matches(index):
    assert index.query_tokens("zeppelin quantum") == []
    assert index.query_tokens("") == []


# scores --------------------------------------------------------------------------------------


def test_scores_rank_the_passage_holding_the_words(index):
    scores = index.scores("Combien de salariés à Cléon ?")
    assert scores.dtype == np.float32 and scores.shape == (len(PASSAGES),)
    assert int(np.argmax(scores)) == 0
    assert scores[0] > 0 and (scores[1:] == 0).all()
    # An English question reaches the French passage through the lexicon.
    assert int(np.argmax(index.scores("Who is the chief executive officer?"))) == 1
    # A rarer word weighs more: "Douai" (one passage) over "usine" (two).
    both = index.scores("usine Douai")
    assert both[2] > both[0] > 0


def test_scores_without_a_known_word_are_zero(index):
    scores = index.scores("the of and")
    assert scores.dtype == np.float32 and scores.shape == (len(PASSAGES),)
    assert not scores.any()
    assert not index.scores("zeppelin").any()


def test_a_passage_without_content_words_never_scores(index):
    for question in ("salariés", "usine", "et de la les", "Ampere"):
        assert index.scores(question)[4] == 0


# saved / from_saved ---------------------------------------------------------------------------


QUESTIONS = ["Combien de salariés à Cléon ?", "Who runs the company?", "usine Douai",
             "How many employees?", "batteries", "rien du tout"]


def test_saved_round_trip_gives_equal_scores(index, tmp_path):
    arrays, vocabulary = index.saved()
    assert set(arrays) == set(SAVED_ARRAYS) and vocabulary == index.vocabulary
    for role, array in arrays.items():
        np.save(tmp_path / f"{role}.npy", array)
    (tmp_path / "vocabulary.json").write_bytes(index.vocabulary_json())
    loaded = {role: np.load(tmp_path / f"{role}.npy", mmap_mode="r") for role in SAVED_ARRAYS}
    words = json.loads((tmp_path / "vocabulary.json").read_text("utf-8"))
    reopened = LexicalIndex.from_saved(loaded, words, index.size)
    assert reopened.vocabulary == index.vocabulary and reopened.size == index.size
    assert dict(reopened.frequency) == dict(index.frequency)
    for q in QUESTIONS:
        assert reopened.query_tokens(q) == index.query_tokens(q)
        np.testing.assert_array_equal(reopened.scores(q), index.scores(q))
    assert reopened.scores("salariés").any()


def test_from_saved_keeps_the_languages(index):
    english = LexicalIndex(["The employees are running."], languages=("en",))
    arrays, vocabulary = english.saved()
    reopened = LexicalIndex.from_saved(arrays, vocabulary, english.size, languages=("en",))
    assert reopened.languages == ("en",) and reopened.analyze("running") == ["run"]
    np.testing.assert_array_equal(reopened.scores("runs"), english.scores("runs"))


def test_same_passages_give_the_same_saved_bytes(index):
    again = LexicalIndex(list(PASSAGES))
    first, second = index.saved(), again.saved()
    assert first[1] == second[1]
    for role in SAVED_ARRAYS:
        assert first[0][role].tobytes() == second[0][role].tobytes()
    assert again.vocabulary_json() == index.vocabulary_json()
    assert json.loads(index.vocabulary_json()) == sorted(index.vocabulary)


def test_saving_refuses_a_vocabulary_over_the_caps(index, monkeypatch):
    monkeypatch.setattr(lexical, "MAX_VOCABULARY", len(index.vocabulary) - 1)
    with pytest.raises(BadInputError, match="MAX_VOCABULARY"):
        index.saved()
    monkeypatch.setattr(lexical, "MAX_VOCABULARY", len(index.vocabulary))
    index.saved()
    monkeypatch.setattr(lexical, "MAX_VOCABULARY_BYTES", len(index.vocabulary_json()) - 1)
    with pytest.raises(BadInputError, match="MAX_VOCABULARY_BYTES"):
        index.vocabulary_json()


def _copies(index: LexicalIndex) -> dict[str, np.ndarray]:
    arrays, _ = index.saved()
    return {role: np.array(a) for role, a in arrays.items()}


def test_saved_problem_accepts_what_saved_wrote(index):
    assert saved_problem(_copies(index), len(index.vocabulary), index.size) is None


def _short_indptr(a):
    a["lexical_indptr"] = a["lexical_indptr"][:-1]


def _two_dimensional_indptr(a):
    a["lexical_indptr"] = a["lexical_indptr"].reshape(1, -1)


def _short_data(a):
    a["lexical_data"] = a["lexical_data"][:-1]


def _two_dimensional_indices(a):
    a["lexical_indices"] = a["lexical_indices"].reshape(1, -1)


def _indptr_not_from_zero(a):
    a["lexical_indptr"][0] = 1


def _indptr_short_of_the_end(a):
    a["lexical_indptr"][-1] -= 1


def _indptr_going_back(a):
    p = a["lexical_indptr"]
    assert p[2] < p[-1]
    p[1] = p[-1]  # the first column runs to the end, the second starts before it


def _passage_number_too_big(a):
    a["lexical_indices"][-1] = len(PASSAGES)


def _negative_passage_number(a):
    a["lexical_indices"][0] = -1


def _nan_score(a):
    a["lexical_data"][0] = np.nan


def _infinite_score(a):
    a["lexical_data"][-1] = np.inf


@pytest.mark.parametrize("damage, message", [
    (_short_indptr, "stems for"),
    (_two_dimensional_indptr, "stems for"),
    (_short_data, "BM25 scores for"),
    (_two_dimensional_indices, "BM25 scores for"),
    (_indptr_not_from_zero, "column pointers run from 1"),
    (_indptr_short_of_the_end, "column pointers run from 0"),
    (_indptr_going_back, "go back at column 2"),
    (_passage_number_too_big, "outside 0..4"),
    (_negative_passage_number, "outside 0..4"),
    (_nan_score, "NaN or infinite"),
    (_infinite_score, "NaN or infinite"),
])
def test_saved_problem_refuses_each_kind_of_damage(index, damage, message):
    arrays = _copies(index)
    damage(arrays)
    problem = saved_problem(arrays, len(index.vocabulary), index.size)
    assert problem is not None and message in problem
    with pytest.raises(ValueError, match=message):
        LexicalIndex.from_saved(arrays, list(index.vocabulary), index.size)


def test_saved_problem_checks_the_counts_it_is_given(index):
    arrays = _copies(index)
    assert "stems for" in (saved_problem(arrays, len(index.vocabulary) + 1, index.size) or "")
    # Fewer passages than the matrix names: its passage numbers run past the end.
    assert "outside" in (saved_problem(arrays, len(index.vocabulary), index.size - 1) or "")
