"""The web page: a chat over the article, with cited excerpts, plus an HTTP API for other apps.

Gradio is imported only here (``import ampere_qa`` never loads it)::

    from ampere_qa.web import serve
    serve("index", host="127.0.0.1", port=7860)

The API endpoint is ``/ask``; it returns exactly ``Answer.to_dict()``::

    from gradio_client import Client
    Client("http://127.0.0.1:7860/").predict("Qui dirige Ampere ?", api_name="/ask")

Everything that comes from the user or the corpus is shown as text: it is HTML-escaped and
its Markdown-significant characters are turned into character references before it goes into
the chat, and the chat sanitises HTML on top of that.

:func:`serve` puts :class:`SecurityMiddleware` in front of the whole Gradio app: only the routes
the page and the API use are reachable (no upload, no file served from disk but the page's own
assets), request bodies are limited to 1 MiB, the ``Host`` header must name the server when it
listens on loopback (``AMPERE_QA_ALLOWED_HOSTS`` adds names), and every response carries a
Content-Security-Policy and the other security headers.
"""

from __future__ import annotations

import base64
import hashlib
import html
import inspect
import ipaddress
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer import Answer
from .embedding import SentenceTransformerEmbedder
from .errors import AmpereError, BadInputError, EmptyQuestionError, QuestionTooLongError
from .manifest import stale_warning
from .language import detect
from .question import DEFAULT_K, MAX_QUESTION_CHARS, clean_question, parse_k
from .search import Retriever

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

# Concurrent events the server runs at once. One question costs ~50 ms of CPU (the encoder
# releases the GIL), so on a 2-core machine a few in flight keep both cores busy without
# thrashing; the rest wait in a bounded queue instead of being refused or piling up.
CONCURRENCY_LIMIT = 4
QUEUE_MAX_SIZE = 64
# Longest question text echoed back in the chat when the question is refused as too long.
_ECHO_CHARS = 300

# Largest request body the server reads. A question is at most 1,000 characters (4 KB of UTF-8,
# 24 KB as JSON \u escapes) and the page sends a few KB of chat history with it: 1 MiB is
# plenty, and it keeps a client from making the server hold hundreds of MB.
MAX_BODY_BYTES = 1 << 20
# Host names that always reach this machine: accepting them cannot enable DNS rebinding.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ALLOWED_HOSTS_ENV = "AMPERE_QA_ALLOWED_HOSTS"
# What the page may load: its own scripts (plus its inline scripts, by hash, added per
# response), inline styles (Svelte sets style attributes and the theme injects <style>),
# data:/blob: images and fonts; nothing from another origin, no plugins, never framed.
_CSP = ("default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data: blob:; "
        "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'")
_SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),  # for browsers without CSP frame-ancestors
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# The only routes the page (in a browser) and the API (gradio_client, the REST calls) use:
# page, config, theme and Gradio's own built assets; API info; the queue, its event streams and
# heartbeats; /run for the page's unqueued events, /call for REST callers. Everything else Gradio
# mounts (uploads, /file=, /proxy=, streams, monitoring, custom components, ...) gets a 404, so a
# route added by a future Gradio is closed until it is listed here.
_GET_ROUTES = re.compile(
    r"/(?:config|theme\.css|favicon\.ico|manifest\.json|robots\.txt|assets/.+|static/.+"
    r"|gradio_api/(?:info|queue/data|heartbeat/[\w-]+"
    r"|call/(?:v2/)?[\w-]+/[\w-]+))?/?"
)
_POST_ROUTES = re.compile(
    r"/gradio_api/(?:queue/join|run/[\w-]+|call/(?:v2/)?[\w-]+|cancel|reset)/?"
)

EXAMPLES = [
    "Qui dirige Ampere ?",
    "Combien de salariés compte Ampere ?",
    "How many engineers work for Ampere?",
    "Where are Ampere's sites located?",
]

_UI = {
    "fr": {
        "language": "Langue détectée : {name}",
        "chars": "caractères",
        "excerpts": "Extraits cités",
        "empty": "Posez une question sur l'article.",
        "too_long": ("Votre question fait {n} caractères ; la limite est de {limit}. "
                     "Raccourcissez-la, s'il vous plaît."),
        "bad": "Je ne peux pas traiter cette question : {msg}.",
        "error": ("Désolé, une erreur inattendue s'est produite. "
                  "Réessayez dans un instant."),
    },
    "en": {
        "language": "Detected language: {name}",
        "chars": "characters",
        "excerpts": "Cited excerpts",
        "empty": "Please type a question about the article.",
        "too_long": ("Your question is {n} characters long; the limit is {limit}. "
                     "Please shorten it."),
        "bad": "I cannot use this question: {msg}.",
        "error": "Sorry, something unexpected went wrong. Please try again in a moment.",
    },
}
_NAMES = {"fr": {"fr": "français", "en": "anglais"}, "en": {"fr": "French", "en": "English"}}

CSS = """
.aqa-lang { font-size: 0.85em; opacity: 0.75; margin-bottom: 0.4em; }
.aqa-answer { margin: 0.2em 0 0.6em 0; }
.aqa-marker { font-weight: 600; }
.aqa-excerpt { border-left: 3px solid #d4d4d8; padding: 0.3em 0.7em; margin: 0.5em 0; }
.aqa-source { font-size: 0.85em; opacity: 0.8; margin-bottom: 0.2em; }
.aqa-excerpt mark { background: #fde68a; color: inherit; padding: 0 0.1em; }
.aqa-stale { border: 1px solid #f59e0b; background: #fffbeb; color: #92400e; padding: 0.5em 0.8em;
             border-radius: 6px; }
.aqa-excerpts-title { font-size: 0.85em; font-weight: 600; opacity: 0.8; margin-top: 0.6em; }
"""

# Characters Markdown (and the chat's LaTeX/autolink handling) could give a meaning to.
_MD_SPECIAL = set("\\`*_{}[]()#+-.!|~$:@^=")
_MARKER = re.compile(r"(\[\d+\])")
_EN_DASH = "\u2013"


def text_to_html(text: str) -> str:
    """``text`` as inert HTML: escaped, Markdown characters as references, newlines as <br>."""
    text = text.replace("\r\n", "\n")
    out = [f"&#{ord(ch)};" if ch in _MD_SPECIAL else html.escape(ch, quote=True) for ch in text]
    return "".join(out).replace("\n", "<br>")


def _highlighted(text: str, spans: tuple[tuple[int, int], ...]) -> str:
    parts, pos = [], 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(text))
        if start >= end:
            continue
        parts.append(text_to_html(text[pos:start]))
        parts.append(f"<mark>{text_to_html(text[start:end])}</mark>")
        pos = end
    parts.append(text_to_html(text[pos:]))
    return "".join(parts)


def language_line(code: str, reply: str) -> str:
    """"Langue détectée : français", "Detected language: English", or for another language
    "Detected language: de — answering in English"."""
    ui = _UI[reply]
    if code in _NAMES[reply]:
        return ui["language"].format(name=_NAMES[reply][code])
    answering = {"fr": "réponse en français", "en": "answering in English"}[reply]
    return f"{ui['language'].format(name=code)} — {answering}"


def render_answer(result: Answer) -> str:
    """The assistant message: language, answer with [n] markers, then the cited excerpts."""
    reply = result.reply_language if result.reply_language in _UI else "en"
    ui = _UI[reply]
    answer = "".join(
        f'<span class="aqa-marker">{text_to_html(part)}</span>' if _MARKER.fullmatch(part)
        else text_to_html(part)
        for part in _MARKER.split(result.answer)
    )
    blocks = [
        f'<div class="aqa-lang">{text_to_html(language_line(result.language, reply))}</div>',
        f'<div class="aqa-answer">{answer}</div>',
    ]
    if result.citations:
        blocks.append(f'<div class="aqa-excerpts-title">{text_to_html(ui["excerpts"])}</div>')
    for c in result.citations:
        where = f"[{c.rank}] {c.source}, {ui['chars']} {c.start}{_EN_DASH}{c.end}"
        blocks.append(
            '<div class="aqa-excerpt">'
            f'<div class="aqa-source">{text_to_html(where)}</div>'
            f'<div class="aqa-text">{_highlighted(c.text, c.highlights)}</div>'
            "</div>"
        )
    return "".join(blocks)


def stale_notice(retriever: Retriever) -> str:
    """The warning shown above the chat when the corpus changed since the index was built ("" if not)."""
    try:
        stale = retriever.is_stale()
    except Exception:  # the check reads the corpus folder; never let it break the page
        log.exception("checking whether the index is stale failed")
        stale = None
    if not stale:
        return ""
    # Visitors may be anywhere: the notice names no server path; the server's log has the
    # command that rebuilds (serve prints it at start).
    text = ("⚠ L'article a changé depuis la construction de l'index : les réponses peuvent être "
            "dépassées. · The corpus changed since the index was built: answers may be out of "
            "date until the index is rebuilt (ampere-qa build; see the server log).")
    return f'<div class="aqa-stale" role="alert">{text_to_html(text)}</div>'


def _notice(text: str) -> str:
    return f'<div class="aqa-answer">{text_to_html(text)}</div>'


def _reply_language(text: str) -> str:
    try:
        return detect(text[:2 * MAX_QUESTION_CHARS]).reply
    except Exception:  # detection is a nicety here; never let it break the reply
        return "en"


def chat_reply(retriever: Retriever, question: str | None, k: int = DEFAULT_K) -> tuple[str | None, str]:
    """The (user, assistant) message HTML for one question; never raises.

    ``user`` is None when there is nothing to echo (an empty question).
    """
    question = question if isinstance(question, str) else ""
    squeezed = " ".join(question.split())
    if not squeezed:
        both = f"{_UI['fr']['empty']} / {_UI['en']['empty']}"
        return None, _notice(both)
    reply = _reply_language(squeezed)
    try:
        clean_question(question)
    except QuestionTooLongError as exc:
        echo = squeezed[:_ECHO_CHARS] + "…"
        msg = _UI[reply]["too_long"].format(n=exc.length, limit=MAX_QUESTION_CHARS)
        return text_to_html(echo), _notice(msg)
    except EmptyQuestionError:
        return text_to_html(squeezed), _notice(_UI[reply]["empty"])
    except BadInputError as exc:
        return text_to_html(squeezed), _notice(_UI[reply]["bad"].format(msg=str(exc)))
    user = text_to_html(squeezed)
    try:
        return user, render_answer(retriever.answer(question, k=k))
    except BadInputError as exc:
        return user, _notice(_UI[reply]["bad"].format(msg=str(exc)))
    except Exception:
        log.exception("answering %r failed", squeezed[:200])
        return user, _notice(_UI[reply]["error"])


def api_answer(retriever: Retriever, question: str, k: object = DEFAULT_K) -> dict[str, Any]:
    """What ``/ask`` returns: ``Answer.to_dict()``, or a ``gr.Error`` with a clear message."""
    import gradio as gr

    def fail(message: str, title: str = "Bad input") -> gr.Error:
        # Expected failures: a message for the caller, no traceback in the server log.
        return gr.Error(message, title=title, print_exception=False)

    try:
        kk = parse_k(k)
    except BadInputError as exc:
        raise fail(str(exc)) from None
    try:
        return retriever.answer(question, k=kk).to_dict()
    except BadInputError as exc:
        raise fail(str(exc)) from None
    except AmpereError as exc:
        log.error("API question failed: %s", exc)
        raise fail(str(exc), "Error") from None
    except Exception:
        log.exception("API question failed")
        raise fail("unexpected server error; please try again", "Error") from None


def _gradio() -> Any:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # the page must not call home
    import gradio as gr

    return gr


def theme() -> Any:
    """The default look with system fonts: nothing is fetched from a font CDN."""
    gr = _gradio()
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def fill_defaults(fn: Callable[..., Any] | None, wanted: int, inputs: list[Any]) -> None:
    """Append to ``inputs`` the defaults of ``fn``'s parameters a caller left out.

    Gradio wants one value per input and fails with a bare ValueError (a traceback in the log,
    ``{"error": null}`` for the caller) when a REST call such as ``{"data": ["question"]}``
    leaves ``k`` out. A parameter with a default may be left out, as in a Python call (the
    Python client does it from /info); a missing required one is a clear error.
    """
    if fn is None or len(inputs) >= wanted:
        return
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != wanted:  # not one parameter per input: leave it to Gradio
        return
    for param in params[len(inputs):]:
        if param.default is inspect.Parameter.empty:
            raise BadInputError(f"the {param.name} is missing")
        inputs.append(param.default)


def carries_file(value: Any) -> bool:
    """Whether ``value`` holds something Gradio takes for a file reference (a dict with a
    ``path`` and a ``meta``), at any depth."""
    stack = [value]
    while stack:  # not recursive: a 1 MiB body can nest deeper than Python's stack
        item = stack.pop()
        if isinstance(item, dict):
            if "path" in item and "meta" in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _blocks_class() -> type[gr.Blocks]:
    """gr.Blocks that checks every event's inputs before Gradio processes them."""
    gr = _gradio()

    class Blocks(gr.Blocks):  # type: ignore[name-defined]
        def validate_inputs(self, block_fn: Any, inputs: list[Any]) -> None:
            # Gradio calls this before it touches the inputs, with the very list it then hands
            # to the function. Nothing here takes a file: Gradio would copy a referenced file
            # into its cache before the function could refuse it.
            try:
                if carries_file(inputs):
                    raise BadInputError("files are not accepted")
                fill_defaults(block_fn.fn, len(block_fn.inputs), inputs)
            except BadInputError as exc:
                raise gr.Error(str(exc), title="Bad input", print_exception=False) from None
            super().validate_inputs(block_fn, inputs)

    return Blocks


def create_app(retriever: Retriever) -> gr.Blocks:
    """The page (chat, examples, clear button) and the ``/ask`` API endpoint.

    Theme and CSS are given when the page is mounted (Gradio 6); :func:`serve` does that.
    """
    gr = _gradio()

    Messages = list[dict[str, str]]

    def respond(
        question: str, history: Messages | None, shown: list[Any] | None
    ) -> tuple[Messages, Messages, str]:
        # The history lives on the server (so a client cannot inject markup into it); an empty
        # chat on screen (cleared by the trash icon, even a moment ago) means a fresh start.
        history = list(history or []) if shown else []
        user, bot = chat_reply(retriever, question)
        if user is not None:
            history.append({"role": "user", "content": user})
        history.append({"role": "assistant", "content": bot})
        return history, history, ""

    def clear() -> tuple[Messages, Messages, str]:
        return [], [], ""

    def ask(question: str, k: int = DEFAULT_K) -> dict:
        """Answer a question from the article; returns the JSON of `ampere-qa ask --json`."""
        return api_answer(retriever, question, k)

    with _blocks_class()(title="Ampere Q&A") as demo:
        gr.Markdown(
            "## Ampere Q&A\n"
            "Posez une question sur l'article consacré à Ampere (Renault), en français ou en "
            "anglais : la réponse cite l'article. · Ask a question about the article on "
            "Renault's Ampere, in French or English: the answer quotes the article."
        )
        # Checked when the page is built and again on every page load, so a corpus changed while
        # serving is reported to the next visitor.
        first = stale_notice(retriever)
        stale = gr.HTML(first, visible=bool(first), elem_id="aqa-stale")
        history = gr.State([])
        chatbot = gr.Chatbot(
            label="Ampere Q&A",
            show_label=False,
            height=520,
            sanitize_html=True,
            render_markdown=True,
            latex_delimiters=[],
            allow_tags=False,
            feedback_options=None,
            buttons=["copy"],
            elem_id="aqa-chat",
        )
        with gr.Row():
            box = gr.Textbox(
                show_label=False,
                placeholder="Votre question… / Your question…",
                lines=1,
                max_lines=4,
                scale=5,
                autofocus=True,
                submit_btn=False,
                container=False,
                elem_id="aqa-question",
            )
            send = gr.Button("Envoyer / Send", variant="primary", scale=1, min_width=170,
                             elem_id="aqa-send")
            clear_btn = gr.Button("Effacer / Clear", scale=1, min_width=170, elem_id="aqa-clear")
        gr.Examples(examples=EXAMPLES, inputs=box, label="Exemples / Examples")

        outs = [chatbot, history, box]
        for trigger in (box.submit, send.click):
            trigger(respond, [box, history, chatbot], outs, api_visibility="private",
                    show_progress="minimal")
        clear_btn.click(clear, None, outs, api_visibility="private", queue=False)
        # The chat's own trash icon empties the chat: forget the history with it.
        chatbot.clear(clear, None, outs, api_visibility="private", queue=False)
        gr.api(ask, api_name="ask")

        def refresh_stale() -> Any:
            notice = stale_notice(retriever)
            return gr.HTML(notice, visible=bool(notice))

        demo.load(refresh_stale, None, stale, api_visibility="private", queue=False,
                  show_progress="hidden")
    return demo


# --- what stands in front of the page --------------------------------------------------------

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INLINE_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
_SRC_ATTRIBUTE = re.compile(rb"\ssrc\s*=", re.I)


def host_name(value: str) -> str:
    """The name in a Host header or a bind address, lower-cased, without port or brackets:
    ``LocalHost:7860`` -> ``localhost``, ``[::1]:7860`` -> ``::1``, ``::1`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        return value.partition(":")[0]
    return value


def _is_loopback(host: str) -> bool:
    name = host_name(host)
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:  # a name, not an address
        return False


def allowed_hosts_for(host: str, allowed_hosts: Iterable[str] | None) -> frozenset[str] | None:
    """The Host names a server bound to ``host`` answers to; None: any.

    ``allowed_hosts`` (when None: ``$AMPERE_QA_ALLOWED_HOSTS``, comma-separated) adds names, with
    or without a port; ``*`` turns the check off. Unconfigured, a loopback bind answers only to
    loopback names: otherwise a script on any web site could reach it through a DNS name rebound
    to 127.0.0.1. Any other bind (0.0.0.0, a LAN address) is reached by names we cannot know, so
    it checks nothing unless told. Loopback names are always accepted: they cannot be rebound.
    """
    if allowed_hosts is None:
        configured = os.environ.get(ALLOWED_HOSTS_ENV, "")
        allowed_hosts = [name for name in configured.split(",") if name.strip()] or None
    if allowed_hosts is None:
        return LOOPBACK_HOSTS if _is_loopback(host) else None
    names = {host_name(name) for name in allowed_hosts if name.strip()}
    return None if "*" in names else LOOPBACK_HOSTS | names


def route_allowed(method: str, path: str) -> bool:
    """Whether a request may reach Gradio at all (the routes the page and the API use)."""
    if ".." in path or "\\" in path:  # no path traversal attempt gets near a file route
        return False
    if method in ("GET", "HEAD"):
        return _GET_ROUTES.fullmatch(path) is not None
    return method == "POST" and _POST_ROUTES.fullmatch(path) is not None


class _BodyTooLarge(Exception):
    """Raised by receive() once a body passes the limit, so the app stops reading it."""


class SecurityMiddleware:
    """Pure ASGI middleware around the whole app (not BaseHTTPMiddleware: event streams and
    bodies go through message by message, never buffered).

    In order: one Host header naming this server (else 400), a route the page or the API uses
    (404), no form (415), a Content-Length within the limit (413, body unread); then the app,
    with a receive() that counts a body sent without Content-Length and answers 413 as soon as it
    passes the limit. Every response, ours and the app's, gets the security headers.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None,
                 max_body: int = MAX_BODY_BYTES,
                 allow_route: Callable[[str, str], bool] = route_allowed) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.max_body = max_body
        self.allow_route = allow_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # startup runs Gradio's startup events (the queue)
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # the page uses no WebSocket
            await send({"type": "websocket.close", "code": 1008})
            return
        send = _secured(send)
        refusal = self.refusal(scope)
        if refusal:
            await _reply(send, *refusal)
            return
        await self._bounded(_uncompressed_page(scope), receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, text) to answer instead of the app, or None to let the request in."""
        headers = [(k.lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        hosts = [host_name(v) for k, v in headers if k == b"host"]
        if self.allowed_hosts is not None and (len(hosts) != 1 or hosts[0] not in self.allowed_hosts):
            return 400, f"Invalid Host header (names this server answers to: ${ALLOWED_HOSTS_ENV})"
        if not self.allow_route(scope["method"], scope["path"]):
            return 404, "Not Found"
        fields = dict(headers)
        if fields.get(b"content-type", "").lower().startswith("multipart/"):
            # No route takes a form, so no upload is ever parsed or spooled to disk.
            return 415, "Unsupported Media Type"
        length = fields.get(b"content-length", "")
        if length.isdigit() and int(length) > self.max_body:  # the server rejects malformed ones
            return 413, "Request body too large"
        return None

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, cutting its request body off at the limit with a 413."""
        read, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal read, over
            if over:
                raise _BodyTooLarge
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.max_body:
                over = True
                raise _BodyTooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if over:  # the app's own reply to a body cut short (a 400) gives way to the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except Exception:
            if not over:  # frameworks wrap what receive() raised; it is ours when over
                raise
        if over and not started:
            await _reply(send, 413, "Request body too large")


def _uncompressed_page(scope: Scope) -> Scope:
    """The page's request without Accept-Encoding: Gradio would brotli its HTML, and the CSP
    must read its inline scripts to hash them (35 KB, once per visit)."""
    if scope["path"] != "/":
        return scope
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]
    return {**scope, "headers": headers}


def _secured(send: Send) -> Send:
    """``send`` adding the security headers to every response. An HTML response is held until
    its body is complete, so that the CSP allows exactly its own inline scripts, by hash."""
    held: list[Message] = []

    async def secured(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start" and _is_html(message):
            held.append(message)
        elif kind == "http.response.start":
            await send(_with_headers(message, []))
        elif held and kind == "http.response.body":
            held.append(message)
            if not message.get("more_body", False):
                start, body = held[0], b"".join(m.get("body", b"") for m in held[1:])
                held.clear()
                await send(_with_headers(start, _script_hashes(start, body)))
                await send({"type": "http.response.body", "body": body})
        else:
            await send(message)

    return secured


def _is_html(start: Message) -> bool:
    return any(k.lower() == b"content-type" and v.lower().startswith(b"text/html")
               for k, v in start.get("headers", []))


def _script_hashes(start: Message, body: bytes) -> list[str]:
    """The CSP hash of each inline <script> of an HTML body (SHA-256 of its UTF-8 text). A
    compressed body cannot be read: no hash, its inline scripts stay blocked."""
    if any(k.lower() == b"content-encoding" for k, _ in start.get("headers", [])):
        return []
    return [base64.b64encode(hashlib.sha256(code).digest()).decode()
            for attributes, code in _INLINE_SCRIPT.findall(body)
            if not _SRC_ATTRIBUTE.search(attributes)]


def _with_headers(start: Message, script_hashes: list[str]) -> Message:
    csp = _CSP.format(hashes="".join(f" 'sha256-{h}'" for h in script_hashes))
    ours = [*_SECURITY_HEADERS, (b"content-security-policy", csp.encode())]
    names = {name for name, _ in ours}
    kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in names]
    return {**start, "headers": kept + ours}


async def _reply(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode())]
    if status in (400, 413):  # the body may be unread or the client hostile: do not reuse
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- the server -----------------------------------------------------------------------------

def _mounted(demo: gr.Blocks, host: str, port: int) -> Any:
    """The page mounted on a FastAPI app of our own, for SecurityMiddleware to wrap whole.

    With ``launch()`` our middleware could only go inside Gradio's (its CORS middleware answers
    preflight requests itself), so some responses would miss the checks and headers.
    """
    gr = _gradio()
    from fastapi import FastAPI
    from starlette.routing import Mount

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app = gr.mount_gradio_app(
        app, demo, path="/", server_name=host, server_port=port, footer_links=["api"],
        show_error=False, ssr_mode=False, mcp_server=False, theme=theme(), css=CSS,
        max_file_size=MAX_BODY_BYTES,  # uploads are refused anyway; this bounds them twice
    )
    # What launch() sets and mount_gradio_app does not. Gradio checks that a file named in an
    # event's data was uploaded only once has_launched is set (else it copies any readable
    # file into its cache); close() ends the heartbeat streams of demo.app, the served one.
    demo.has_launched = True
    served: Any = next(r.app for r in app.routes if isinstance(r, Mount))
    demo.server_app = demo.app = served
    return app


def _start_server(app: ASGIApp, host: str, port: int) -> tuple[Any, threading.Thread]:
    """uvicorn serving ``app`` from a thread; returns once it listens."""
    import uvicorn

    # lifespan "on": Gradio starts its queue at startup, and a failure there must stop us.
    config = uvicorn.Config(app, host=host.strip("[]"), port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ampere-qa-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise AmpereError(f"the web server could not start on {host}:{port} "
                              f"(see the error above: is the port already in use?)")
        time.sleep(0.05)
    return server, thread


def serve(
    index_dir: str | Path = "index",
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    retriever: Retriever | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> None:
    """Load the index and model, warm the model up, start the page, print the ready line,
    and block until interrupted.

    ``allowed_hosts``: Host names to accept besides loopback ones (say, the name a reverse proxy
    forwards), ``["*"]`` for any; None reads ``$AMPERE_QA_ALLOWED_HOSTS`` (comma-separated).
    See :func:`allowed_hosts_for`.
    """
    if share:
        # A share link is a public tunnel into this server, around its Host check.
        raise AmpereError("share links are not supported: serve with --host 0.0.0.0 instead")
    hosts = allowed_hosts_for(host, allowed_hosts)
    retriever = retriever or Retriever.load(index_dir)
    if retriever.is_stale():
        print(f"warning: {stale_warning(retriever.data.path, retriever.manifest)}",
              file=sys.stderr, flush=True)
    if isinstance(retriever.embedder, SentenceTransformerEmbedder):
        retriever.embedder.query_threads = 1  # several questions at once share the cores
    retriever.answer("Qui dirige Ampere ?")  # loads the model before the first visitor waits
    demo = create_app(retriever)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    app = SecurityMiddleware(_mounted(demo, host, port), hosts)
    server, thread = _start_server(app, host, port)
    bind = host.strip("[]")
    shown = f"[{bind}]" if ":" in bind else bind
    print(f"ampere-qa ready on http://{shown}:{port}", flush=True)
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()  # stops the queue and ends the heartbeat streams
        server.should_exit = True  # uvicorn drains open event streams for at most 5 s
        thread.join(timeout=10)
