"""Serving the page: build the index first when it is missing (if given a corpus), load it and
the model, warm the model up, mount the page behind :class:`.SecurityMiddleware`, run uvicorn in
a thread (request heads due within HEAD_TIMEOUT_S, at most MAX_CONNECTIONS connections), print
the ready line, and close everything on Ctrl-C.

``ampere-qa serve`` and ``python app.py`` both come down to :func:`serve`.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AmpereError
from ..indexing.build import build_index
from ..indexing.manifest import MANIFEST, stale_warning
from ..search import Retriever
from .app import create_app, load_gradio, theme
from .render import CSS
from .security import MAX_BODY_BYTES, ASGIApp, SecurityMiddleware, allowed_hosts_for

if TYPE_CHECKING:
    import gradio as gr
    import uvicorn

    from ..types import BuildReport
    from .api import Pool

# Concurrent events the server runs at once. One question costs ~50 ms of CPU (the encoder
# releases the GIL), so on a 2-core machine a few in flight keep both cores busy without
# thrashing; the rest wait in a bounded queue instead of being refused or piling up.
CONCURRENCY_LIMIT = 4
QUEUE_MAX_SIZE = 64
# Asked once before the page opens, so the model is loaded before the first visitor waits: the
# index's first example question, else this one (any question the model must encode will do).
WARM_UP_QUESTION = "Qui ?"
# Seconds uvicorn gets to start listening (checked every START_POLL_S), to drain open event
# streams at shutdown, and the server thread to end after that.
START_TIMEOUT_S = 60
START_POLL_S = 0.05
GRACEFUL_SHUTDOWN_S = 5
THREAD_JOIN_S = 10
READY_LINE = "ampere-qa ready on {url}"
# Seconds a connection has to send a whole request head, from its opening or the end of the
# previous response. A browser sends a head in one packet; 10 s allows a slow link, and is over
# uvicorn's keep-alive (5 s without a byte), which still closes idle connections first. uvicorn
# alone bounds neither: its keep-alive timer restarts on every byte and none runs before the
# first request, so a client sending part of a head, or nothing, held its connection for good.
HEAD_TIMEOUT_S = 10
# Open connections (the new one included) at which uvicorn answers a request with a 503 instead
# of running it; it counts running requests too. A browser tab uses one to three (its heartbeat
# stream, a question's event stream, keep-alive requests): a few hundred visitors at once, while
# what connections cost stays bounded (uvicorn buffers up to 64 KiB of body and 16 KiB of head
# per connection; the bodies being received share BODY_BUDGET_BYTES). Connections past it are
# still accepted, to get that 503; HEAD_TIMEOUT_S closes those that send nothing.
MAX_CONNECTIONS = 512
# Log lines a client can cause at will, one per write to a connection it reset (an aborted
# stream writes several) or per request past MAX_CONNECTIONS: each is logged once per
# LOG_REPEAT_S at most, so that no client can flood the log.
REPEATED_LOGS = (("asyncio", "socket.send() raised exception."),
                 ("uvicorn.error", "Exceeded concurrency limit."))
LOG_REPEAT_S = 60
# Blocks from this size up get pages of their own, handed back to the system once freed.
# glibc's threshold starts at 128 KiB and rises to the largest block freed (up to 32 MiB), so
# request bodies, and the pieces of about 64 KiB uvicorn reads them in, soon came from its heap,
# which kept them once freed: 200 clients stalling 900 KB bodies left the server +45-65 MB
# after they closed. Fixed at 64 KiB: +3 MB, and questions per second unchanged (measured).
MMAP_THRESHOLD_BYTES = 64 << 10
_M_MMAP_THRESHOLD = -3  # mallopt's parameter for it (glibc's malloc.h)
# The page's own script (see page.js), served from memory: no file is served from disk.
PAGE_SCRIPT_ROUTE = "/page.js"


def page_script() -> bytes:
    from importlib.resources import files

    return files(__package__).joinpath("page.js").read_bytes()


def build_missing_index(index_dir: str | Path, corpus_dir: str | Path) -> BuildReport | None:
    """Build the index from ``corpus_dir`` when ``index_dir`` holds none (no manifest), with a
    progress bar on stderr and a summary line on stdout; None when there is an index already."""
    if (Path(index_dir) / MANIFEST).exists():
        return None
    print(f"No index in {index_dir}: building it from {corpus_dir} …", flush=True)
    report = build_index(corpus_dir, index_dir, progress=True)
    for skipped in report.skipped:
        print(skipped.warning(), file=sys.stderr, flush=True)
    print(f"Indexed {report.files} file(s) into {report.passages} passages "
          f"in {report.seconds:.1f} s", flush=True)
    return report


def _warm_up(retriever: Retriever) -> None:
    """Say if the index is stale, share the cores between questions, load the model."""
    if retriever.stale_status():  # the first check, which later requests are served from
        print(f"warning: {stale_warning(retriever.data.path, retriever.data.manifest)}",
              file=sys.stderr, flush=True)
    if hasattr(retriever.embedder, "query_threads"):
        retriever.embedder.query_threads = 1  # several questions at once share the cores
    retriever.answer(next(iter(retriever.page.examples), WARM_UP_QUESTION))


def _mounted(demo: gr.Blocks, retriever: Retriever, host: str, port: int) -> tuple[Any, Pool]:
    """The page mounted on a FastAPI app of our own, for SecurityMiddleware to wrap whole.

    With ``launch()`` our middleware could only go inside Gradio's (its CORS middleware answers
    preflight requests itself), so some responses would miss the checks and headers.
    """
    gr = load_gradio()
    from fastapi import Response
    from fastapi.exceptions import RequestValidationError
    from starlette.routing import Mount

    from .api import add_api, invalid_request, new_app  # FastAPI and pydantic: loaded when serving

    app = new_app()
    pool = add_api(app, retriever)  # before the page: its routes come first
    script = page_script()
    app.add_api_route(PAGE_SCRIPT_ROUTE, lambda: Response(script, media_type="text/javascript"),
                      methods=["GET"], include_in_schema=False)
    app = gr.mount_gradio_app(
        app, demo, path="/", server_name=host, server_port=port, footer_links=[],
        show_error=False, ssr_mode=False, mcp_server=False, theme=theme(), css=CSS,
        head=f'<script src=".{PAGE_SCRIPT_ROUTE}" defer></script>',
        max_file_size=MAX_BODY_BYTES,  # uploads are refused anyway; this bounds them twice
    )
    # What launch() sets and mount_gradio_app does not. Gradio checks that a file named in an
    # event's data was uploaded only once has_launched is set (else it copies any readable
    # file into its cache); close() ends the heartbeat streams of demo.app, the served one.
    demo.has_launched = True
    served: Any = next(r.app for r in app.routes if isinstance(r, Mount))
    demo.server_app = demo.app = served
    # Gradio's own 422s echo the input (a megabyte of it, when sent): ours do not.
    served.add_exception_handler(RequestValidationError, invalid_request)
    return app, pool


@functools.cache
def head_deadline_protocol(head_timeout: float = HEAD_TIMEOUT_S) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request head has not arrived within
    ``head_timeout`` seconds of its opening or of the end of the previous response."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadline(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_head()

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a head arrived: the app has the request now
                self._stop_head_timer()

        def on_response_complete(self) -> None:
            self._await_head()  # first: a pipelined request may start in there
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            self._stop_head_timer()
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(head_timeout, self.transport.close)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

    return HeadDeadline


def server_config(app: ASGIApp, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How uvicorn serves ``app`` (``options`` override it)."""
    import uvicorn

    # lifespan "on": Gradio starts its queue at startup, and a failure there must stop us.
    return uvicorn.Config(app, **{
        "host": host.strip("[]"), "port": port, "log_level": "warning", "lifespan": "on",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S, "http": head_deadline_protocol(),
        "limit_concurrency": MAX_CONNECTIONS, **options})


class _OncePer(logging.Filter):
    """Lets one record of ``message`` through per ``seconds``; any other message, always."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__()
        self.message, self.seconds = message, seconds
        self.last = -seconds

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.message:
            return True
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


@functools.cache
def _quiet_repeated_logs() -> None:
    """Once per process: each of REPEATED_LOGS at most once per LOG_REPEAT_S."""
    for logger, message in REPEATED_LOGS:
        logging.getLogger(logger).addFilter(_OncePer(message, LOG_REPEAT_S))


def _start_server(config: uvicorn.Config) -> tuple[Any, threading.Thread]:
    """uvicorn serving from a thread, as ``config`` says; returns once it listens."""
    import uvicorn

    _quiet_repeated_logs()  # after uvicorn.Config, which configures its loggers
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ampere-qa-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise AmpereError(f"the web server could not start on {config.host}:{config.port} "
                              f"(see the error above: is the port already in use?)")
        time.sleep(START_POLL_S)
    return server, thread


def _hand_back_freed_memory() -> None:
    """Large blocks mmapped (see MMAP_THRESHOLD_BYTES), on Linux (glibc; musl ignores it)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if sys.platform == "linux" else None
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def page_url(host: str, port: int) -> str:
    """``http://127.0.0.1:7860``, ``http://[::1]:7860``: the page's address for a bind address."""
    bind = host.strip("[]")
    shown = f"[{bind}]" if ":" in bind else bind
    return f"http://{shown}:{port}"


def _serve_until_interrupted(demo: gr.Blocks, server: Any, thread: threading.Thread,
                             pool: Pool) -> None:
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()  # stops the queue and ends the heartbeat streams
        server.should_exit = True  # uvicorn drains open event streams for GRACEFUL_SHUTDOWN_S
        thread.join(timeout=THREAD_JOIN_S)
        pool.close()


def serve(
    index_dir: str | Path = "index",
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    retriever: Retriever | None = None,
    allowed_hosts: Iterable[str] | None = None,
    corpus_dir: str | Path | None = None,
) -> None:
    """Load the index and model, warm the model up, start the page, print the ready line,
    and block until interrupted.

    ``corpus_dir``: when given and ``index_dir`` holds no index, the index is first built from
    it (see :func:`build_missing_index`). ``allowed_hosts``: Host names to accept besides
    loopback ones (say, the name a reverse proxy forwards), ``["*"]`` for any; None reads
    ``$AMPERE_QA_ALLOWED_HOSTS`` (comma-separated). See :func:`.allowed_hosts_for`.
    """
    if share:
        # A share link is a public tunnel into this server, around its Host check.
        raise AmpereError("share links are not supported: serve with --host 0.0.0.0 instead")
    hosts = allowed_hosts_for(host, allowed_hosts)
    _hand_back_freed_memory()
    if retriever is None:
        if corpus_dir is not None:
            build_missing_index(index_dir, corpus_dir)
        retriever = Retriever.load(index_dir)
    _warm_up(retriever)
    demo = create_app(retriever)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    app, pool = _mounted(demo, retriever, host, port)
    server, thread = _start_server(server_config(SecurityMiddleware(app, hosts), host, port))
    print(READY_LINE.format(url=page_url(host, port)), flush=True)
    _serve_until_interrupted(demo, server, thread, pool)
