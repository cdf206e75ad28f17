"""Reading questions (kind, expected answer type, parts) and finding typed spans: pure rules."""

from __future__ import annotations

import pytest

from ampere_qa.qa import spans
from ampere_qa.qa import understand as u
from ampere_qa.qa.rules import rules

# The shipped corpus's rules (corpus/ampere-qa.toml [answer]).
R = rules(("fr", "en"), ("general", "automotive"))


@pytest.mark.parametrize("question, expected", [
    ("Qui dirige la société ?", u.NAME),
    ("Who runs the company?", u.NAME),
    ("Quelles entreprises vont investir ?", u.NAMES),
    ("Which companies will invest?", u.NAMES),
    ("Combien de salariés compte l'usine ?", u.NUMBER),
    ("How many plants are there?", u.NUMBER),
    ("Quel pourcentage sont des femmes ?", u.PERCENT),
    ("What share of the staff are engineers?", u.PERCENT),
    ("Combien coûte la voiture ?", u.MONEY),
    ("How much does the car cost?", u.MONEY),
    ("Quand l'usine ouvrira-t-elle ?", u.DATE),
    ("In what year was it founded?", u.DATE),
    ("Combien de temps a duré le projet ?", u.DURATION),
    ("Où se trouve le siège ?", u.PLACE),
    ("Where is the plant?", u.PLACE),
    ("Pourquoi Renault fait-il cela ?", None),
    ("Is the plan risky or safe?", None),
    ("La direction est-elle réduite ou large ?", None),  # "ou" is not "où"
    # "quand" opening a clause asks for no date; asking "when" still does.
    ("Dossier médical : puis-je le fermer quand je veux ?", None),
    ("Que faire quand mon employeur me filme ?", None),
    ("Règlement : quand informer les personnes ?", u.DATE),
    ("Et quand ?", u.DATE),
    ("Can a lender ask for my statements when I apply for a loan?", None),
    ("When was the loan granted?", u.DATE),
    # "là où" / "where it left off" is a clause, not a place asked for; a value is not money.
    ("Comment reprendre un flux là où il s'était arrêté ?", None),
    ("How do I resume a stream where it left off?", None),
    ("Où sont produites les batteries ?", u.PLACE),
    ("Quelle valeur reçoit mon paramètre booléen ?", None),
    ("Quel est le prix de la voiture ?", u.MONEY),
    # A leading clause sets the scene: its "when" is not what is asked; the clause after is.
    ("When a lender lists me on the register, what must its letter tell me?", None),
    ("My startup events never fire when testing with a client, what should I use?", None),
    ("When the plant opens, how many people will work there?", u.NUMBER),
    ("Selon l'article, qui dirige la société ?", u.NAME),
    ("Quand je refuse, que se passe-t-il ?", None),
    ("Quand la nouvelle usine ouvrira-t-elle ?", u.DATE),
])
def test_expected_answer_type(question, expected):
    assert u.answer_type(question, R) == expected


@pytest.mark.parametrize("text, kind", [
    ("Bonjour", u.GREETING), ("salut ça va ?", u.GREETING), ("Hello, how are you today?", u.GREETING),
    ("Merci beaucoup !", u.GREETING), ("Who are you?", u.GREETING),
    ("Qu'est-ce que tu sais faire ?", u.GREETING),
    ("Résume l'article", u.REQUEST), ("Please translate the text", u.REQUEST),
    ("Write a poem about electric cars", u.REQUEST), ("Quel est ton avis sur ce plan ?", u.REQUEST),
    ("Bonjour, qui dirige la société ?", u.QUESTION), ("Hi, how many people work there?", u.QUESTION),
    # Writing or advice after an opening question word is what the question asks about.
    ("Pourquoi est-il interdit d'écrire q = 1 ?", u.QUESTION), ("Qui a écrit ce rapport ?", u.QUESTION),
    ("Comment écrire une contrainte de version ?", u.QUESTION),
    ("Which version added the summary parameter?", u.QUESTION),
    ("What does the CNIL recommend about geolocation?", u.QUESTION),
    ("Que recommande la CNIL ?", u.QUESTION), ("Que me recommandes-tu ?", u.REQUEST),
    ("Tu peux me résumer l'article ?", u.REQUEST), ("Can you recommend a good novel?", u.REQUEST),
    ("Which model do you recommend?", u.REQUEST), ("What do you think of the plan?", u.REQUEST),
    # A question word opening the clause after a scene-setting one asks as well.
    ("Dans mon Dockerfile, pourquoi écrire CMD sous forme exec ?", u.QUESTION),
    ("Dans ce cas, écris-moi un poème", u.REQUEST),
    # ...and so does one after a preposition.
    ("À quel organisme écrire ?", u.QUESTION), ("To which office should I write?", u.QUESTION),
    ("Je suis né sous X, à quel organisme écrire pour connaître ma mère ?", u.QUESTION),
    ("Pour ma mère, écris une lettre", u.REQUEST), ("For my boss, write a summary", u.REQUEST),
])
def test_greetings_and_requests_are_told_from_questions(text, kind):
    assert u.kind_of(text, R) == kind


def test_a_two_part_question_is_read_part_by_part():
    intents = u.read("Who leads the company and how many people work there?", R)
    assert [i.text for i in intents] == ["Who leads the company", "how many people work there"]
    assert [i.expected for i in intents] == [u.NAME, u.NUMBER]
    assert [i.text for i in u.read("Qui dirige la société ?", R)] == ["Qui dirige la société ?"]
    # "et" inside one question does not cut it.
    assert len(u.read("Qui sont les partenaires et les investisseurs ?", R)) == 1
    # A clause that only sets the scene is no part of its own ("Selon l'article" asks nothing).
    (one,) = u.read("Selon l'article, qui dirige la société ?", R)
    assert one.expected == u.NAME and one.text == "Selon l'article, qui dirige la société ?"
    # ...but one that holds a question word still is.
    assert len(u.read("I read it will float, which banks run it and how much will it raise?", R)) == 2


@pytest.mark.parametrize("question, category", [
    ("Qui doit mener l'évaluation avant d'équiper un patient ?", True),
    ("Qui peut consulter les fichiers clients ?", True),
    ("Who is allowed to see the camera footage?", True),
    ("Qui dirige la société ?", False), ("Who founded the company?", False),
])
def test_who_may_or_must_accepts_a_kind_of_person(question, category):
    (intent,) = u.read(question, R)
    assert intent.expected == u.NAME and intent.category is category


@pytest.mark.parametrize("question, category", [
    ("Jusqu'à quand un hôpital peut-il garder la photo d'un patient ?", True),
    ("Les 25 ans de conservation, ça commence à compter de quand ?", True),
    ("Until when may the hospital keep the photo?", True),
    ("Quand l'usine ouvrira-t-elle ?", False), ("When was the company founded?", False),
])
def test_until_when_accepts_an_event(question, category):
    # « au-delà de la durée de prise en charge du patient » answers "jusqu'à quand".
    (intent,) = u.read(question, R)
    assert intent.expected == u.DATE and intent.category is category


def test_focus_is_the_noun_the_question_word_bears_on():
    assert u.focus_of("Combien de salariés compte l'usine ?", R) == "salariés"
    assert u.focus_of("Which chip company invests?", R) == "chip company"
    assert u.focus_of("What is the plan?", R) == ""


def _kinds(text):
    return [(s.kind, s.text) for s in spans.find(text, R)]


def test_typed_spans_in_french_and_english():
    found = _kinds("Le groupe emploie 11 000 salariés, dont 35 % d'ingénieurs, depuis le 15 novembre 2022.")
    assert (u.NUMBER, "11 000") in found and (u.PERCENT, "35 %") in found
    assert (u.DATE, "le 15 novembre 2022") in found
    assert not any(k == u.NUMBER and t in ("35", "15", "2022") for k, t in found)
    assert (u.MONEY, "2,5 milliards d'euros") in _kinds("Un prix de 2,5 milliards d'euros.")
    assert (u.MONEY, "$40,000") in _kinds("It costs $40,000 today.")
    assert (u.DATE, "premier semestre 2024") in _kinds("Au cours du premier semestre 2024.")
    assert (u.DURATION, "deux ans") in _kinds("Le projet a pris deux ans.")


def test_names_lists_and_places():
    found = _kinds("Selon Marie de La Tour, Nissan et Mitsubishi investiront en Espagne.")
    assert (u.NAME, "Marie de La Tour") in found  # "Selon" opens the sentence, it is no name
    assert (u.NAMES, "Nissan et Mitsubishi") in found
    assert (u.PLACE, "Espagne") in found
    assert (u.NAMES, "Megane, Scénic, R5 et 4L") in _kinds("Les modèles Megane, Scénic, R5 et 4L.")
    assert all(t != "L'objectif" for _, t in _kinds("L'objectif est clair."))
    # "En" opens many French sentences ("En savoir plus : …", "En 2023, …"): never a name.
    assert [t for _, t in _kinds("En savoir plus : Règlement européen")] == ["Règlement"]
    assert (u.PLACE, "Espagne") in _kinds("En Espagne, l'usine produit.")


@pytest.mark.parametrize("question, concept", [
    ("Quel bénéfice Renault a-t-il réalisé en 2023 ?", "profit"),
    ("Quels sont les bénéfices du bouclier de protection ?", None),  # its benefits
    ("Qui va fournir les batteries ?", "supplier"),
    ("Dois-je fournir une copie de ma pièce d'identité ?", None),  # to hand over
    ("Combien de véhicules l'usine produit-elle ?", "production"),
    ("Si une erreur se produit, que devient la requête ?", None),  # it happens
    ("Comment produire le fichier requirements.txt ?", None),  # a way, not a figure
    ("Quel taux d'utilisation du CPU viser en production ?", None),  # where it runs
    ("Quelle est la capacité de production de l'usine ?", "production"),
    ("How is the amount of a fine determined?", None),
    ("Comment s'appelle le fournisseur des batteries ?", "supplier"),
    ("What is the amount of the fine?", "amount"),
    # Words of a scene-setting clause are context: "vendre" there asks no sales figure.
    ("Pour vendre en ligne des médicaments, qui doit autoriser le site ?", None),
    ("Combien de voitures la marque vend-elle ?", "sales"),
])
def test_words_that_ask_for_a_kind_of_fact_only_in_that_sense(question, concept):
    from ampere_qa.qa.answerability import asked_concepts

    found = [c.name for c in asked_concepts(question, u.answer_type(question, R), R)]
    assert found == ([concept] if concept else [])


def test_a_name_only_in_the_questions_own_brackets_is_not_missing():
    from ampere_qa.indexing.lexical import LexicalIndex
    from ampere_qa.qa.answerability import missing_name

    lex = LexicalIndex(["La base de données économiques et sociales rassemble les informations."],
                       languages=("fr", "en"))
    glossed = "Base de données économiques et sociales (BDES) : faut-il faire quelque chose ?"
    assert missing_name(glossed, lex, lex.terms(glossed), R) is None
    bare = "La BDES : faut-il faire quelque chose ?"  # named outside brackets: still looked for
    assert missing_name(bare, lex, lex.terms(bare), R) == "BDES"


def test_only_a_confident_retrieval_lets_a_name_of_the_users_own_situation_go():
    from ampere_qa.indexing.lexical import LexicalIndex
    from ampere_qa.qa.answerability import missing_name

    lex = LexicalIndex(["Le casier judiciaire national délivre les extraits."], languages=("fr", "en"))
    q = "Je suis né à Nouméa, à qui demander un extrait de casier judiciaire ?"
    assert missing_name(q, lex, lex.terms(q), R) == "Nouméa"
    assert missing_name(q, lex, lex.terms(q), R, confident=True) is None
    # A name in the clause that asks, or in a scene that is not the user's, is still looked for;
    # "x5" of "x5-pro" too.
    for q, name in (("Je suis né à Nouméa, que dit Tesla du casier judiciaire ?", "Tesla"),
                    ("Chez Tesla, à qui demander un extrait de casier judiciaire ?", "Tesla"),
                    ("Que dit le x5-pro du casier judiciaire ?", "x5"),
                    ("Je suis né à Nouméa, que dit le x5-pro du casier judiciaire ?", "x5")):
        assert missing_name(q, lex, lex.terms(q), R, confident=True) == name, q
        assert missing_name(q, lex, lex.terms(q), R) is not None, q


def test_an_acronym_the_passages_spell_out_is_not_missing():
    from ampere_qa.indexing.lexical import LexicalIndex
    from ampere_qa.qa.answerability import missing_name

    found = ["La déclaration sociale nominative relève du fichier de paie.",
             "Un nouveau procès-verbal pourra être rédigé."]
    lex = LexicalIndex([*found, "Pour vos données, conservez-les."], languages=("fr", "en"))
    for q in ("Pour la DSN, quelle dispense ?", "Puis-je corriger mon PV ?"):
        assert missing_name(q, lex, lex.terms(q), R) is not None  # no passage given
        assert missing_name(q, lex, lex.terms(q), R, found) is None
    # Stop words never spell a letter ("pour vos" is no "PV"), nor do words of other initials.
    q = "Puis-je corriger mon PV ?"
    assert missing_name(q, lex, lex.terms(q), R, ["Pour vos données, conservez-les."]) == "PV"
    q = "Quel est le rôle de la BCE ?"
    assert missing_name(q, lex, lex.terms(q), R, found) == "BCE"


def test_the_asking_word_found_in_the_sentences_gives_the_fact():
    from ampere_qa.qa.answerability import asked_concepts, gives

    # No English word gives a profit figure in the pack: the question's own word does.
    q = "What were the earnings of the fund?"
    (profit,) = [c for c in asked_concepts(q, u.answer_type(q, R), R) if c.name == "profit"]
    assert not gives(profit, ["The fund pays for care."], R, q)
    assert gives(profit, ["Its earnings go back to the members."], R, q)
    assert not gives(profit, ["Its earnings go back to the members."], R)  # without the question


def test_a_capital_opening_a_sentence_of_the_question_is_no_name():
    from ampere_qa.indexing.lexical import LexicalIndex
    from ampere_qa.qa.answerability import names_in

    lex = LexicalIndex(["x"], languages=("fr", "en"))
    q = "Someone stole my identity on Facebook. Can the CNIL help?"
    assert {t.word for t in names_in(q, lex.terms(q), R)} == {"Facebook", "CNIL"}
