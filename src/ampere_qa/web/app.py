"""The page, as a Gradio Blocks: a chat over the article with examples and a clear button, plus
the ``/ask`` API endpoint, which returns exactly ``Answer.to_dict()``.

Gradio is imported when a page is made, not when this module is: ``import ampere_qa.web`` stays
light. Theme and CSS are given when the page is mounted (Gradio 6): :mod:`.server` does that.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import AmpereError, BadInputError
from ..qa.question import DEFAULT_K, clean_question, parse_k
from .inputs import check_inputs
from .render import chat_reply, header_html, stale_notice

if TYPE_CHECKING:
    import gradio as gr

    from ..search import Retriever

log = logging.getLogger(__name__)

EXAMPLES_LABEL = "Exemples / Examples"
PLACEHOLDER = "Votre question… / Your question…"
SEND_LABEL = "Envoyer / Send"
CLEAR_LABEL = "Effacer / Clear"
# Layout. The chat takes the height the rest of the page leaves (render.CSS makes room for the
# header, the question row and the examples), so that nothing but the chat scrolls.
# In the question row the box takes five shares and needs this many pixels: on a phone the two
# buttons wrap below it, side by side; on a wider screen all three share one line.
CHAT_HEIGHT = "calc(100dvh - 300px)"
CHAT_MIN_HEIGHT = 240
BOX_SCALE = 5
BOX_MIN_WIDTH = 300
BUTTON_SCALE = 1
BUTTON_MIN_WIDTH = 130
BOX_MAX_LINES = 4
QUESTION_LABEL = "Question"
API_LINK = ('<p class="aqa-links"><a href="./api/docs">API</a> · '
            '<a href="./api/openapi.json">OpenAPI</a></p>')
# System fonts only: nothing is fetched from a font CDN.
FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]

Messages = list[dict[str, str]]


def load_gradio() -> Any:
    """The gradio module, imported with its analytics off (the page must not call home) and
    without rewriting its type stubs (below)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if "gradio" not in sys.modules:
        sys.meta_path.insert(0, _NoStubRewrite())
    import gradio as gr

    return gr


class _NoStubRewrite(importlib.abc.MetaPathFinder):
    """Gradio 6 regenerates the ``.pyi`` stub of every component class it defines, at every
    import (``component_meta.create_or_modify_pyi``): it parses its own sources, ~3 of the ~4 s
    ``import gradio`` takes here, and writes into site-packages when it can. The stubs serve
    type checkers only, so the server's import skips that step: this finder replaces the function
    with a no-op as soon as its module has run, before any component class exists. If a Gradio
    release drops the function, nothing is replaced."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "gradio.component_meta":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            if callable(getattr(module, "create_or_modify_pyi", None)):
                module.create_or_modify_pyi = _no_stub

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _no_stub(*args: Any, **kwargs: Any) -> None:
    return None


def theme() -> Any:
    """The default look with system fonts (nothing is fetched from a font CDN), its orange
    buttons darkened so that white text on them meets WCAG AA (4.5:1; orange-500 gives 2.8:1)."""
    return load_gradio().themes.Default(font=FONTS, font_mono=MONO_FONTS).set(
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_background_fill_dark="*primary_700",
        button_primary_background_fill_hover_dark="*primary_800",
        button_primary_text_color="white",
        button_primary_text_color_dark="white",
    )


def _error(message: str, title: str = "Bad input") -> gr.Error:
    """An expected failure: a message for the caller, no traceback in the server log."""
    return load_gradio().Error(message, title=title, print_exception=False)


def api_answer(retriever: Retriever, question: str, k: object = DEFAULT_K,
               history: object = None) -> dict[str, Any]:
    """What ``/ask`` returns: ``Answer.to_dict()``, or a ``gr.Error`` with a clear message.
    ``history`` is the user's earlier questions, oldest first (optional)."""
    try:
        kk = parse_k(k)
    except BadInputError as exc:
        raise _error(str(exc)) from None
    try:
        past = [] if history is None else history
        return retriever.answer(question, k=kk, history=past).to_dict()  # type: ignore[arg-type]
    except BadInputError as exc:
        raise _error(str(exc)) from None
    except AmpereError as exc:
        log.error("API question failed: %s", exc)
        raise _error(str(exc), "Error") from None
    except Exception:
        log.exception("API question failed")
        raise _error("unexpected server error; please try again", "Error") from None


def _blocks_class() -> type[gr.Blocks]:
    """gr.Blocks that checks every event's inputs before Gradio processes them."""
    gr = load_gradio()

    class Blocks(gr.Blocks):  # type: ignore[name-defined]
        def validate_inputs(self, block_fn: Any, inputs: list[Any]) -> None:
            # Gradio calls this before it touches the inputs, with the very list it then hands
            # to the function (see inputs.check_inputs).
            try:
                check_inputs(block_fn.fn, len(block_fn.inputs), inputs)
            except BadInputError as exc:
                raise _error(str(exc)) from None
            super().validate_inputs(block_fn, inputs)

    return Blocks


# --- what the page's events and the API endpoint run -----------------------------------------

def _responder(retriever: Retriever) -> Any:
    def respond(
        question: str, history: Messages | None, shown: list[Any] | None,
        asked: list[str] | None,
    ) -> tuple[Messages, Messages, str, list[str]]:
        # The history lives on the server (so a client cannot inject markup into it); an empty
        # chat on screen (cleared by the trash icon, even a moment ago) means a fresh start.
        # ``asked`` holds the user's earlier questions as typed, for follow-ups.
        history = list(history or []) if shown else []
        most = retriever.settings.max_history
        asked = [q for q in (asked or []) if isinstance(q, str)][-most:] if shown else []
        user, bot = chat_reply(retriever, question, history=asked)
        if user is not None:
            history.append({"role": "user", "content": user})
            with contextlib.suppress(BadInputError):  # a refused question is no context
                asked.append(clean_question(question))
        history.append({"role": "assistant", "content": bot})
        return history, history, "", asked

    return respond


def clear() -> tuple[Messages, Messages, str, list[str]]:
    return [], [], "", []


def _ask_endpoint(retriever: Retriever) -> Any:
    # Gradio documents /ask from this function: its name, signature and docstring.
    def ask(question: str, k: int = DEFAULT_K, history: list[str] | None = None) -> dict:
        """Answer a question from the article; returns the JSON of `ampere-qa ask --json`.
        `history`: the user's earlier questions, oldest first, for follow-ups."""
        return api_answer(retriever, question, k, history)

    return ask


def _stale_refresher(retriever: Retriever) -> Any:
    gr = load_gradio()

    def refresh_stale() -> Any:
        notice = stale_notice(retriever)
        return gr.Markdown(notice, visible=bool(notice))

    return refresh_stale


# --- the layout ------------------------------------------------------------------------------

# Markdown, not gr.HTML, for the header and the notice: Gradio 6 evaluates gr.HTML's templates
# as JavaScript, which the page's Content-Security-Policy forbids. Their HTML is built inert
# by render.py.

def _stale_box(gr: Any, retriever: Retriever) -> Any:
    # Checked when the page is built and again on every page load, so a corpus changed while
    # serving is reported to the next visitor.
    first = stale_notice(retriever)
    return gr.Markdown(first, visible=bool(first), elem_id="aqa-stale")


def _chat(gr: Any, title: str) -> Any:
    return gr.Chatbot(
        label=title,
        show_label=False,
        height=CHAT_HEIGHT,
        min_height=CHAT_MIN_HEIGHT,
        autoscroll=False,  # the page's script shows the newest answer from its first line
        sanitize_html=True,
        render_markdown=True,
        latex_delimiters=[],
        allow_tags=False,
        feedback_options=None,
        buttons=["copy"],
        elem_id="aqa-chat",
    )


def _question_row(gr: Any) -> tuple[Any, Any, Any]:
    """The question box, the send button and the clear button, on one row."""
    with gr.Row():
        box = gr.Textbox(
            label=QUESTION_LABEL,  # its accessible name; the placeholder says what to type
            show_label=False,
            placeholder=PLACEHOLDER,
            lines=1,
            max_lines=BOX_MAX_LINES,
            scale=BOX_SCALE,
            min_width=BOX_MIN_WIDTH,
            autofocus=True,
            submit_btn=False,
            container=False,
            elem_id="aqa-question",
        )
        send = gr.Button(SEND_LABEL, variant="primary", scale=BUTTON_SCALE,
                         min_width=BUTTON_MIN_WIDTH, elem_id="aqa-send")
        clear_btn = gr.Button(CLEAR_LABEL, scale=BUTTON_SCALE, min_width=BUTTON_MIN_WIDTH,
                              elem_id="aqa-clear")
    return box, send, clear_btn


def create_app(retriever: Retriever) -> gr.Blocks:
    """The page (chat, examples, clear button) and the ``/ask`` API endpoint.

    Theme and CSS are given when the page is mounted (Gradio 6); :func:`serve` does that.
    """
    gr = load_gradio()
    page = retriever.page  # title, description and examples: the index's, set at build
    with _blocks_class()(title=page.title) as demo:
        gr.Markdown(header_html(page.title, page.description), elem_id="aqa-header")
        stale = _stale_box(gr, retriever)
        history = gr.State([])
        asked = gr.State([])  # the user's questions as typed, for follow-ups
        chatbot = _chat(gr, page.title)
        box, send, clear_btn = _question_row(gr)
        if page.examples:
            gr.Examples(examples=list(page.examples), inputs=box, label=EXAMPLES_LABEL,
                        elem_id="aqa-examples")

        # Our API page, not Gradio's: its commands are tested (Gradio's cURL snippet ends in
        # `| read EVENT_ID`, which sets nothing in bash).
        gr.Markdown(API_LINK, elem_id="aqa-links")
        outs = [chatbot, history, box, asked]
        respond = _responder(retriever)
        for trigger in (box.submit, send.click):
            trigger(respond, [box, history, chatbot, asked], outs, api_visibility="private",
                    show_progress="minimal")
        clear_btn.click(clear, None, outs, api_visibility="private", queue=False)
        # The chat's own trash icon empties the chat: forget the history with it.
        chatbot.clear(clear, None, outs, api_visibility="private", queue=False)
        gr.api(_ask_endpoint(retriever), api_name="ask")
        demo.load(_stale_refresher(retriever), None, stale, api_visibility="private", queue=False,
                  show_progress="hidden")
    return demo
