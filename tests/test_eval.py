"""The evaluation's steps on fake data (no model): set and dialogue validation, the tallies, the
comparison loop over systems behind one interface, calibration and the report's shapes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from ampere_qa.errors import BadInputError
from ampere_qa.eval import (
    MAX_SET_BYTES,
    Dialogue,
    DialogueReport,
    Question,
    Response,
    Score,
    Tallies,
    Tally,
    calibrate,
    compare,
    evaluate_dialogues,
    format_dialogues,
    format_report,
    is_dialogue_set,
    load_dialogues,
    load_questions,
)
from ampere_qa.eval.run import failure
from ampere_qa.types import Answer, Citation, ShortAnswer

FR = Question("fr-1", "fr", "Qui dirige Ampere ?", ("Luca de Meo",), True, "answerable",
              ("Luca de Meo",))
EN = Question("en-1", "en", "Who leads Ampere?", ("Luca de Meo",), True)
NEAR = Question("nt-1", "en", "Who leads Tesla?", (), False, "near-topic")
CHAT = Question("cc-1", "fr", "Bonjour, comment ça va ?", (), False, "chitchat")


def reply(answered: bool, text: str = "", short: str | None = None, cited: Sequence[str] = (),
          relevance: float | None = 0.1, understood: str | None = None) -> Answer:
    citations = tuple(Citation(i, f"p{i}", "a.txt", 0, len(t), t, 1.0)
                      for i, t in enumerate(cited, 1))
    return Answer("?", "fr", answered, text, citations, relevance=relevance,
                  short_answer=ShortAnswer(short, 1, 0, len(short)) if short else None,
                  reason=None if answered else "off_topic", understood=understood)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# Set validation


def line(**fields: object) -> str:
    base: dict[str, object] = {"id": "a", "lang": "fr", "question": "q", "gold": ["x"],
                               "answerable": True}
    return json.dumps({**base, **fields})


def test_a_valid_set_is_read_with_its_defaults_and_extra_fields(tmp_path):
    path = write(tmp_path, line(note="ignored"), "", "   ",
                 line(id="b", gold=[], answerable=False), line(id="c", short=["x"]))
    a, b, c = load_questions(path)
    assert (a.group, a.short) == ("answerable", ())
    assert (b.group, b.gold, b.answerable) == ("off-topic", (), False)
    assert c.short == ("x",)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((line(), "", line()), r"set.jsonl:3: duplicate id 'a'"),
        ((), r"set.jsonl holds no questions"),
        (("", "  "), r"set.jsonl holds no questions"),
        ((line(lang="f"),), r"set.jsonl:1: lang: String should have at least 2 characters"),
        ((line(question=""),), r"set.jsonl:1: question: String should have at least 1 character"),
        ((line(group="chitchat"),), r"group 'chitchat' does not fit answerable=True"),
        ((line(short=[" "]),), r"short answers must be non-empty"),
    ],
)
def test_a_malformed_set_names_its_line(tmp_path, lines, message):
    with pytest.raises(BadInputError, match=message):
        load_questions(write(tmp_path, *lines))


def test_an_oversized_or_undecodable_set_is_refused(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_bytes(b" " * (MAX_SET_BYTES + 1))
    with pytest.raises(BadInputError, match="is over 16 MB"):
        load_questions(big)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\xff\n")
    with pytest.raises(BadInputError, match=r"cannot read evaluation set .*utf-8"):
        load_questions(bad)
    with pytest.raises(BadInputError, match="cannot read evaluation set"):
        load_questions(tmp_path / "missing.jsonl")


# Dialogue sets


def dialogue(**fields: object) -> str:
    base: dict[str, object] = {"id": "d", "lang": "fr", "turns": ["a", "b"], "gold": ["x"]}
    return json.dumps({**base, **fields})


def test_dialogue_sets_are_told_apart_by_their_first_line(tmp_path):
    assert is_dialogue_set(write(tmp_path, "", dialogue(), line()))
    assert not is_dialogue_set(write(tmp_path, line(), dialogue()))
    assert not is_dialogue_set(write(tmp_path))


def test_a_valid_dialogue_set_is_read(tmp_path):
    (d,) = load_dialogues(write(tmp_path, dialogue(short=["x"], extra=1)))
    assert d == Dialogue("d", "fr", ("a", "b"), ("x",), ("x",))
    assert d.last == Question("d", "fr", "b", ("x",), True, "answerable", ("x",))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((dialogue(turns=["a"]),), r":1: turns: List should have at least 2 items"),
        ((dialogue(gold=[]),), r":1: gold: List should have at least 1 item"),
        ((dialogue(turns="ab"),), r":1: turns: Input should be a valid (list|array)"),
        ((dialogue(turns=["a", " "]),), r":1: empty turn, gold or short, or duplicate id"),
        ((dialogue(short=[""]),), r":1: empty turn, gold or short, or duplicate id"),
        ((dialogue(), dialogue()), r":2: empty turn, gold or short, or duplicate id"),
        ((dialogue(), "[3]"), r":2: line: Input should be an object"),
        (("",), r"holds no dialogues"),
    ],
)
def test_a_malformed_dialogue_set_names_its_line(tmp_path, lines, message):
    with pytest.raises(BadInputError, match=message):
        load_dialogues(write(tmp_path, *lines))


class FakeRetriever:
    """Replies from a table: the last turn -> the reply."""

    def __init__(self, replies: dict[str, Answer]) -> None:
        self.replies = replies
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def answer(self, question: str, history: Sequence[str] = ()) -> Answer:
        self.asked.append((question, tuple(history)))
        return self.replies[question]


def test_dialogues_are_scored_on_their_last_turn_per_language_in_order_of_appearance():
    dialogues = [Dialogue("d1", "fr", ("a", "b"), ("Luca",), ("Luca",)),
                 Dialogue("d2", "en", ("c", "d", "e"), ("2023",)),
                 Dialogue("d3", "fr", ("f", "g"), ("gold",), ("gold",))]
    retriever = FakeRetriever({
        "b": reply(True, "Luca de Meo", short="luca ", understood="qui dirige ?"),
        "e": reply(True, "since 2023"),
        "g": reply(False, "Not found."),
    })
    result = evaluate_dialogues(retriever, dialogues)
    assert retriever.asked == [("b", ("a",)), ("e", ("c", "d")), ("g", ("f",))]
    metrics = result.systems["ampere-qa"]
    assert list(metrics) == ["fr", "all", "en"]
    assert metrics["fr"] == {"dialogues": 2, "answer_hit": 0.5, "short_answer_em": 0.5,
                             "read_as_follow_up": 0.5}
    assert metrics["en"]["short_answer_em"] is None
    assert metrics["all"]["answer_hit"] == round(2 / 3, 4)
    assert result.to_dict()["failures"] == [
        {"id": "d3", "turns": ["f", "g"], "understood": None, "answer": "Not found."}]
    text = format_dialogues(result)
    assert text.splitlines()[0].split("  ")[0] == "language"
    assert "—" in text and text.endswith("1 last turns answered wrongly (see --json).")
    assert isinstance(result, DialogueReport)


# Tallies


def test_a_ranking_only_system_gets_ranking_metrics_only():
    t = Tally()
    t.add(FR, Response(["no", "Luca de Meo dirige"]))
    t.add(NEAR, Response(["Luca de Meo"]))
    assert t.metrics() == {"answerable": 1, "unanswerable": 1, "hit@1": 0.0, "hit@3": 1.0,
                           "mrr@10": 0.5}


def test_rankings_count_to_depth_ten():
    t = Tally()
    t.add(EN, Response(["no"] * 10 + ["Luca de Meo"]))
    assert (t.metrics()["hit@3"], t.metrics()["mrr@10"]) == (0.0, 0.0)


def test_replies_are_tallied_per_group_of_unanswerable_questions():
    t = Tally()
    t.add(FR, Response(["Luca de Meo"], reply(True, "Luca de Meo", short="LUCA  de meo",
                                               cited=["same", "same"])))
    t.add(EN, Response([], reply(False, "Not found.")))
    t.add(NEAR, Response([], reply(True, "Elon Musk")))
    t.add(CHAT, Response([], reply(False, "Bonjour !")))
    m = t.metrics()
    assert list(m) == ["answerable", "unanswerable", "hit@1", "hit@3", "mrr@10", "answer_hit",
                       "abstention", "false_abstention", "language_accuracy",
                       "duplicate_citations", "short_answers", "short_answer_em",
                       "near-topic_not_found", "off-topic_not_found", "chitchat_not_found"]
    assert m["answer_hit"] == 0.5 and m["false_abstention"] == 0.5 and m["abstention"] == 0.5
    assert m["duplicate_citations"] == 1 and m["short_answers"] == 1 and m["short_answer_em"] == 1.0
    assert m["near-topic_not_found"] == 0.0 and m["chitchat_not_found"] == 1.0
    assert m["off-topic_not_found"] is None  # none asked
    assert m["language_accuracy"] == 1.0


def test_a_short_answer_counts_only_when_the_answer_is_right():
    t = Tally()
    t.add(FR, Response([], reply(False, "Not found.", short="Luca de Meo")))
    assert t.metrics()["short_answer_em"] == 0.0


def test_tallies_go_to_the_question_language_and_to_all():
    tallies = Tallies.over([EN, FR, NEAR])
    assert list(tallies.by_group) == ["all", "en", "fr"]
    for q in (EN, FR, NEAR):
        tallies.add(q, Response(["Luca de Meo"]))
    m = tallies.metrics()
    assert (m["all"]["answerable"], m["all"]["unanswerable"]) == (2, 1)
    assert (m["en"]["answerable"], m["en"]["unanswerable"], m["fr"]["answerable"]) == (1, 1, 1)


# The comparison loop


class Fake:
    """A system behind the one interface, with canned rankings and, optionally, replies."""

    def __init__(self, name: str, replies: dict[str, Answer] | None = None) -> None:
        self.name = name
        self.replies = replies
        self.asked: list[str] = []

    def respond(self, question: str) -> Response:
        self.asked.append(question)
        ranking = ["Luca de Meo"] if "Ampere" in question else ["nothing"]
        return Response(ranking, self.replies[question] if self.replies is not None else None)


def test_every_system_is_tallied_alike_whatever_its_name():
    replies = {FR.question: reply(True, "Luca de Meo", short="Luca de Meo"),
               EN.question: reply(True, "Luca de Meo", relevance=0.3),
               NEAR.question: reply(True, "Elon Musk", relevance=-0.1),
               CHAT.question: reply(False, "Bonjour !", relevance=None)}
    answering, ranking = Fake("any-name", replies), Fake("ampere-qa")
    report = compare([answering, ranking], [FR, EN, NEAR, CHAT])
    assert answering.asked == ranking.asked == [q.question for q in (FR, EN, NEAR, CHAT)]
    assert list(report.systems) == ["any-name", "ampere-qa"]
    assert list(report.systems["any-name"]) == ["all", "en", "fr"]
    assert report.systems["any-name"]["all"]["answer_hit"] == 1.0
    assert "answer_hit" not in report.systems["ampere-qa"]["all"]
    assert report.systems["ampere-qa"]["all"]["hit@1"] == 1.0
    assert [f.id for f in report.failures] == ["nt-1"]
    assert [(s.id, s.group, s.score) for s in report.scores] == [
        ("fr-1", "answerable", 0.1), ("en-1", "answerable", 0.3), ("nt-1", "near-topic", -0.1)]
    out = report.to_dict()
    assert list(out) == ["systems", "calibration", "failures", "standalone_changed"]
    assert out["calibration"] == {}  # compare alone does not calibrate
    assert out["failures"] == [{"id": "nt-1", "question": "Who leads Tesla?", "answered": True,
                                "answer": "Elon Musk", "reason": None, "short_answer": None,
                                "expected_short": None}]


def test_the_text_report_has_a_column_per_system_and_language():
    replies = {q.question: reply(True, "Luca de Meo") for q in (FR, EN)}
    report = compare([Fake("ampere-qa", replies), Fake("baseline")], [FR, EN])
    report.calibration = calibrate(report.scores)
    text = format_report(report)
    head = text.splitlines()[0].split()
    assert head == ["metric", "ampere-qa", "en", "ampere-qa", "fr", "baseline", "en", "baseline", "fr"]
    answer_row = next(r for r in text.splitlines() if r.startswith("answer_hit"))
    assert answer_row.split()[1:] == ["1.000", "1.000", "—", "—"]
    assert "2 answerable (1 with a short answer expected) and 0 unanswerable" in text
    assert "Calibrated not-found cut-off: relevance < 0.1" in text


def test_failures_are_wrong_answers_wrong_abstentions_and_wrong_short_answers():
    assert failure(FR, reply(True, "Luca de Meo", short="Luca de Meo")) is None
    assert failure(NEAR, reply(False, "Not found.")) is None
    wrong_short = failure(FR, reply(True, "Luca de Meo", short="Renault"))
    assert wrong_short is not None and wrong_short.expected_short == ["Luca de Meo"]
    abstained = failure(EN, reply(False, "Not found."))
    assert abstained is not None and abstained.reason == "off_topic"
    assert failure(CHAT, reply(True, "Hello")) is not None


# Calibration


def test_calibration_of_no_scores_and_its_json_shape():
    empty = calibrate([])
    assert empty.to_dict() == {"min_relevance": 0.0, "target_false_abstention": 0.05,
                               "cross_validated": {"false_abstention": None, "abstention": None}}
    scores = [Score(f"a{i}", True, "answerable", i / 10) for i in range(10)]
    scores.append(Score("n", False, "near-topic", 0.95))
    cal = calibrate(scores, max_false_abstention=0.2, folds=2)
    assert cal.min_relevance == 0.2  # the third lowest of ten
    assert cal.cross_validated.abstention == 0.0  # 0.95 is above every cut-off
