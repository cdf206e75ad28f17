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
from ..packs.lang import available
from ..qa.compose import Wording, wording
from ..qa.language import DEFAULT, detect
from ..qa.question import DEFAULT_K, MAX_QUESTION_CHARS, clean_question, echo_of

if TYPE_CHECKING:
    from ..search import Retriever
    from ..types import Answer

log = logging.getLogger(__name__)

# Longest text the reply language is detected on: twice the longest question is plenty.
DETECT_CHARS = 2 * MAX_QUESTION_CHARS
# Longest question text quoted in the server log when answering it failed.
LOGGED_CHARS = 200

# Visitors may be anywhere: the stale notice names no server path; the server's log has the
# command that rebuilds (serve prints it at start). It is shown in each of the corpus's languages.
STALE_MARK = "⚠ "

# The look of the classes below; the page is given it when it is mounted.
CSS = """
/* Text colours are set, not faded with opacity, so that each meets WCAG AA (4.5:1) on the
   chat's background, light or dark. */
/* The chat fades its messages to 0.8 opacity, which takes small text below 4.5:1. */
#aqa-chat .message-content .md { opacity: 1 !important; }
#aqa-chat .aqa-lang, #aqa-chat .aqa-understood, #aqa-chat .aqa-source,
#aqa-chat .aqa-excerpts summary { color: #52525b !important; opacity: 1 !important; }
.dark #aqa-chat .aqa-lang, .dark #aqa-chat .aqa-understood, .dark #aqa-chat .aqa-source,
.dark #aqa-chat .aqa-excerpts summary { color: #d4d4d8 !important; }
.aqa-lang, .aqa-understood { font-size: 0.85em; margin-bottom: 0.4em; }
.aqa-answer { margin: 0.2em 0 0.6em 0; }
.aqa-marker { font-weight: 600; }
.aqa-excerpts summary { font-size: 0.85em; font-weight: 600; cursor: pointer; margin-top: 0.4em; }
.aqa-excerpt { border-left: 3px solid #d4d4d8; padding: 0.3em 0.7em; margin: 0.5em 0; }
.aqa-source { font-size: 0.85em; margin-bottom: 0.2em; }
.aqa-excerpt mark { background: #fde68a; color: #1f2937; padding: 0 0.1em; }
/* The page: heading and description above the chat, compact on a phone. */
.aqa-header h1 { font-size: 1.6rem; font-weight: 700; margin: 0 0 0.2em 0; }
.aqa-description { margin: 0; }
/* Visible focus on everything that takes it (the theme removes the outline from the box). */
#aqa-question textarea:focus-visible, #aqa-send:focus-visible, #aqa-clear:focus-visible,
#aqa-examples button:focus-visible, .aqa-excerpts summary:focus-visible,
#aqa-chat button:focus-visible, footer button:focus-visible, footer a:focus-visible {
  outline: 3px solid #1d4ed8 !important; outline-offset: 2px; }
.dark #aqa-question textarea:focus-visible, .dark #aqa-send:focus-visible,
.dark #aqa-clear:focus-visible { outline-color: #93c5fd !important; }
#aqa-question textarea::placeholder { color: #6b7280; opacity: 1; }
.dark #aqa-question textarea::placeholder { color: #a1a1aa; }
footer, footer button, footer a, .show-api { color: #52525b !important; opacity: 1 !important; }
.dark footer, .dark footer button, .dark footer a, .dark .show-api { color: #d4d4d8 !important; }
.aqa-links { text-align: center; font-size: 0.85rem; margin: 0; }
#aqa-links a { color: #1d4ed8; }
.dark #aqa-links a { color: #93c5fd; }
@media (max-width: 640px) {
  .aqa-header h1 { font-size: 1.25rem; }
  .aqa-description { font-size: 0.8rem; line-height: 1.35; }
  /* Examples on one line that scrolls sideways, so that they stay above the fold. */
  #aqa-examples > .gallery { flex-wrap: nowrap !important; overflow-x: auto; }
  #aqa-examples > .gallery > button { flex: 0 0 auto; }
  /* Room for the taller header and the buttons wrapped below the box (app.CHAT_HEIGHT). */
  #aqa-chat { height: calc(100dvh - 370px) !important; }
  #aqa-send, #aqa-clear { padding-left: 0.5em; padding-right: 0.5em; white-space: nowrap; }
}
.aqa-stale { border: 1px solid #f59e0b; background: #fffbeb; color: #92400e; padding: 0.5em 0.8em;
             border-radius: 6px; }
"""

# Characters Markdown (and the chat's LaTeX/autolink handling) could give a meaning to.
_MD_SPECIAL = set("\\`*_{}[]()#+-.!|~$:@^=")
_MARKER = re.compile(r"(\[\d+\])")
_EN_DASH = "\u2013"
_CONTEXT_SEP = "\u00b7"


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


# Between the short answer and the quoted sentence(s) in Answer.answer (the packs' [replies] short).
SHORT_SEPARATOR = " — "


def _words(reply: str, retriever: Retriever | None = None) -> Wording:
    """The page's messages in ``reply`` (English for a language without a pack), naming the
    corpus as its settings do."""
    code = reply if reply in available() else DEFAULT
    return wording(code, retriever.settings.noun.get(code, "") if retriever else "")


def language_line(code: str, reply: str) -> str:
    """"Langue détectée : français", "Detected language: English", or for a language without a
    pack "Detected language: it — answering in English"."""
    words = _words(reply)
    names = words.ui["names"]
    if code in names:
        return words.show("language", name=names[code])
    return f"{words.show('language', name=code)} — {words.show('answering')}"


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


def _in_language(reply: str, inner: str) -> str:
    """A message, marked with its language so that screen readers pronounce it right (the page
    itself is bilingual)."""
    return f'<div class="aqa-reply" lang="{reply}">{inner}</div>'


def render_answer(result: Answer) -> str:
    """The assistant message, read top-down: the answer (its short answer in bold, then the
    quoted sentence(s) with [n] markers), then the cited excerpts, folded. The language line
    and what a follow-up was understood as come first, in small type."""
    words = _words(result.reply_language)
    reply = words.code
    blocks = [f'<div class="aqa-lang">{text_to_html(language_line(result.language, reply))}</div>']
    if result.understood:  # a follow-up, read against the earlier questions
        said = words.show("understood", q=result.understood)
        blocks.append(f'<div class="aqa-understood">{text_to_html(said)}</div>')
    blocks.append(f'<div class="aqa-answer">{_answer_html(result)}</div>')
    excerpts = []
    for c in result.citations:
        where = f"[{c.rank}] {c.source}, {words.show('chars')} {c.start}{_EN_DASH}{c.end}"
        if c.context:  # the headings above the excerpt, in its document
            where += f" {_CONTEXT_SEP} {c.context}"
        excerpts.append(
            '<div class="aqa-excerpt">'
            f'<div class="aqa-source">{text_to_html(where)}</div>'
            f'<div class="aqa-text">{_highlighted(c.text, c.highlights)}</div>'
            "</div>"
        )
    if excerpts:
        # Folded: on a phone a long excerpt would push the next answer off screen.
        title = text_to_html(words.show("excerpts", n=len(excerpts)))
        blocks.append(f'<details class="aqa-excerpts"><summary>{title}</summary>'
                      f'{"".join(excerpts)}</details>')
    return _in_language(reply, "".join(blocks))


# Between the parts of a bilingual description ("Posez … · Ask …").
DESCRIPTION_SEPARATOR = " · "


def header_html(title: str, description: str) -> str:
    """The page's heading and description, as text. Each part of the description gets its own
    ``lang`` (the page is bilingual) so that screen readers pronounce it right."""
    parts = []
    for part in description.split(DESCRIPTION_SEPARATOR):
        if part.strip():
            code = html.escape(_languages(part)[0])
            parts.append(f'<span lang="{code}">{text_to_html(part.strip())}</span>')
    sep = text_to_html(DESCRIPTION_SEPARATOR)
    return (f'<header class="aqa-header"><h1>{text_to_html(title)}</h1>'
            f'<p class="aqa-description">{sep.join(parts)}</p></header>')


def stale_notice(retriever: Retriever) -> str:
    """The warning shown above the chat when the corpus changed since the index was built ("" if not)."""
    try:
        stale = retriever.stale_status()
    except Exception:  # the check reads the corpus folder; never let it break the page
        log.exception("checking whether the index is stale failed")
        stale = None
    if not stale:
        return ""
    text = STALE_MARK + DESCRIPTION_SEPARATOR.join(
        _words(code, retriever).show("stale") for code in retriever.settings.languages)
    return f'<div class="aqa-stale" role="alert">{text_to_html(text)}</div>'


def _notice(text: str, reply: str) -> str:
    return _in_language(reply, f'<div class="aqa-answer">{text_to_html(text)}</div>')


def _languages(text: str) -> tuple[str, str]:
    """The question's language code and the reply's ("de", "en")."""
    try:
        found = detect(text[:DETECT_CHARS])
        return found.code, found.reply
    except Exception:  # detection is a nicety here; never let it break the reply
        return "en", "en"


def _refusal(question: str, squeezed: str, words: Wording) -> tuple[str, str] | None:
    """The (user, assistant) messages when the question cannot be asked, else None."""
    try:
        clean_question(question)
    except QuestionTooLongError as exc:
        msg = words.show("too_long", n=exc.length, limit=MAX_QUESTION_CHARS)
        return text_to_html(echo_of(squeezed)), _notice(msg, words.code)
    except EmptyQuestionError:
        return text_to_html(squeezed), _notice(words.show("empty"), words.code)
    except BadInputError as exc:
        return text_to_html(squeezed), _notice(words.show("bad", msg=str(exc)), words.code)
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
        both = " / ".join(
            f'<span lang="{lang}">{text_to_html(_words(lang, retriever).show("empty"))}</span>'
            for lang in retriever.settings.languages)
        return None, f'<div class="aqa-answer">{both}</div>'
    code, reply = _languages(squeezed)
    words = _words(reply, retriever)
    refusal = _refusal(question, squeezed, words)
    if refusal:
        return refusal
    user = f'<span lang="{html.escape(code)}">{text_to_html(squeezed)}</span>'
    try:
        return user, render_answer(retriever.answer(question, k=k, history=history))
    except BadInputError as exc:
        return user, _notice(words.show("bad", msg=str(exc)), words.code)
    except Exception:
        log.exception("answering %r failed", squeezed[:LOGGED_CHARS])
        return user, _notice(words.show("error"), words.code)
