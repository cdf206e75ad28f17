"""The web page: a chat over the article, with cited excerpts, plus an HTTP API for other apps.

Gradio is imported only when a page is made or served (``import ampere_qa`` and
``import ampere_qa.web`` never load it)::

    from . import serve
    serve("index", host="127.0.0.1", port=7860)

``POST /api/ask`` returns exactly ``Answer.to_dict()`` in one request; so does the page's
Gradio endpoint ``/ask``::

    from gradio_client import Client
    Client("http://127.0.0.1:7860/").predict("Qui dirige Ampere ?", api_name="/ask")

One concept per module:

- :mod:`.render`: what the chat shows, as inert HTML (answers, excerpts, friendly messages, the
  stale-index notice); pure functions, no Gradio.
- :mod:`.inputs`: the checks every event's inputs pass first (no file, defaults filled in).
- :mod:`.app`: the Gradio page and its ``/ask`` endpoint; the title, description and examples
  come from the index (see ``Retriever.page``).
- ``page.js``: the one behaviour the components lack (show the newest answer from its first
  line), served as ``/page.js`` because the page's policy allows no inline script.
- :mod:`.api`: the plain JSON API (``/api/ask``, ``/api/health``, ``/api/info``, ``/api/docs``)
  and the OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models``, run in a bounded pool
  of worker threads; loaded by :mod:`.server` only (FastAPI and pydantic).
- :mod:`.security`: :class:`SecurityMiddleware`, in front of the whole app: only the routes the
  page and the API use, 1 MiB bodies, the ``Host`` header checked when listening on loopback
  (``AMPERE_QA_ALLOWED_HOSTS`` adds names), a Content-Security-Policy and the other security
  headers on every response. No Gradio.
- :mod:`.server`: :func:`serve`: build a missing index (when given a corpus), load, warm up,
  mount, run uvicorn, print the ready line, shut down on Ctrl-C.
"""

from .app import api_answer, create_app, theme
from .inputs import carries_file, fill_defaults
from .render import (
    CSS,
    chat_reply,
    header_html,
    language_line,
    render_answer,
    stale_notice,
    text_to_html,
)
from .security import (
    ALLOWED_HOSTS_ENV,
    LOOPBACK_HOSTS,
    MAX_BODY_BYTES,
    SecurityMiddleware,
    allowed_hosts_for,
    host_name,
    route_allowed,
)
from .server import CONCURRENCY_LIMIT, QUEUE_MAX_SIZE, build_missing_index, serve

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "CONCURRENCY_LIMIT",
    "CSS",
    "LOOPBACK_HOSTS",
    "MAX_BODY_BYTES",
    "QUEUE_MAX_SIZE",
    "SecurityMiddleware",
    "allowed_hosts_for",
    "api_answer",
    "build_missing_index",
    "carries_file",
    "chat_reply",
    "create_app",
    "fill_defaults",
    "header_html",
    "host_name",
    "language_line",
    "render_answer",
    "route_allowed",
    "serve",
    "stale_notice",
    "text_to_html",
    "theme",
]
