"""Answer quality on the committed evaluation set: a floor, so quality cannot regress silently.

The floors are the levels reached with the bundled model (see the README's quality table)
less one question's worth of slack; the issue's targets (hit@1 0.95, MRR 0.97, answer hit 0.90)
are above what this model reaches, so they are reported, not asserted.
"""

from __future__ import annotations

import json

import pytest

from ampere_qa.errors import BadInputError
from ampere_qa.evaluate import Question, Tally, calibrate, evaluate, load_questions, threshold

from .conftest import ROOT

EVAL_SET = ROOT / "eval" / "questions.jsonl"
OFF_TOPIC_IDS = {"na-fr-001", "na-fr-002", "na-fr-003", "na-fr-004",
                 "na-en-001", "na-en-002", "na-en-003"}
# Questions on unrelated subjects that are not in the evaluation set (nor in the anchors).
HELD_OUT_OFF_TOPIC = [
    "Who painted the Mona Lisa?", "Quelle est la hauteur de la tour Eiffel ?",
    "How do I make a cup of tea?", "Quel est le plus grand océan du monde ?",
    "What is photosynthesis?", "Comment apprendre le piano rapidement ?",
    "What time is it in Tokyo?", "Qui a écrit Les Misérables ?",
    "How many legs does a spider have?", "Quelle est la meilleure saison pour visiter la Grèce ?",
    "Comment soigner un rhume ?", "Recommend a good science fiction book",
    "Quel est le score du match d'hier soir ?", "Comment changer une roue de vélo ?",
    "Who is the president of the United States?", "Donne-moi une recette de ratatouille",
    "What is the square root of 144?", "Quelle langue parle-t-on au Brésil ?",
    "What is the population of India?", "What is the boiling point of water?",
]


def test_the_committed_set_is_well_formed():
    questions = load_questions(EVAL_SET)
    article = (ROOT / "corpus" / "renault-ampere-article.txt").read_text(encoding="utf-8")
    by = lambda lang, ok: [q for q in questions if q.lang == lang and q.answerable is ok]  # noqa: E731
    assert len(by("fr", True)) >= 30 and len(by("en", True)) >= 30
    assert len(by("fr", False)) + len(by("en", False)) >= 15
    assert all(g in article for q in questions for g in q.gold)
    assert {q.id for q in questions if not q.answerable} >= OFF_TOPIC_IDS


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "lang": "fr", "question": "q"}', "gold: Field required"),
        ('{"id": "a", "lang": "fr", "question": "q", "gold": [], "answerable": true}', "need gold"),
        ("not json", "Invalid JSON"),
        # Types are strict: a string is not a list of one-letter strings, "false" is not true.
        ('{"id": "a", "lang": "fr", "question": "q", "gold": "Luca", "answerable": true}',
         "gold: Input should be a valid (list|array)"),
        ('{"id": "a", "lang": "fr", "question": "q", "gold": [""], "answerable": true}',
         "must not be empty"),
        ('{"id": "a", "lang": "fr", "question": "q", "gold": [], "answerable": "false"}',
         "answerable: Input should be a valid boolean"),
        ('{"id": 7, "lang": "fr", "question": "q", "gold": [], "answerable": false}',
         "id: Input should be a valid string"),
        ("[1, 2]", "Input should be an object"),
    ],
)
def test_malformed_sets_name_the_line(tmp_path, line, message):
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "ok", "lang": "en", "question": "q", "gold": ["x"], "answerable": true}\n'
                    + line + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=f"set.jsonl:2: .*{message}"):
        load_questions(path)


def test_a_set_that_is_not_a_regular_file_is_refused(tmp_path):
    import os

    os.mkfifo(tmp_path / "set.jsonl")  # reading it would block forever
    with pytest.raises(BadInputError, match="not a regular file"):
        load_questions(tmp_path / "set.jsonl")


def test_tally_metrics():
    q = Question("1", "fr", "?", ("gold",), True)
    t = Tally()
    for ranking in (["gold here"], ["no", "gold"], ["no", "no", "no", "gold"], ["no"]):
        t.answerable += 1
        t.add_ranking(q, ranking)
    m = t.metrics()
    assert (m["hit@1"], m["hit@3"]) == (0.25, 0.5)
    assert m["mrr@10"] == pytest.approx((1 + 0.5 + 0.25) / 4, abs=1e-4)


def test_calibration_keeps_false_abstention_under_target():
    scores = [{"answerable": True, "score": i / 100} for i in range(100)]
    scores += [{"answerable": False, "score": -i / 100} for i in range(1, 21)]
    cal = calibrate(scores, max_false_abstention=0.05)
    assert cal["min_relevance"] == threshold([i / 100 for i in range(100)], 0.05) == 0.05
    assert cal["cross_validated"]["false_abstention"] <= 0.06
    assert cal["cross_validated"]["abstention"] == 1.0


@pytest.fixture(scope="module")
def report(retriever):
    return evaluate(retriever, load_questions(EVAL_SET))


@pytest.mark.integration
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_quality_floor(report, lang):
    ours = report.systems["ampere-qa"][lang]
    assert ours["hit@1"] >= 0.86, ours
    assert ours["hit@3"] >= 0.93, ours
    assert ours["mrr@10"] >= 0.90, ours
    assert ours["answer_hit"] >= 0.75, ours
    assert ours["false_abstention"] <= 0.06, ours
    assert ours["language_accuracy"] == 1.0, ours
    assert ours["duplicate_citations"] == 0, ours
    for baseline in ("bm25-paragraphs", "dense-paragraphs"):
        theirs = report.systems[baseline][lang]
        assert ours["hit@1"] > theirs["hit@1"] and ours["mrr@10"] > theirs["mrr@10"], baseline


@pytest.mark.integration
def test_off_topic_questions_are_not_found(report, retriever):
    failed = {f["id"] for f in report.failures}
    assert not OFF_TOPIC_IDS & failed
    abstained = sum(not retriever.answer(q).answered for q in HELD_OUT_OFF_TOPIC)
    assert abstained >= 0.9 * len(HELD_OUT_OFF_TOPIC)


@pytest.mark.integration
def test_eval_command_on_any_file_with_plot(tmp_path, model_cache):
    from .test_cli import run

    subset = tmp_path / "mine.jsonl"
    lines = EVAL_SET.read_text(encoding="utf-8").splitlines()
    subset.write_text("\n".join(lines[:3] + lines[-2:]) + "\n", encoding="utf-8")
    png = tmp_path / "scores.png"
    env = {"AMPERE_QA_CACHE": str(model_cache)}
    proc = run("eval", str(subset), "--json", "--plot", str(png), env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["systems"]["ampere-qa"]["all"]["answerable"] == 3
    assert out["systems"]["ampere-qa"]["all"]["unanswerable"] == 2
    assert set(out["systems"]) == {"ampere-qa", "bm25-paragraphs", "dense-paragraphs"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = run("eval", str(subset), env=env)
    assert text.returncode == 0 and "hit@1" in text.stdout and "Calibrated" in text.stdout
