"""Trustworthy answers with the real model: the fact that was asked, or a "not found" that says
why; greetings and requests answered as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from ampere_qa.types import REASONS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("question, short", [
    ("Who heads Ampere?", "Luca de Meo"),
    # The best passage lists models beside "Ampere"; the one cited next holds "dirige".
    ("Who leads Ampere?", "Luca de Meo"),
    ("Qui dirige Ampere ?", "Luca de Meo"),
    ("When will Ampere go public?", "premier semestre 2024"),
    ("Who invests in Ampere?", "Nissan et Mitsubishi"),
    ("Combien de salariés compte Ampere ?", "11 000"),
    ("What share of the staff are engineers?", "35 %"),
])
def test_the_short_answer_is_the_fact_asked_and_points_into_the_source(retriever, question, short):
    ans = retriever.answer(question)
    assert ans.answered and ans.short_answer is not None, ans
    assert ans.short_answer.text == short
    assert ans.answer.startswith(short + " — ")
    cited = next(c for c in ans.citations if c.rank == ans.short_answer.rank)
    source = Path(cited.source).read_text(encoding="utf-8")
    assert source[ans.short_answer.start:ans.short_answer.end] == short
    assert cited.start <= ans.short_answer.start < ans.short_answer.end <= cited.end


@pytest.mark.parametrize("question, reason, says", [
    ("Quel est le prix de la R5 ?", "not_given", "L'article ne donne aucun prix pour R5."),
    ("How much does a Tesla Model Y cost?", "not_mentioned", "The article does not mention Tesla."),
    ("Who is Ampere's CFO?", "not_mentioned", "The article does not mention CFO."),
    ("What is Ampere's annual revenue?", "not_given", "The article gives no revenue for Ampere."),
    ("Quelle est la capitale de l'Australie ?", "off_topic", "ne semble pas porter sur l'article"),
    ("Bonjour", "greeting", "Bonjour !"),
    ("Summarize the article", "request", "I do not summarise"),
])
def test_not_found_says_why_in_the_question_language(retriever, question, reason, says):
    ans = retriever.answer(question)
    d = ans.to_dict()
    assert not ans.answered and d["reason"] == reason and reason in REASONS
    assert says in ans.answer and d["citations"] == [] and d["short_answer"] is None


def test_a_two_part_question_gets_both_facts(retriever):
    ans = retriever.answer("Who heads Ampere and how many people work there?")
    assert ans.answered and ans.answer.startswith("Luca de Meo; 11 000 — ")
    assert "Luca de Meo, directeur général" in ans.answer and "11 000 salariés" in ans.answer


def test_k_bounds_the_excerpts_an_answer_cites(retriever):
    question = "Quelle est l'ambition de Renault avec Ampere ?"
    counts = [len(retriever.answer(question, k=k).citations) for k in (1, 3, 5)]
    assert counts[0] == 1 and counts[0] <= counts[1] <= counts[2] and counts[2] > 1, counts
    assert all(len(retriever.answer(question, k=k).citations) <= k for k in (1, 2, 3, 5))
