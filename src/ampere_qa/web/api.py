"""The plain JSON API and the OpenAI-compatible chat endpoint, on the page's own server.

One request, one JSON reply, for any HTTP client::

    POST /api/ask               {"question": "...", "k": 3, "history": ["..."]} -> Answer.to_dict()
    GET  /api/health            ready, the index's fingerprint, stale or not
    GET  /api/info              what the index holds (no server path)
    GET  /api/openapi.json      the OpenAPI description; /api/docs renders it as plain HTML
    POST /v1/chat/completions   the OpenAI chat-completions protocol, streaming or not
    GET  /v1/models             the one "model" the server offers

Questions run in a bounded pool of worker threads, not in Gradio's queue; when it is full the
reply is a 503 with Retry-After rather than a wait without end. Requests are pydantic models:
a wrong type or size is a 422 that says which field and why (bounded, the input never echoed),
never a traceback in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ..errors import AmpereError, BadInputError
from ..qa.question import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS
from ..types import REASONS, Hit, ShortAnswer
from ..version import __version__
from .apidocs import docs_html

if TYPE_CHECKING:
    from ..search import Retriever
    from ..types import Answer

log = logging.getLogger(__name__)

# Questions answered at once: one per core (each encodes on one thread; see server._warm_up).
# Measured on 2 cores, 20 clients: 1 worker 18.5 q/s, 2 workers 28.0, 4 workers 17.7.
WORKERS = min(8, os.cpu_count() or 2)
# Questions that may wait for a worker before the server answers 503 (Retry-After: 1).
MAX_WAITING = 64
RETRY_AFTER_S = 1
# What a request may hold besides the question (whose limit clean_question enforces on the
# text as typed, with its own message): the raw text is bounded too, and so is the history.
MAX_RAW_QUESTION_CHARS = 8 * MAX_QUESTION_CHARS
MAX_HISTORY_ITEMS = 50
MAX_MESSAGES = 100
# What a 422 shows of a request's validation errors: the first errors, each part of them cut at
# a length that names any of our fields and messages; a location may hold the request's own
# keys, so nothing of the input comes back longer than this, whatever was sent.
MAX_ERRORS_SHOWN = 10
MAX_ERROR_PART_CHARS = 120
# The OpenAI "model" name the server answers to (any name is accepted in requests).
MODEL_ID = "ampere-qa"

T = TypeVar("T")
Question = Annotated[str, Field(max_length=MAX_RAW_QUESTION_CHARS)]


class AskRequest(BaseModel):
    """``POST /api/ask``: the question, how many excerpts, the earlier questions."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: Question = Field(description="The question, in French or English "
                               f"(at most {MAX_QUESTION_CHARS} characters as typed).")
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K, description="Passages to draw the answer from.")
    history: list[Question] = Field(
        default_factory=list, max_length=MAX_HISTORY_ITEMS,
        description="The user's earlier questions, oldest first, for follow-ups.")


class AnswerOut(BaseModel):
    """The reply: exactly ``ampere-qa ask --json`` (documented here; ``reason`` is present only
    when ``answered`` is false)."""

    question: str
    language: str
    answered: bool
    answer: str
    # The library's own dataclasses: the schema cannot drift from the JSON they produce.
    citations: list[Hit]
    short_answer: ShortAnswer | None
    understood: str | None = Field(description="The question as read in the conversation, "
                                   "when it differs from the question typed.")
    reason: Literal[REASONS] | None = Field(  # type: ignore[valid-type]
        None, description="Why there is no answer (only when answered is false).")


class Health(BaseModel):
    ready: bool
    index: str = Field(description="Fingerprint of the index being served (its manifest).")
    stale: bool | None = Field(description="Whether the corpus changed since the build "
                               "(null when the corpus is not there to compare).")
    version: str


class Part(BaseModel):
    """One part of a message's content (OpenAI's list form); only text parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = Field(None, max_length=MAX_RAW_QUESTION_CHARS)


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Annotated[str, Field(max_length=MAX_RAW_QUESTION_CHARS)] | list[Part] | None = None


class ChatRequest(BaseModel):
    """The OpenAI chat-completions request. Sampling options (temperature...) are accepted and
    ignored: answers are quotes, not samples."""

    model_config = ConfigDict(extra="allow")

    model: str = MODEL_ID
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: StrictBool = False  # JSON true or false: "yes", 1 or "true" are errors, not true
    n: int = Field(1, ge=1, le=1, description="One choice only.")


class Pool:
    """A bounded pool of worker threads, with a bounded number of callers waiting for it."""

    def __init__(self, workers: int = WORKERS, max_waiting: int = MAX_WAITING):
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ampere-qa-api")
        self._limit = workers + max_waiting
        self._pending = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pending >= self._limit:
            raise HTTPException(503, "the server is busy: retry in a moment",
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        self._pending += 1  # only touched on the event loop's thread
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _answer(retriever: Retriever, question: str, k: int, history: list[str]) -> Answer:
    return retriever.answer(question, k=k, history=history)


async def _answered(pool: Pool, retriever: Retriever, question: str, k: int,
                    history: list[str]) -> Answer:
    """The answer, or an HTTPException with a message for the caller (never a traceback)."""
    try:
        return await pool.run(_answer, retriever, question, k, history)
    except BadInputError as exc:
        raise HTTPException(422, str(exc)) from None
    except AmpereError as exc:
        log.error("API question failed: %s", exc)
        raise HTTPException(500, str(exc)) from None
    except HTTPException:
        raise
    except Exception:
        log.exception("API question failed")
        raise HTTPException(500, "unexpected server error; please try again") from None


# --- the OpenAI protocol ---------------------------------------------------------------------

def _text(message: Message) -> str:
    if isinstance(message.content, list):
        return " ".join(p.text for p in message.content if p.type == "text" and p.text)
    return message.content or ""


def conversation(messages: list[Message]) -> tuple[str, list[str]]:
    """The question (the last user message) and the earlier user messages, oldest first."""
    users = [_text(m) for m in messages if m.role == "user"]
    if messages[-1].role != "user" or not users:
        raise HTTPException(422, "the last message must be the user's question")
    return users[-1], users[:-1]


def chat_content(answer: Answer) -> str:
    """The reply's text: the answer with its [n] markers, then the numbered excerpts cited."""
    lines = [answer.answer]
    if answer.citations:
        lines.append("")
        for c in answer.citations:
            lines.append(f"[{c.rank}] {c.source}, {c.start}\u2013{c.end}: {c.text}")
    return "\n".join(lines)


def _completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": chat_content(answer),
                                 "refusal": None}}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        # Not in OpenAI's protocol: the structured answer (ampere-qa ask --json).
        "ampere_qa": answer.to_dict(),
    }


# Characters per streamed chunk: the answer exists whole; chunks only let a client show it as
# it would a model's reply.
STREAM_CHUNK_CHARS = 64


def _chunks(answer: Answer, model: str) -> Iterator[dict[str, Any]]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}
    content = chat_content(answer)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                     "logprobs": None}]}

    yield chunk({"role": "assistant", "content": ""})
    for i in range(0, len(content), STREAM_CHUNK_CHARS):
        yield chunk({"content": content[i:i + STREAM_CHUNK_CHARS]})
    yield {**chunk({}, "stop"), "ampere_qa": answer.to_dict()}


async def _sse(answer: Answer, model: str) -> AsyncIterator[bytes]:
    for c in _chunks(answer, model):
        yield f"data: {json.dumps(c, ensure_ascii=False)}\n\n".encode()
    yield b"data: [DONE]\n\n"


# --- the routes ------------------------------------------------------------------------------

def index_id(retriever: Retriever) -> str:
    """A short fingerprint of the index being served: the hash of its manifest."""
    import hashlib

    canonical = json.dumps(retriever.manifest, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def public_info(retriever: Retriever, index: str) -> dict[str, Any]:
    """What ``GET /api/info`` shows: the index's summary without any server path; ``index`` is
    its :func:`index_id`."""
    m = retriever.data.manifest
    return {
        "title": retriever.page.title,
        "version": __version__,
        "index": index,
        "built_at": m.built_at,
        "model": m.model_name,
        "passages": m.passage_count,
        "sentences": m.sentence_count,
        "dimension": m.dimension,
        "corpus_files": [f.get("source") for f in m.corpus.files],
        "store": m.store_kind,
        "stale": retriever.stale_status(),
    }


class Problem(BaseModel):
    detail: str | list[dict[str, Any]]


_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "The request body is over 1 MiB."},
    422: {"model": Problem, "description": "A field has the wrong type or size, or the question "
          "cannot be used (empty, too long): `detail` says which and why."},
    503: {"model": Problem, "description": "Too many questions waiting: retry after "
          "`Retry-After` seconds."},
}
_ASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": AnswerOut, "description": "Exactly the JSON of `ampere-qa ask --json`."},
    **_ERRORS,
}


def _cut(part: object) -> object:
    return part if isinstance(part, int) else str(part)[:MAX_ERROR_PART_CHARS]


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """The 422 of a request that fails validation: FastAPI's shape (``{"detail": [{"loc", "msg",
    "type"}]}``), bounded, without the input FastAPI echoes (it may be a megabyte of someone's
    text). The server installs it on Gradio's app too."""
    errors = [{"loc": [_cut(p) for p in e.get("loc", ())], "msg": _cut(e.get("msg", "")),
               "type": _cut(e.get("type", ""))} for e in exc.errors()[:MAX_ERRORS_SHOWN]]
    return JSONResponse({"detail": errors}, status_code=422)


# The routes, as the security middleware lists them (everything else on the server is the page).
API_GET_ROUTES = ("/api/health", "/api/info", "/api/openapi.json", "/api/docs", "/v1/models")
API_POST_ROUTES = ("/api/ask", "/v1/chat/completions")
OPENAPI_URL = "/api/openapi.json"


def new_app() -> FastAPI:
    """The server's FastAPI app: the API's OpenAPI description at OPENAPI_URL, and no
    Swagger or ReDoc page (they load their scripts from a CDN); /api/docs is plain HTML."""
    return FastAPI(title="ampere-qa", version=__version__, docs_url=None, redoc_url=None,
                   openapi_url=OPENAPI_URL,
                   description="Questions about the corpus, answered with cited excerpts.")


def add_api(app: FastAPI, retriever: Retriever) -> Pool:
    """Add the JSON API and the OpenAI-compatible routes to ``app`` (see :func:`new_app`),
    before the page is mounted on it; returns the worker pool, for the server to close."""
    pool = Pool()
    index = index_id(retriever)  # a loaded index does not change: hashed once

    app.exception_handler(RequestValidationError)(invalid_request)

    router = APIRouter()

    @router.post("/api/ask", summary="Answer a question with cited excerpts",
                 response_class=JSONResponse, responses=_ASK_RESPONSES)
    async def ask(request: AskRequest) -> JSONResponse:
        answer = await _answered(pool, retriever, request.question, request.k, request.history)
        return JSONResponse(answer.to_dict())

    # Plain functions, not coroutines: the staleness check reads the corpus folder, so FastAPI
    # runs them in its thread pool rather than on the event loop.
    @router.get("/api/health", summary="Whether the server is ready, and which index it serves")
    def health() -> Health:
        return Health(ready=True, index=index, stale=retriever.stale_status(), version=__version__)

    @router.get("/api/info", summary="What the index holds")
    def info() -> dict[str, Any]:
        return public_info(retriever, index)

    @router.get("/api/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi(), str(request.base_url).rstrip("/")))

    @router.get("/v1/models", summary="The model list (OpenAI protocol)")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0,
                                            "owned_by": "ampere-qa"}]}

    @router.post("/v1/chat/completions", summary="Chat completions (OpenAI protocol)",
                 response_model=None, responses=_ERRORS)
    async def completions(request: ChatRequest) -> dict[str, Any] | StreamingResponse:
        question, history = conversation(request.messages)
        answer = await _answered(pool, retriever, question, DEFAULT_K, history)
        if request.stream:
            return StreamingResponse(_sse(answer, request.model), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return _completion(answer, request.model)

    app.include_router(router)
    return pool
