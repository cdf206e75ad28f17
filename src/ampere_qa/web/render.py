"""What the chat shows, as HTML: answers with their cited excerpts, the friendly messages, the
stale-index notice. Pure functions over the library's results; no Gradio.

Everything that comes from the user or the corpus is shown as text: it is HTML-escaped and its
Markdown-significant characters are turned into character references before it goes into the
chat (which sanitises HTML on top of that).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import BadInputError, EmptyQuestionError, QuestionTooLongError
from ..language import detect
from ..question import DEFAULT_K, MAX_QUESTION_CHARS, clean_question

if TYPE_CHECKING:
    from ..search import Retriever
    from ..types import Answer

log = logging.getLogger(__name__)

# Longest question text echoed back in the chat when the question is refused as too long.
ECHO_CHARS = 300
# Longest text the reply language is detected on: twice the longest question is plenty.
DETECT_CHARS = 2 * MAX_QUESTION_CHARS
# Longest question text quoted in the server log when answering it failed.
LOGGED_CHARS = 200

# The chat's messages, in the language of the question (French or English).
_UI = {
    "fr": {
        "language": "Langue détectée : {name}",
        "chars": "caractères",
        "excerpts": "Extraits cités",
        "understood": "Compris : {q}",
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
        "understood": "Understood: {q}",
        "empty": "Please type a question about the article.",
        "too_long": ("Your question is {n} characters long; the limit is {limit}. "
                     "Please shorten it."),
        "bad": "I cannot use this question: {msg}.",
        "error": "Sorry, something unexpected went wrong. Please try again in a moment.",
    },
}
_NAMES = {"fr": {"fr": "français", "en": "anglais"}, "en": {"fr": "French", "en": "English"}}
_ANSWERING = {"fr": "réponse en français", "en": "answering in English"}
# Visitors may be anywhere: the notice names no server path; the server's log has the command
# that rebuilds (serve prints it at start).
STALE_TEXT = ("⚠ L'article a changé depuis la construction de l'index : les réponses peuvent être "
              "dépassées. · The corpus changed since the index was built: answers may be out of "
              "date until the index is rebuilt (ampere-qa build; see the server log).")

# The look of the classes below; the page is given it when it is mounted.
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


# Between the short answer and the quoted sentence(s) in Answer.answer (see answer.MESSAGES).
SHORT_SEPARATOR = " — "


def language_line(code: str, reply: str) -> str:
    """"Langue détectée : français", "Detected language: English", or for another language
    "Detected language: de — answering in English"."""
    ui = _UI[reply]
    if code in _NAMES[reply]:
        return ui["language"].format(name=_NAMES[reply][code])
    return f"{ui['language'].format(name=code)} — {_ANSWERING[reply]}"


def _answer_with_markers(answer: str) -> str:
    return "".join(
        f'<span class="aqa-marker">{text_to_html(part)}</span>' if _MARKER.fullmatch(part)
        else text_to_html(part)
        for part in _MARKER.split(answer)
    )


def _answer_html(result: Answer) -> str:
    """The answer line, its short answer (the words before " — ") in bold."""
    head, sep, rest = result.answer.partition(SHORT_SEPARATOR)
    if result.short_answer is None or not sep:
        return _answer_with_markers(result.answer)
    return f'<strong class="aqa-short">{text_to_html(head)}</strong>{sep}{_answer_with_markers(rest)}'


def render_answer(result: Answer) -> str:
    """The assistant message: language, the short answer in bold and the quoted sentence(s) with
    [n] markers, then the cited excerpts."""
    reply = result.reply_language if result.reply_language in _UI else "en"
    ui = _UI[reply]
    blocks = [f'<div class="aqa-lang">{text_to_html(language_line(result.language, reply))}</div>']
    if result.understood:  # a follow-up, read against the earlier questions
        said = ui["understood"].format(q=result.understood)
        blocks.append(f'<div class="aqa-understood">{text_to_html(said)}</div>')
    blocks.append(f'<div class="aqa-answer">{_answer_html(result)}</div>')
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
    return f'<div class="aqa-stale" role="alert">{text_to_html(STALE_TEXT)}</div>'


def _notice(text: str) -> str:
    return f'<div class="aqa-answer">{text_to_html(text)}</div>'


def _reply_language(text: str) -> str:
    try:
        return detect(text[:DETECT_CHARS]).reply
    except Exception:  # detection is a nicety here; never let it break the reply
        return "en"


def _refusal(question: str, squeezed: str, reply: str) -> tuple[str, str] | None:
    """The (user, assistant) messages when the question cannot be asked, else None."""
    try:
        clean_question(question)
    except QuestionTooLongError as exc:
        echo = squeezed[:ECHO_CHARS] + "…"
        msg = _UI[reply]["too_long"].format(n=exc.length, limit=MAX_QUESTION_CHARS)
        return text_to_html(echo), _notice(msg)
    except EmptyQuestionError:
        return text_to_html(squeezed), _notice(_UI[reply]["empty"])
    except BadInputError as exc:
        return text_to_html(squeezed), _notice(_UI[reply]["bad"].format(msg=str(exc)))
    return None


def chat_reply(retriever: Retriever, question: str | None, k: int = DEFAULT_K,
               history: Sequence[str] = ()) -> tuple[str | None, str]:
    """The (user, assistant) message HTML for one question; never raises.

    ``user`` is None when there is nothing to echo (an empty question). ``history`` is the
    user's earlier questions, oldest first, for follow-ups.
    """
    question = question if isinstance(question, str) else ""
    squeezed = " ".join(question.split())
    if not squeezed:
        both = f"{_UI['fr']['empty']} / {_UI['en']['empty']}"
        return None, _notice(both)
    reply = _reply_language(squeezed)
    refusal = _refusal(question, squeezed, reply)
    if refusal:
        return refusal
    user = text_to_html(squeezed)
    try:
        return user, render_answer(retriever.answer(question, k=k, history=history))
    except BadInputError as exc:
        return user, _notice(_UI[reply]["bad"].format(msg=str(exc)))
    except Exception:
        log.exception("answering %r failed", squeezed[:LOGGED_CHARS])
        return user, _notice(_UI[reply]["error"])
