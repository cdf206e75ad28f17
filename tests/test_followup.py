"""Follow-up questions: read against the earlier ones, and a standalone question never changed."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from ampere_qa.errors import BadInputError
from ampere_qa.indexing.index import load_index
from ampere_qa.indexing.lexical import LexicalIndex
from ampere_qa.qa import followup, understand
from ampere_qa.qa.language import detect
from ampere_qa.qa.rules import rules

from .conftest import ROOT

SETS = ("questions.jsonl", "fresh-1.jsonl", "fresh.jsonl")
# The shipped corpus's rules (corpus/ampere-qa.toml [answer]).
R = rules(("fr", "en"), ("general", "automotive"))


def _resolve(question, history, lexical):
    """What the retriever does: each question read in its own reply language."""
    def language_of(h):
        return detect(h).reply

    return followup.resolve(question, history, lexical, R, language_of(question), language_of)


@pytest.fixture(scope="module")
def lexical():
    return LexicalIndex([p.text for p in load_index(ROOT / "index").passages])


@pytest.mark.parametrize("history, question, understood", [
    (["Combien de salariés compte Ampere ?"], "Et où ?",
     "Et où ? (Combien de salariés compte Ampere ?)"),
    (["Combien de modèles sont promis ?"], "Lesquels ?",
     "Lesquels ? (Combien de modèles sont promis ?)"),
    (["When will Renault hold the Capital Market Day?"], "What is its purpose?",
     "What is the Capital Market Day's purpose?"),
    (["Does Ampere have its own logo?"], "What's it based on?", "What's the logo based on?"),
    (["Who heads Ampere?"], "Is there any doubt about it?", "Is there any doubt about Ampere?"),
    (["How many sites does Ampere have?"], "In which country?",
     "In which country ? (How many sites does Ampere have?)"),
])
def test_follow_ups_are_read_against_the_latest_question(lexical, history, question, understood):
    assert followup.is_followup(question, lexical, R)
    assert _resolve(question, history, lexical) == understood


def test_earlier_follow_ups_are_resolved_first(lexical):
    history = ["Combien de modèles sont promis ?", "Lesquels ?"]
    assert _resolve("Et quand ?", history, lexical) == (
        "Et quand ? (Lesquels ? (Combien de modèles sont promis ?))")


@pytest.mark.parametrize("question", [
    "Qui est le patron ?", "Does it include factories?", "how many enginers work there",
    "Ampere a-t-elle un logo à elle ?", "C'est quoi Ampere exactement ?", "headcount?",
    "Pourquoi Renault a-t-il lancé Ampere ?", "In which country are the company's sites located?",
])
def test_standalone_questions_are_never_changed(lexical, question):
    assert _resolve(question, ["Combien de modèles sont promis ?"], lexical) == question


@pytest.mark.parametrize("name", SETS)
def test_no_question_of_the_committed_sets_is_changed_by_the_one_before(lexical, name):
    lines = (ROOT / "eval" / name).read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    changed = [q for before, q in pairwise(questions)
               if understand.kind_of(q, R) == understand.QUESTION
               and _resolve(q, [before], lexical) != q]
    assert changed == []


def test_without_history_nothing_is_resolved(lexical):
    assert _resolve("Et où ?", [], lexical) == "Et où ?"


def test_history_must_be_a_list_of_questions(fake_retriever_for_history):
    r = fake_retriever_for_history
    for bad in ("Qui dirige Ampere ?", [42], ["x" * 5000]):
        with pytest.raises(BadInputError):
            r.answer("Et où ?", history=bad)
    answer = r.answer("Et où ?", history=["", "Combien de salariés compte Ampere ?"])
    assert answer.understood == "Et où ? (Combien de salariés compte Ampere ?)"
    assert answer.question == "Et où ?" and answer.to_dict()["understood"] == answer.understood
    assert r.answer("Qualcomm", history=["Qui dirige Ampere ?"]).understood is None


@pytest.fixture
def fake_retriever_for_history(tmp_path, corpus_copy, fake_embedder):
    import dataclasses

    from ampere_qa import Retriever, build_index

    build_index(corpus_copy, tmp_path / "i", embedder=fake_embedder)
    loaded = Retriever.load(tmp_path / "i", embedder=fake_embedder)
    # Hashed trigrams know nothing of topics: no off-topic cut-off.
    return Retriever(loaded.data, fake_embedder,
                     settings=dataclasses.replace(loaded.settings, min_relevance=-1.0))


def test_a_chain_of_follow_ups_nests_two_deep_at_most(lexical):
    """Eight « Et où ? » made « Et où ? (Et où ? (… ))))))))», 1,018 characters."""
    history = ["Combien de salariés compte Ampere ?", *["Et où ?"] * 7]
    understood = _resolve("Et où ?", history, lexical)
    assert understood == "Et où ? (Et où ? (Combien de salariés compte Ampere ?))"
    long = ["Combien de salariés compte Ampere ?" + " x" * 480, *[("Et où " + "y " * 490)] * 7]
    assert len(_resolve("Et où ?", long, lexical)) < 3 * 1000
