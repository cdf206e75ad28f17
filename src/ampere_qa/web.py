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
"""

from __future__ import annotations

import html
import logging
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer import Answer
from .embedding import SentenceTransformerEmbedder
from .errors import AmpereError, BadInputError
from .language import detect
from .search import MAX_QUESTION_CHARS, Retriever, clean_question

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

# Concurrent events the server runs at once. One question costs ~50 ms of CPU (the encoder
# releases the GIL), so on a 2-core machine a few in flight keep both cores busy without
# thrashing; the rest wait in a bounded queue instead of being refused or piling up.
CONCURRENCY_LIMIT = 4
QUEUE_MAX_SIZE = 64
MAX_K = 50
# Longest question text echoed back in the chat when the question is refused as too long.
_ECHO_CHARS = 300

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
    index = retriever.data.path
    text = (f"⚠ L'article a changé depuis la construction de l'index : les réponses peuvent être "
            f"dépassées. · The corpus changed since the index was built: answers may be out of "
            f"date. Run: ampere-qa build --index {index}")
    return f'<div class="aqa-stale" role="alert">{text_to_html(text)}</div>'


def _notice(text: str) -> str:
    return f'<div class="aqa-answer">{text_to_html(text)}</div>'


def _reply_language(text: str) -> str:
    try:
        return detect(text[:2 * MAX_QUESTION_CHARS]).reply
    except Exception:  # detection is a nicety here; never let it break the reply
        return "en"


def chat_reply(retriever: Retriever, question: str | None, k: int = 3) -> tuple[str | None, str]:
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
    except BadInputError as exc:
        if len(squeezed) > MAX_QUESTION_CHARS:
            echo = squeezed[:_ECHO_CHARS] + "…"
            msg = _UI[reply]["too_long"].format(n=len(squeezed), limit=MAX_QUESTION_CHARS)
            return text_to_html(echo), _notice(msg)
        if "empty" in str(exc):
            return text_to_html(squeezed), _notice(_UI[reply]["empty"])
        return text_to_html(squeezed), _notice(_UI[reply]["bad"].format(msg=str(exc)))
    user = text_to_html(squeezed)
    try:
        return user, render_answer(retriever.answer(question, k=k))
    except BadInputError as exc:
        return user, _notice(_UI[reply]["bad"].format(msg=str(exc)))
    except Exception:
        log.exception("answering %r failed", squeezed[:200])
        return user, _notice(_UI[reply]["error"])


def api_answer(retriever: Retriever, question: str, k: int | float | None = 3) -> dict[str, Any]:
    """What ``/ask`` returns: ``Answer.to_dict()``, or a ``gr.Error`` with a clear message."""
    import gradio as gr

    def fail(message: str, title: str = "Bad input") -> gr.Error:
        # Expected failures: a message for the caller, no traceback in the server log.
        return gr.Error(message, title=title, print_exception=False)

    bad_k = f"k must be a whole number between 1 and {MAX_K}"
    try:
        kk = 3 if k is None else int(k)
    except (TypeError, ValueError):
        raise fail(bad_k) from None
    if not 1 <= kk <= MAX_K or (k is not None and kk != k):
        raise fail(bad_k)
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


def create_app(retriever: Retriever) -> gr.Blocks:
    """The page (chat, examples, clear button) and the ``/ask`` API endpoint.

    Theme and CSS are given to ``launch()`` (Gradio 6); :func:`serve` does that.
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

    def ask(question: str, k: int = 3) -> dict:
        """Answer a question from the article; returns the JSON of `ampere-qa ask --json`."""
        return api_answer(retriever, question, k)

    with gr.Blocks(title="Ampere Q&A") as demo:
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


def _wait_until_listening(host: str, port: int, timeout: float = 60.0) -> None:
    target = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((target, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AmpereError(f"the web server did not start listening on {host}:{port}")


def serve(
    index_dir: str | Path = "index",
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    retriever: Retriever | None = None,
) -> None:
    """Load the index and model, warm the model up, start the page, print the ready line,
    and block until interrupted."""
    retriever = retriever or Retriever.load(index_dir)
    if retriever.is_stale():
        print(f"warning: the corpus changed since {index_dir} was built; "
              f"run: ampere-qa build --index {index_dir}", file=sys.stderr, flush=True)
    if isinstance(retriever.embedder, SentenceTransformerEmbedder):
        retriever.embedder.query_threads = 1  # several questions at once share the cores
    retriever.answer("Qui dirige Ampere ?")  # loads the model before the first visitor waits
    demo = create_app(retriever)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,
        footer_links=["api"],
        ssr_mode=False,
        mcp_server=False,
        theme=theme(),
        css=CSS,
    )
    _wait_until_listening(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"ampere-qa ready on http://{shown}:{port}", flush=True)
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
