"""Language and domain packs: every shipped pack loads and compiles; a third language (German)
is read, typed and answered with German framing; a corpus's noun and domains change the replies."""

from __future__ import annotations

import pytest

from ampere_qa.errors import CorpusError, PackError
from ampere_qa.indexing.build import build_index
from ampere_qa.indexing.manifest import validate_manifest
from ampere_qa.ingest.page import parse_settings
from ampere_qa.packs import domain, lang
from ampere_qa.qa import understand
from ampere_qa.qa.compose import not_found, wording
from ampere_qa.qa.language import detect
from ampere_qa.qa.rules import rules
from ampere_qa.settings import AnswerSettings

from .conftest import FakeEmbedder


def test_every_shipped_pack_loads_and_compiles():
    assert {"fr", "en", "de"} <= set(lang.available())
    for code in lang.available():
        p = lang.pack(code)
        assert p.code == code and p.stemmer
        r = rules((code,), domain.available())
        assert r.types and r.concepts  # every answer type has words in it, domains compile


def test_unknown_packs_are_refused_with_the_list():
    with pytest.raises(PackError, match=r"no language pack for 'xx'.*de, en, fr"):
        lang.pack("xx")
    with pytest.raises(PackError, match="no domain pack 'cooking'"):
        domain.domain(("general", "cooking"))


@pytest.mark.parametrize(("question", "expected"), [
    ("Wer leitet Ampere?", understand.NAME),
    ("Wie viele Ingenieure arbeiten bei Ampere?", understand.NUMBER),
    ("Wann findet der Capital Market Day statt?", understand.DATE),
    ("Wo liegen die Werke?", understand.PLACE),
    ("Wie lange dauert der Umbau?", understand.DURATION),
])
def test_german_questions_are_detected_and_typed(question, expected):
    assert detect(question).code == detect(question).reply == "de"
    r = rules(("fr", "en", "de"), ("general",))
    assert understand.read(question, r)[0].expected == expected


def test_german_words_do_not_change_how_french_and_english_are_read():
    # "was" is German for "what": read with the German pack, an English yes/no question would
    # lose its yes/no form; French and English questions are not read with it.
    assert detect("Was Ampere created in 2023?").code == "en"
    r = rules(("fr", "en"), ("general",))
    assert understand.read("Was Ampere created in 2023?", r)[0].yes_no


@pytest.mark.parametrize(("code", "noun", "reply"), [
    ("fr", "l'article", "L'article ne mentionne pas Tesla."),
    ("fr", "les documents", "Les documents ne mentionnent pas Tesla."),
    ("fr", "la documentation", "La documentation ne mentionne pas Tesla."),
    ("en", "the article", "The article does not mention Tesla."),
    ("en", "the documents", "The documents do not mention Tesla."),
    ("en", "the press", "The press does not mention Tesla."),
    ("de", "der Artikel", "Der Artikel erwähnt Tesla nicht."),
    ("de", "die Dokumente", "Die Dokumente erwähnen Tesla nicht."),
])
def test_the_corpus_noun_agrees_with_the_replies(code, noun, reply):
    assert not_found("q", code, wording(code, noun), "not_mentioned", what="Tesla").answer == reply


def test_a_pack_default_noun_serves_a_corpus_that_sets_none():
    assert wording("fr").say("lead") == "D'après les documents : "
    assert wording("en").say("lead") == "According to the documents: "


def test_domain_packs_decide_which_kinds_of_fact_are_known():
    general = {c.name for c in rules(("fr", "en"), ("general",)).concepts}
    both = {c.name for c in rules(("fr", "en"), ("general", "automotive")).concepts}
    assert "range" not in general and {"range", "performance"} <= both - general
    # "quelle usine" asks for a name only where the automotive pack names factories.
    assert understand.answer_type("Quelle usine ?", rules(("fr",), ("general",))) is None
    cars = rules(("fr",), ("general", "automotive"))
    assert understand.answer_type("Quelle usine ?", cars) == understand.NAME


def test_answer_settings_round_trip_through_the_manifest_form():
    s = AnswerSettings(languages=("de", "en"), domains=("general",), noun={"de": "das Handbuch"},
                       min_relevance=0.01)
    assert AnswerSettings.from_dict(s.to_dict()) == s
    assert AnswerSettings.from_dict({"min_relevance": 0.0}) == AnswerSettings()  # an older index


@pytest.mark.parametrize(("toml", "says"), [
    ('answer = 3', "answer must be a table"),
    ('[answer]\nstyle = "terse"', "unknown key answer.style"),
    ('[answer]\ndomains = []', "answer.domains must be a list of 1 to 16 strings"),
    ('[answer]\ndomains = [1]', r"answer.domains\[0\] must be a string"),
    ('[answer]\nanchors = ["%s"]' % ("x" * 301), r"answer.anchors\[0\] is 301 characters, at most 300"),
    ('[answer]\nnoun = "le guide"', "answer.noun must be a table"),
    ('[answer]\nnoun = { fr = "le\u202e guide" }', "answer.noun.fr holds a bidirectional control"),
    ('[answer]\nnoun = { fr = "  " }', "answer.noun.fr is empty"),
])
def test_a_bad_answer_table_is_refused_with_the_key(toml, says):
    with pytest.raises(CorpusError, match=says):
        parse_settings(toml.encode(), "ampere-qa.toml")


def test_a_corpus_naming_an_unknown_pack_is_refused_before_any_work(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Ampere emploie 3 850 ingénieurs.", encoding="utf-8")
    (corpus / "ampere-qa.toml").write_text('[answer]\ndomains = ["cooking"]\n', encoding="utf-8")
    embedder = FakeEmbedder()
    with pytest.raises(PackError, match="no domain pack 'cooking'"):
        build_index(corpus, tmp_path / "index", embedder=embedder)
    assert embedder.calls == 0 and not (tmp_path / "index" / "manifest.json").exists()


@pytest.mark.parametrize(("answer", "says"), [
    ({"languages": ["fr", 2]}, "manifest.answer.languages holds something other than strings"),
    ({"noun": {"fr": None}}, "manifest.answer.noun holds something other than strings"),
    ({"tie_margin": "wide"}, "manifest.answer.tie_margin has the wrong type"),
    ({"max_history": -1}, "manifest.answer.max_history is negative"),
])
def test_a_damaged_answer_block_in_a_manifest_is_refused(answer, says):
    manifest = {"format_version": 1, "model": {"name": "m", "fingerprint": "f"},
                "corpus": {"path": "c", "fingerprint": "f", "files": []}, "files": {},
                "passage_count": 0, "sentence_count": 0, "dimension": 8, "answer": answer}
    assert says in (validate_manifest(manifest) or "")


@pytest.mark.integration
def test_a_german_question_is_answered_end_to_end_with_german_framing(retriever):
    result = retriever.answer("Wer ist der Chef von Ampere?")
    assert result.reply_language == "de" and result.answered
    assert result.short_answer is not None and result.short_answer.text == "Luca de Meo"
    assert result.answer.startswith("Luca de Meo — Der Artikel sagt dazu: „")
    price = retriever.answer("Was kostet der R5?")
    assert (price.answered, price.reason, price.answer) == (False, "not_given",
                                                              "Der Artikel nennt keinen Preis für R5.")
