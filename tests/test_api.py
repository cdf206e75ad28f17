"""The JSON API and the OpenAI-compatible endpoint, through real HTTP against ``python app.py``
(httpx, the official ``openai`` client, and the README's own curl lines run by bash)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ampere_qa import types

from .conftest import CORPUS, ROOT
from .serving import index_for, running_server

ARTICLE_TEXT = (CORPUS / "renault-ampere-article.txt").read_text(encoding="utf-8")

pytestmark = pytest.mark.integration

FR = "Qui dirige Ampere ?"
EN = "How many engineers work for Ampere?"


@pytest.fixture(scope="module")
def server(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("api")
    log = tmp / "server.log"
    with running_server(index_for(tmp), log_path=log) as (_, url):
        yield url.rstrip("/"), log


@pytest.fixture(scope="module")
def http(server):
    import httpx

    with httpx.Client(base_url=server[0], timeout=30) as client:
        yield client


def _check_answer(result: dict, expected: str) -> None:
    assert list(result) == list(types.ANSWER_KEYS)  # answered: no "reason"
    assert result["answered"] is True and expected in result["answer"]
    for c in result["citations"]:
        assert list(c) == list(types.CITATION_KEYS)
        assert ARTICLE_TEXT[c["start"]:c["end"]] == c["text"]


def test_ask_is_one_request_with_exactly_the_answer_json(http, server):
    from gradio_client import Client

    r = http.post("/api/ask", json={"question": FR})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    _check_answer(r.json(), "Luca de Meo")
    # The same JSON as the page's /ask endpoint and `ampere-qa ask --json`.
    assert r.json() == Client(server[0] + "/", verbose=False).predict(FR, api_name="/ask")
    en = http.post("/api/ask", json={"question": EN, "k": 1}).json()
    _check_answer(en, "ingénieurs")
    assert len(en["citations"]) == 1
    follow = http.post("/api/ask", json={"question": "Et où ?",
                                         "history": ["Combien de salariés compte Ampere ?"]}).json()
    assert follow["understood"] and "France" in follow["answer"]
    off = http.post("/api/ask", json={"question": "What is the capital of Australia?"}).json()
    assert off["answered"] is False and off["reason"] == "off_topic"


@pytest.mark.parametrize(("body", "where"), [
    ({"question": 3}, ["body", "question"]),
    ({"question": FR, "k": "3"}, ["body", "k"]),
    ({"question": FR, "k": 0}, ["body", "k"]),
    ({"question": FR, "k": 51}, ["body", "k"]),
    ({"question": FR, "k": 2.5}, ["body", "k"]),
    ({"question": FR, "history": "Qui ?"}, ["body", "history"]),
    ({"question": FR, "history": [1]}, ["body", "history", 0]),
    ({"question": FR, "history": ["q"] * 51}, ["body", "history"]),
    ({"question": FR, "colour": "blue"}, ["body", "colour"]),
    ({"question": "x" * 9000}, ["body", "question"]),
    ({}, ["body", "question"]),
])
def test_bad_payloads_get_a_422_that_names_the_field(http, body, where):
    r = http.post("/api/ask", json=body)
    assert r.status_code == 422
    assert any(e["loc"] == where and e["msg"] for e in r.json()["detail"]), r.json()
    assert all("input" not in e for e in r.json()["detail"])  # the payload is not echoed back


@pytest.mark.parametrize(("question", "message"), [
    ("   ", "the question is empty"),
    ("Combien de salariés ? " * 60, "the limit is 1000"),
])
def test_questions_that_cannot_be_used_get_a_clear_422(http, question, message):
    r = http.post("/api/ask", json={"question": question})
    assert r.status_code == 422 and message in r.json()["detail"]


def test_malformed_and_oversized_bodies_are_refused(http):
    assert http.post("/api/ask", content=b"{not json",
                     headers={"Content-Type": "application/json"}).status_code == 422
    huge = json.dumps({"question": FR, "history": ["x" * 1000] * 1100})
    assert http.post("/api/ask", content=huge,
                     headers={"Content-Type": "application/json"}).status_code == 413
    assert http.get("/api/ask").status_code in (404, 405)


def test_no_traceback_in_the_server_log(http, server):
    for body in ({"question": None}, {"question": "   "}, {"question": FR, "k": -1}):
        http.post("/api/ask", json=body)
    http.post("/v1/chat/completions", json={"messages": []})
    log = server[1].read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_health_and_info_name_the_index_and_no_server_path(http):
    health = http.get("/api/health").json()
    assert health["ready"] is True and health["stale"] is False
    assert re.fullmatch(r"[0-9a-f]{16}", health["index"])
    info = http.get("/api/info").json()
    assert info["index"] == health["index"] and info["passages"] >= 5
    assert info["title"] == "Ampere Q&A"
    assert info["corpus_files"] == ["corpus/renault-ampere-article.txt"]
    shown = json.dumps(info)
    assert str(ROOT) not in shown and "/root" not in shown and ".cache" not in shown


def test_openapi_and_docs_are_served_without_any_cdn(http, server):
    schema = http.get("/api/openapi.json").json()
    assert {"/api/ask", "/api/health", "/api/info", "/v1/chat/completions", "/v1/models"} <= \
        set(schema["paths"])
    answer = schema["components"]["schemas"]["AnswerOut"]["properties"]
    assert set(answer) == set(types.ANSWER_KEYS) | {"reason"}  # the documented schema is the JSON
    assert set(schema["components"]["schemas"]["Hit"]["properties"]) == set(types.CITATION_KEYS)
    assert set(schema["components"]["schemas"]["ShortAnswer"]["properties"]) == \
        set(types.SHORT_ANSWER_KEYS)
    docs = http.get("/api/docs")
    assert docs.status_code == 200 and "<script" not in docs.text
    assert "/api/ask" in docs.text and f"{server[0]}/api/ask" in docs.text
    foreign = [u for u in re.findall(r"(?:src|href)=['\"]([^'\"]+)", docs.text)
               if u.startswith(("http:", "https:", "//")) and not u.startswith(server[0])]
    assert foreign == []
    assert "'self'" in docs.headers["content-security-policy"]


def test_the_docs_page_commands_work_as_shown(http, server):
    """Each command of /api/docs, pasted into bash, returns an answer (Gradio's own snippet
    ends in `| read EVENT_ID`, which sets nothing in bash)."""
    import html as html_lib

    page = http.get("/api/docs").text
    commands = [html_lib.unescape(c) for c in re.findall(r"<pre><code>(.*?)</code></pre>", page, re.S)]
    assert len(commands) == 4
    for command in commands:
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "Luca de Meo" in out.stdout or "France" in out.stdout, (command, out.stdout[:500])


def test_the_readme_curl_line_works(server):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for line in readme.splitlines() if line.startswith("curl ") and "/api/ask" in line]
    assert lines, "the README shows a curl line for /api/ask"
    for line in lines:
        command = line.split("  #")[0].replace("http://127.0.0.1:7860", server[0])
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and json.loads(out.stdout)["answered"] is True, out


# --- the OpenAI protocol ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def openai_client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)


def test_openai_client_lists_the_model_and_gets_an_answer(openai_client):
    assert [m.id for m in openai_client.models.list()] == ["ampere-qa"]
    reply = openai_client.chat.completions.create(
        model="ampere-qa", messages=[{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": FR}])
    content = reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.role == "assistant"
    assert content.startswith("Luca de Meo") and "[1]" in content
    assert "\n[1] corpus/renault-ampere-article.txt, 242\u2013754: Luca de Meo" in content
    extra = reply.model_extra["ampere_qa"]  # the structured answer beside the text
    _check_answer(extra, "Luca de Meo")


def test_openai_client_streams_the_same_answer(openai_client):
    messages = [{"role": "user", "content": "Combien de salariés compte Ampere ?"},
                {"role": "assistant", "content": "11 000 — …"},
                {"role": "user", "content": [{"type": "text", "text": "Et où ?"}]}]
    whole = openai_client.chat.completions.create(model="ampere-qa", messages=messages)
    chunks = list(openai_client.chat.completions.create(model="ampere-qa", messages=messages,
                                                        stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == whole.choices[0].message.content and "France" in streamed
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["ampere_qa"]["understood"]  # a follow-up, resolved


def test_the_stream_ends_with_done(http):
    with http.stream("POST", "/v1/chat/completions", json={
            "messages": [{"role": "user", "content": EN}], "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert all(json.loads(e[6:])["object"] == "chat.completion.chunk" for e in events[:-1])


@pytest.mark.parametrize("body", [
    {"messages": []},
    {"messages": [{"role": "assistant", "content": "hi"}]},
    {"messages": [{"role": "robot", "content": FR}]},
    {"messages": [{"role": "user", "content": FR}], "n": 2},
    {"messages": "Qui ?"},
])
def test_bad_chat_requests_get_a_422(http, body):
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 422 and r.json()["detail"]


# --- the worker pool, without a server -------------------------------------------------------

def test_the_pool_refuses_rather_than_queueing_without_end():
    from fastapi import HTTPException

    from ampere_qa.web.api import Pool

    async def scenario() -> tuple[list[object], int]:
        pool = Pool(workers=1, max_waiting=1)
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()

        def slow() -> str:
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(5)
            return "done"

        first = asyncio.create_task(pool.run(slow))
        second = asyncio.create_task(pool.run(slow))
        await asyncio.sleep(0.05)
        with pytest.raises(HTTPException) as refused:
            await pool.run(slow)
        gate.set()
        results = await asyncio.gather(first, second)
        pool.close()
        return results, refused.value.status_code

    results, status = asyncio.run(scenario())
    assert results == ["done", "done"] and status == 503
