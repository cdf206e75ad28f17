"""Language detection of questions: French and English, short and long, and other languages."""

from __future__ import annotations

import pytest

from ampere_qa.qa.language import detect

FRENCH = [
    "Qui dirige Ampere ?",
    "Combien de salariés compte Ampere ?",
    "Quand Ampere entrera-t-il en bourse ?",
    "Quel est le logo d'Ampere ?",
    "Quelle part des employés sont ingénieurs ?",
    "Combien de modèles sont promis d'ici 2025 ?",
    "Quelle usine fait partie d'Ampere ?",
    "Qui va investir dans Ampere ?",
    "Pourquoi Renault a-t-il créé Ampere ?",
    "Où se trouvent les sites ?",
    "Quand le projet a-t-il été évoqué ?",
    "Ampere sera-t-elle une marque distincte ?",
    "Que symbolise le losange ?",
    "Quel est l'objectif de Renault avec Ampere ?",
    "Quelle date pour le Capital Market Day ?",
    "Combien de sites en France ?",
    "Le patron d'Ampere",
    "Ampere est-il coté ?",
    "Dites-moi qui finance Ampere",
    "Quels modèles électriques ?",
    "salariés ?",
]
ENGLISH = [
    "Who leads Ampere?",
    "How many employees does Ampere have?",
    "When will Ampere go public?",
    "What does the logo symbolise?",
    "What share of the staff are engineers?",
    "How many models are promised by 2025?",
    "Which factory is part of Ampere?",
    "Who will invest in Ampere?",
    "Why did Renault create Ampere?",
    "Where are the sites located?",
    "When was the project first mentioned?",
    "Will Ampere be a separate brand?",
    "Which chipmaker plans to invest?",
    "What is Renault's goal with Ampere?",
    "When is the Capital Market Day?",
    "How many sites in France?",
    "the boss of Ampere",
    "Is Ampere listed on the stock exchange?",
    "Tell me who funds Ampere",
    "Which electric models?",
]


@pytest.mark.parametrize("question", FRENCH)
def test_french(question):
    assert detect(question).code == "fr"
    assert detect(question).reply == "fr"


@pytest.mark.parametrize("question", ENGLISH)
def test_english(question):
    assert detect(question).code == "en"
    assert detect(question).reply == "en"


@pytest.mark.parametrize(
    ("question", "code"),
    [
        ("¿Cuántos empleados tiene Ampere en Francia?", "es"),
        ("Quanti dipendenti ha Ampere in Francia?", "it"),
    ],
)
def test_other_languages_are_reported_and_answered_in_english(question, code):
    got = detect(question)
    assert (got.code, got.reply) == (code, "en")


def test_a_language_with_a_pack_is_answered_in_it():
    # German has a pack (packs/lang/de.toml): no longer answered in English.
    got = detect("Wie viele Mitarbeiter hat Ampere in Frankreich?")
    assert (got.code, got.reply) == ("de", "de")


@pytest.mark.parametrize("question", ["Ampere", "R5", "2024 ?", "🙂", "???"])
def test_undecidable_short_input_falls_back_to_english(question):
    assert detect(question).reply in ("fr", "en")
    assert detect(question) == detect(question)  # deterministic


def test_deterministic_across_calls():
    results = {detect("Renault Ampere Qualcomm Nissan Mitsubishi").code for _ in range(20)}
    assert len(results) == 1
