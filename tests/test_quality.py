"""Answer quality on the committed evaluation sets: a floor, so quality cannot regress silently.

The floors are the levels reached with the bundled model (see the README's quality table)
less about one question's worth of slack. Targets above what this model reaches (hit@1 0.95,
answer hit 0.90) are reported in the README, not asserted.
"""

from __future__ import annotations

import json

import pytest

from ampere_qa.errors import BadInputError
from ampere_qa.eval import Question, Score, Tally, calibrate, evaluate, load_questions, threshold

from .conftest import ROOT

EVAL_SET = ROOT / "eval" / "questions.jsonl"
# Written after the method was frozen, never used for tuning (fresh-1 was, for the second round;
# fresh-2 was written after the last change to the answer logic).
FRESH_SETS = (ROOT / "eval" / "fresh-1.jsonl", ROOT / "eval" / "fresh.jsonl",
              ROOT / "eval" / "fresh-2.jsonl")
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


def test_the_committed_sets_are_well_formed():
    questions = load_questions(EVAL_SET)
    article = (ROOT / "corpus" / "renault-ampere-article.txt").read_text(encoding="utf-8")
    by = lambda lang, ok: [q for q in questions if q.lang == lang and q.answerable is ok]  # noqa: E731
    assert len(by("fr", True)) >= 30 and len(by("en", True)) >= 30
    group = lambda g: [q for q in questions if q.group == g]  # noqa: E731
    assert len(group("near-topic")) >= 30 and len(group("chitchat")) >= 20
    assert len([q for q in questions if q.short]) >= 40
    assert {q.id for q in group("off-topic")} == OFF_TOPIC_IDS
    for path in (EVAL_SET, *FRESH_SETS):
        qs = load_questions(path)
        assert all(g in article for q in qs for g in (*q.gold, *q.short)), path
        assert {q.group for q in qs} == {"answerable", "near-topic", "off-topic", "chitchat"}, path
        assert {q.lang for q in qs} == {"fr", "en"} and len(qs) >= 40, path


def test_group_and_short_answer_fields_are_checked(tmp_path):
    path = tmp_path / "set.jsonl"
    line = '{"id": "a", "lang": "fr", "question": "q", "gold": [], "answerable": false, "group": "%s"}'
    path.write_text(line % "answerable" + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="does not fit answerable=False"):
        load_questions(path)
    path.write_text(line % "nearby" + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="group"):
        load_questions(path)
    path.write_text('{"id": "a", "lang": "fr", "question": "q", "gold": [], "short": ["x"], '
                    '"answerable": false, "group": "near-topic"}\n', encoding="utf-8")
    with pytest.raises(BadInputError, match="short answers"):
        load_questions(path)
    # Without a group, an unanswerable question counts as off-topic (sets written before groups).
    path.write_text(line.replace(', "group": "%s"', "") + "\n", encoding="utf-8")
    assert load_questions(path)[0].group == "off-topic"


def test_short_answers_match_ignoring_case_and_spacing():
    q = Question("1", "fr", "?", ("11 000 salariés",), True, "answerable", ("11 000",))
    assert q.short_matches("11  000") and q.short_matches("11 000") and not q.short_matches("11")
    assert not q.short_matches(None)


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
    scores = [Score(f"a{i}", True, "answerable", i / 100) for i in range(100)]
    scores += [Score(f"n{i}", False, "off-topic", -i / 100) for i in range(1, 21)]
    cal = calibrate(scores, max_false_abstention=0.05)
    assert cal.min_relevance == threshold([i / 100 for i in range(100)], 0.05) == 0.05
    assert cal.cross_validated.false_abstention is not None
    assert cal.cross_validated.false_abstention <= 0.06
    assert cal.cross_validated.abstention == 1.0


@pytest.fixture(scope="module")
def report(retriever):
    return evaluate(retriever, load_questions(EVAL_SET))


# Levels reached on eval/questions.jsonl (README), less about one question of slack.
FLOORS = {
    "fr": {"hit@1": 0.86, "hit@3": 0.89, "mrr@10": 0.89, "answer_hit": 0.84, "short_answer_em": 0.84,
           "near-topic_not_found": 0.80, "off-topic_not_found": 1.0, "chitchat_not_found": 1.0},
    "en": {"hit@1": 0.90, "hit@3": 0.98, "mrr@10": 0.94, "answer_hit": 0.85, "short_answer_em": 0.81,
           "near-topic_not_found": 0.80, "off-topic_not_found": 1.0, "chitchat_not_found": 1.0},
}


@pytest.mark.integration
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_quality_floor(report, lang):
    ours = report.systems["ampere-qa"][lang]
    for metric, floor in FLOORS[lang].items():
        assert ours[metric] >= floor, (metric, ours)
    assert ours["false_abstention"] <= 0.06, ours
    assert ours["language_accuracy"] == 1.0, ours
    assert ours["duplicate_citations"] == 0, ours
    for baseline in ("bm25-paragraphs", "dense-paragraphs"):
        theirs = report.systems[baseline][lang]
        assert ours["hit@1"] > theirs["hit@1"] and ours["mrr@10"] > theirs["mrr@10"], baseline


# Levels reached on the fresh sets (README), over both languages, less about one question.
FRESH_FLOORS = {
    "fresh-1.jsonl": {"hit@1": 0.90, "answer_hit": 0.84, "short_answer_em": 0.68,
                      "near-topic_not_found": 0.71, "off-topic_not_found": 1.0,
                      "chitchat_not_found": 1.0},
    "fresh.jsonl": {"hit@1": 0.87, "answer_hit": 0.87, "short_answer_em": 0.82,
                    "near-topic_not_found": 0.78, "off-topic_not_found": 1.0,
                    "chitchat_not_found": 1.0},
    "fresh-2.jsonl": {"hit@1": 0.89, "answer_hit": 0.89, "short_answer_em": 0.77,
                      "near-topic_not_found": 0.71, "off-topic_not_found": 1.0,
                      "chitchat_not_found": 1.0},
}


@pytest.mark.integration
@pytest.mark.parametrize("path", FRESH_SETS, ids=lambda p: p.name)
def test_quality_floor_on_the_fresh_sets(retriever, path):
    ours = evaluate(retriever, load_questions(path)).systems["ampere-qa"]["all"]
    for metric, floor in FRESH_FLOORS[path.name].items():
        assert ours[metric] >= floor, (metric, ours)
    assert ours["false_abstention"] <= 0.07, ours


@pytest.mark.integration
def test_off_topic_questions_are_not_found(report, retriever):
    failed = {f.id for f in report.failures}
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


@pytest.mark.integration
def test_follow_up_dialogues_floor_and_no_standalone_change(retriever, report):
    from ampere_qa.eval import evaluate_dialogues, load_dialogues

    result = evaluate_dialogues(retriever, load_dialogues(ROOT / "eval" / "dialogues.jsonl"))
    for lang in ("fr", "en"):  # level reached: 16 of 18 in each language
        assert result.systems["ampere-qa"][lang]["answer_hit"] >= 0.88, result
    assert report.standalone_changed == []


@pytest.mark.integration
def test_eval_command_scores_a_dialogue_set(model_cache):
    from .test_cli import run

    proc = run("eval", "eval/dialogues.jsonl", "--json", env={"AMPERE_QA_CACHE": str(model_cache)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["systems"]["ampere-qa"]["all"]["dialogues"] >= 30
