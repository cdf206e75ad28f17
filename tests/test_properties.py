"""Hostile and odd questions, generated and hand-picked, through the library, the page's
handlers and the command: every one gets an answer in the JSON contract or a clear bad-input
error, in bounded time, and nothing crashes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampere_qa.errors import BadInputError
from ampere_qa.qa.question import MAX_QUESTION_CHARS, clean_question
from ampere_qa.types import REASONS

from .conftest import ROOT

pytestmark = pytest.mark.integration

# One question through the model takes ~50 ms alone; allow for a loaded 2-core CI machine.
SECONDS_PER_CALL = 10.0
KEYS = {"question", "language", "answered", "answer", "citations", "short_answer", "understood"}
SHORT_KEYS = {"text", "rank", "start", "end"}
CITATION_KEYS = {"rank", "passage_id", "source", "start", "end", "text", "score", "context"}
_SOURCES: dict[str, str] = {}

HTML_JS = ["<script>alert(1)</script>Qui dirige Ampere ?", "<img src=x onerror=alert(1)>",
           "javascript:alert(document.cookie)", "{{7*7}} ${7*7} <%= 7*7 %>",
           '"><svg/onload=fetch("http://evil")>', "[x](javascript:alert(1)) **gras** $$x$$"]
SQL = ["'; DROP TABLE passages; --", "1 OR 1=1", "Qui dirige Ampere ?' UNION SELECT * FROM users --",
       "../../../../etc/passwd", "%00%2e%2e%2f", "file:///etc/passwd"]
RTL = ["من يدير أمبير؟", "מי מנהל את אמפר?", "\u202eQui dirige Ampere ?\u202c", "Ampere \u200f\u202b؟\u202c"]
OTHER_LANGUAGES = ["Wer leitet Ampere?", "¿Cuántos empleados tiene Ampere?", "安培公司有多少名员工？",
                   "Сколько инженеров работает в Ampere?", "Quanti dipendenti ha Ampere?"]
EMOJI = ["🚗⚡🔋", "Qui dirige Ampere ? 🤔👨‍💼", "👩🏽‍🔬" * 50, "🏳️‍🌈" * 30]
ODD = ["\x00", "\x00Qui dirige Ampere ?\x00", "\ud800", "Qui \udfff dirige Ampere ?", "\ufeff\u200b\u2060",
       " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u2029\u3000", "?", "a", "e" * MAX_QUESTION_CHARS,
       "Ｑｕｉ ｄｉｒｉｇｅ Ａｍｐｅｒｅ ？", "QUI DIRIGE AMPERE ?", "qui dirige ampere",
       "Z̷̢͈͓̈́a̴̛͔l̶̰̈g̸̤̅o̷̳͝ Ampere", "\U0010ffff\U000e0001", "\u0301\u0301\u0301"]
LONG = ["Qui dirige Ampere ? " * 5000, "x" * 100_000, "é" * (MAX_QUESTION_CHARS + 1), "🚗" * 100_000]
FIXED = HTML_JS + SQL + RTL + OTHER_LANGUAGES + EMOJI + ODD + LONG + ["", " ", "\n\n"]

_any_char = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))  # with lone surrogates
QUESTIONS = st.one_of(
    st.text(max_size=300),                                             # arbitrary Unicode
    st.lists(_any_char, max_size=80).map("".join),                     # ... with lone surrogates
    st.text(alphabet="\x00\x01\x07\x1b\x7f\x9f\t\n\r \x0b\x0c\xa0\u2028\u200b\ufeff", max_size=40),
    st.builds(lambda a, b, c: a + b + c, st.text(max_size=20),
              st.sampled_from(HTML_JS + SQL + RTL + OTHER_LANGUAGES + EMOJI),
              st.text(max_size=20)),
    st.builds(lambda q, noise: q + noise,
              st.sampled_from(["Qui dirige Ampere ?", "How many engineers work for Ampere?"]),
              st.text(max_size=60)),
    st.integers(MAX_QUESTION_CHARS - 5, 100_000).map(lambda n: ("Ampere ? " * (n // 9 + 1))[:n]),
)


def _source(name: str) -> str:
    if name not in _SOURCES:
        _SOURCES[name] = (ROOT / name).read_text(encoding="utf-8")
    return _SOURCES[name]


def assert_contract(obj: Any) -> None:
    """The JSON of ``ask --json`` and ``/ask``: keys, types, citations that round-trip."""
    assert isinstance(obj, dict) and set(obj) == (KEYS if obj.get("answered") else KEYS | {"reason"}), obj
    assert obj["answered"] or obj["reason"] in REASONS
    short = obj["short_answer"]
    if short is not None:
        assert set(short) == SHORT_KEYS and obj["answered"] and obj["answer"].startswith(short["text"])
        cited = obj["citations"][short["rank"] - 1]
        assert _source(cited["source"])[short["start"]:short["end"]] == short["text"]
    assert isinstance(obj["question"], str) and obj["question"].strip()
    assert isinstance(obj["language"], str) and obj["language"]
    assert isinstance(obj["answered"], bool)
    assert isinstance(obj["answer"], str) and obj["answer"]
    assert isinstance(obj["citations"], list)
    assert bool(obj["citations"]) == obj["answered"]
    json.dumps(obj, ensure_ascii=False).encode("utf-8")  # printable: no lone surrogates left
    for n, c in enumerate(obj["citations"], start=1):
        assert set(c) == CITATION_KEYS and c["rank"] == n
        assert f"[{n}]" in obj["answer"]
        assert all(isinstance(c[k], str) for k in ("passage_id", "source", "text"))
        assert isinstance(c["start"], int) and isinstance(c["end"], int) and isinstance(c["score"], float)
        assert _source(c["source"])[c["start"]:c["end"]] == c["text"]


def assert_clear_bad_input(exc: BaseException) -> None:
    msg = str(exc)
    assert msg and "\n" not in msg and len(msg) < 200, msg
    assert "empty" in msg or f"limit is {MAX_QUESTION_CHARS}" in msg, msg


def check_everywhere(retriever: Any, question: str) -> None:
    """Library, page handler and API handler agree on one question."""
    from ampere_qa.web import api_answer, chat_reply

    t0 = time.perf_counter()
    try:
        expected = clean_question(question)
    except BadInputError as exc:
        expected = None
        assert_clear_bad_input(exc)
        with pytest.raises(BadInputError):
            retriever.answer(question)
    else:
        obj = retriever.answer(question).to_dict()
        assert_contract(obj)
        assert obj["question"] == expected
    assert time.perf_counter() - t0 < SECONDS_PER_CALL

    t0 = time.perf_counter()
    user, bot = chat_reply(retriever, question)
    assert time.perf_counter() - t0 < SECONDS_PER_CALL
    assert isinstance(bot, str) and bot.startswith("<div")
    assert "<script" not in bot.lower() and "<img" not in bot.lower() and "<svg" not in bot.lower()
    assert "erreur inattendue" not in bot and "something unexpected" not in bot  # no crash inside
    if user is not None:  # the echo is inert text, at most wrapped in a span naming its language
        inner = re.sub(r'^<span lang="[\w-]+">(.*)</span>$', r"\1", user)
        assert "<" not in inner and ">" not in inner
    if expected is None:
        assert "<mark>" not in bot  # refused, with a notice instead of an answer

    import gradio as gr

    try:
        api = api_answer(retriever, question, 3)
    except gr.Error as exc:
        assert expected is None
        assert_clear_bad_input(exc.message)
    else:
        assert expected is not None
        assert_contract(api)


def _id(q: str) -> str:
    return repr(q[:24]) + (f"..{len(q)}" if len(q) > 24 else "")


@pytest.mark.parametrize("question", FIXED, ids=_id)
def test_hand_picked_hostile_questions(retriever, question):
    check_everywhere(retriever, question)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(question=QUESTIONS)
def test_generated_questions(retriever, question):
    check_everywhere(retriever, question)


def test_a_language_without_a_pack_is_answered_with_english_framing(retriever):
    # German has a pack (tests/test_packs.py); Italian does not.
    a = retriever.answer("Quanti ingegneri lavorano per Ampere e chi dirige l'azienda?")
    assert a.language == "it" and a.reply_language == "en"
    assert "According to the article" in a.answer or a.reason is not None


# --- the command ------------------------------------------------------------------------------

@pytest.fixture
def cli_runner(real_embedder, monkeypatch):
    """``ampere-qa`` in-process with the session's model (loading it per call would take seconds)."""
    from click.testing import CliRunner

    from ampere_qa import search
    from ampere_qa.cli import cli

    monkeypatch.setattr(search, "load_embedder", lambda *a, **k: real_embedder)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def check_cli(invoke: Any, question: str) -> None:
    t0 = time.perf_counter()
    result = invoke("ask", question, "--json")
    assert time.perf_counter() - t0 < SECONDS_PER_CALL
    try:
        clean_question(question)
    except BadInputError:
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: the question"), result.stderr
    else:
        assert result.exit_code == 0, result.stderr
        assert_contract(json.loads(result.stdout))  # exactly one JSON object


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(question=QUESTIONS)
def test_generated_questions_through_the_command(cli_runner, question):
    check_cli(cli_runner, question)


@pytest.mark.parametrize("question", HTML_JS[:2] + SQL[:2] + RTL[:2] + EMOJI[:2] + ODD[:4] + LONG[:2] + [""],
                         ids=lambda q: repr(q[:20]))
def test_hand_picked_questions_through_the_command(cli_runner, question):
    check_cli(cli_runner, question)


def test_odd_arguments_through_a_real_process(model_cache):
    """What only a real process sees: argv bytes that are not UTF-8 (Python hands them over as
    lone surrogates) and a 100,000-character argument."""
    cases: list[tuple[bytes, int, str]] = [
        (b"\xff\xfe Qui dirige Ampere ?", 0, "Luca de Meo"),
        ("🚗⚡ Who leads Ampere? מי".encode(), 0, '"answered"'),
        (b"a" * 100_000, 2, "limit is 1000"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "AMPERE_QA_CACHE": str(model_cache), "LC_ALL": "C.UTF-8"}

    def ask(arg: bytes) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable.encode(), b"-m", b"ampere_qa", b"ask", arg, b"--json"],
                              capture_output=True, cwd=ROOT, env=env, timeout=300)

    with ThreadPoolExecutor(len(cases)) as pool:
        procs = list(pool.map(ask, [c[0] for c in cases]))
    for (_, code, fragment), proc in zip(cases, procs, strict=True):
        out, err = proc.stdout.decode(), proc.stderr.decode()
        assert proc.returncode == code and "Traceback" not in err, err
        if code == 0:
            assert_contract(json.loads(out))
            assert fragment in out
        else:
            assert out == "" and fragment in err and len(err.strip().splitlines()) == 1
