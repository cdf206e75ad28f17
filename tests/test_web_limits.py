"""The server's limits on what clients make it hold, on loopback: the time a request may take to
arrive (its head, then its body), the connections open at once, the bytes of bodies being
received at once, memory handed back once clients go, no form and no input echoed in an error,
strict JSON booleans, and a log no client can flood.

The protocol-level tests run uvicorn in this process (the server's own configuration, shorter
deadlines) around :class:`SecurityMiddleware` and a tiny app; the rest run ``python app.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from .serving import free_port, index_for, rss_kib, running_server

# Deadlines of the in-process servers: short, so that the tests are quick; every wait below is
# bounded by WAIT_S, far above them, so that a busy machine only makes a test slower.
SHORT_S = 1.0
LONG_S = 120.0
WAIT_S = 30.0
QUESTION = "Qui dirige Ampere ?"


# --- an in-process server: the real configuration around a tiny app -------------------------

async def _tiny(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    """``/hold``: a response started and left open until the client goes; ``/stream``: six parts,
    half a second apart; anything else: the length of the body read."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    if scope["path"] == "/hold":
        await send({"type": "http.response.body", "body": b"held", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    if scope["path"] == "/stream":
        for i in range(6):
            await send({"type": "http.response.body", "body": b"part %d\n" % i, "more_body": True})
            await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": b"end"})
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.body", "body": str(size).encode()})


@contextmanager
def _serving(head_timeout: float = LONG_S, body_timeout: float = LONG_S,
             body_budget: int | None = None, **options: Any) -> Iterator[tuple[int, Any]]:
    """uvicorn as the server configures it, serving the middleware around ``_tiny`` on a free
    loopback port: (port, middleware)."""
    from ampere_qa.web.security import BODY_BUDGET_BYTES, SecurityMiddleware
    from ampere_qa.web.server import THREAD_JOIN_S, _start_server, head_deadline_protocol, server_config

    port = free_port()
    guarded = SecurityMiddleware(_tiny, None, allow_route=lambda m, p: True,
                                 body_timeout=body_timeout,
                                 body_budget=body_budget or BODY_BUDGET_BYTES)
    config = server_config(guarded, "127.0.0.1", port, lifespan="off",
                           http=head_deadline_protocol(head_timeout), **options)
    server, thread = _start_server(config)
    try:
        yield port, guarded
    finally:
        server.should_exit = True
        thread.join(timeout=THREAD_JOIN_S)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes ``sock`` (after any reply) within WAIT_S."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without a reply: {data[:200]!r}"
        data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def _post_head(port: int, path: str, length: int, kind: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def _until(condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _settled(measure: Callable[[], float], still_s: float = 2.0) -> float:
    """``measure()`` (MiB) once it has not grown by 1 for ``still_s`` seconds, or after WAIT_S."""
    deadline, value = time.monotonic() + WAIT_S, measure()
    while time.monotonic() < deadline:
        time.sleep(still_s)
        now = measure()
        if now < value + 1:
            return max(now, value)
        value = now
    return value


# --- the time a request may take to arrive ---------------------------------------------------

def _silent(sock: socket.socket, port: int) -> None:
    pass


def _partial_head(sock: socket.socket, port: int) -> None:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())


def _trickled_head(sock: socket.socket, port: int) -> None:
    """A byte every 0.2 s: uvicorn's keep-alive timer restarts on each one."""
    with suppress(OSError):
        for byte in f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: {'a' * 200}".encode():
            sock.sendall(bytes([byte]))
            time.sleep(0.2)


def _partial_second_head(sock: socket.socket, port: int) -> None:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert _read_head(sock)[0] == 200
    sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())


@pytest.mark.slow
@pytest.mark.parametrize("client", [_silent, _partial_head, _trickled_head, _partial_second_head])
def test_a_request_head_that_does_not_arrive_in_time_is_closed(client):
    """From the connection's opening, or the end of the previous response: a connection that
    sends nothing, part of a head, a head a byte at a time, or part of its next head."""
    with _serving(head_timeout=SHORT_S) as (port, _), _connect(port) as sock:
        t0 = time.monotonic()
        client(sock, port)
        assert _closed_by_server(sock), "the connection is still open"
        assert time.monotonic() - t0 >= SHORT_S * 0.9  # by the deadline, not at once


@pytest.mark.slow
def test_a_stalled_body_gets_a_408_and_is_closed():
    with _serving(body_timeout=SHORT_S) as (port, guarded), _connect(port) as sock:
        sock.sendall(_post_head(port, "/", 1000) + b"x" * 500)
        status, headers = _read_head(sock)
        assert status == 408 and headers.get("connection") == "close"
        assert _closed_by_server(sock)
        assert guarded.receiving == 0


@pytest.mark.slow
def test_long_responses_outlast_the_deadlines():
    """The deadlines are on requests arriving: a response (an event stream) lasts as it will."""
    with _serving(head_timeout=SHORT_S, body_timeout=SHORT_S) as (port, _):
        for head in (b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     _post_head(port, "/stream", 2).replace(b"\r\n\r\n", b"\r\nConnection: close"
                                                            b"\r\n\r\n") + b"{}"):
            with _connect(port) as sock:
                sock.sendall(head)
                t0, data = time.monotonic(), b""
                while chunk := sock.recv(65536):
                    data += chunk
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"end\r\n0\r\n\r\n"), data[-200:]
            assert b"part 5" in data and time.monotonic() - t0 > 2 * SHORT_S


# --- connections, and bodies being received, at once -----------------------------------------

class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_connections_over_the_cap_get_a_503():
    cap = 4
    handler = _Lines()
    logging.getLogger("uvicorn.error").addHandler(handler)
    held: list[socket.socket] = []
    try:
        with _serving(limit_concurrency=cap) as (port, _):
            for _ in range(cap - 1):  # uvicorn counts the new connection with the open ones
                sock = _connect(port)
                held.append(sock)
                sock.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _read_head(sock)[0] == 200
            for _ in range(10):
                with _connect(port) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    status, headers = _read_head(sock)
                    assert status == 503 and headers.get("connection") == "close"
            for sock in held:
                sock.close()

            def served() -> bool:
                with _connect(port) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    return _read_head(sock)[0] == 200

            assert _until(served), "still refused once the connections closed"
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
        for sock in held:
            sock.close()
    assert handler.lines.count("Exceeded concurrency limit.") <= 1, handler.lines  # 10 refusals


def test_bodies_being_received_share_a_budget():
    budget = 1_000_000
    with _serving(body_budget=budget) as (port, guarded), _connect(port) as a, _connect(port) as b:
        for sock, expected in ((a, 500_000), (b, budget)):  # stalled halfway through 1 MB each
            sock.sendall(_post_head(port, "/", 1_000_000) + b"x" * 500_000)
            assert _until(lambda expected=expected: guarded.receiving == expected), guarded.receiving
        with _connect(port) as c:
            c.sendall(_post_head(port, "/", 100) + b"x" * 10)
            status, headers = _read_head(c)
            assert status == 503 and headers.get("retry-after") == "1"
            assert headers.get("connection") == "close"
        a.close()
        b.close()
        assert _until(lambda: guarded.receiving == 0), guarded.receiving
        with _connect(port) as d:
            d.sendall(_post_head(port, "/", 100) + b"x" * 100)
            assert _read_head(d)[0] == 200


# --- forms, and the same through the whole server ---------------------------------------------

FORM_HEADERS = [
    [("content-type", "application/x-www-form-urlencoded")],
    [("content-type", "multipart/form-data; boundary=x")],
    [("content-type", "Text/Plain;charset=UTF-8")],
    # Starlette reads the first Content-Type header, a dict the last: both are looked at.
    [("content-type", "application/x-www-form-urlencoded"), ("content-type", "application/json")],
    [("content-type", "application/json"), ("content-type", "application/x-www-form-urlencoded")],
]


@pytest.mark.parametrize("headers", FORM_HEADERS)
def test_a_form_gets_a_415_before_the_app(headers):
    from starlette.testclient import TestClient

    from ampere_qa.web import SecurityMiddleware

    reached: list[str] = []

    async def app(scope, receive, send):
        reached.append(scope["path"])
        await _tiny(scope, receive, send)

    client = TestClient(SecurityMiddleware(app, None, allow_route=lambda m, p: True))
    assert client.post("/", content=b"question=hi", headers=headers).status_code == 415
    assert client.post("/", content=b'{"question": "hi"}',
                       headers={"content-type": "application/json"}).status_code == 200
    assert reached == ["/"]  # the JSON body only


def test_every_bool_field_of_the_api_requests_is_strict():
    import typing

    from pydantic import Strict

    from ampere_qa.web import api

    requests = (api.AskRequest, api.ChatRequest, api.Message, api.Part)  # and what they nest
    fields = [(m, name, f) for m in requests for name, f in m.model_fields.items()
              if bool in (f.annotation, *typing.get_args(f.annotation))]
    assert ("ChatRequest", "stream") in {(m.__name__, name) for m, name, _ in fields}
    for model, name, field in fields:
        assert model.model_config.get("strict") or any(isinstance(x, Strict) for x in field.metadata), \
            f"{model.__name__}.{name} takes 'yes' or 1 for true"


@pytest.fixture(scope="module")
def server(model_cache: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int, Path]]:
    """``python app.py`` on a free loopback port: (URL, port, pid, log)."""
    tmp = tmp_path_factory.mktemp("web-limits")
    log = tmp / "server.log"
    with running_server(index_for(tmp), log_path=log) as (proc, url):
        port = urllib.parse.urlparse(url).port
        assert port is not None
        yield url.rstrip("/"), port, proc.pid, log


def _post(url: str, path: str, body: bytes, kind: str = "application/json") -> tuple[int, bytes]:
    import httpx

    r = httpx.post(url + path, content=body, headers={"Content-Type": kind}, timeout=WAIT_S)
    return r.status_code, r.content


@pytest.mark.integration
def test_the_server_closes_slow_requests_and_keeps_its_event_streams(server):
    """HEAD_TIMEOUT_S and BODY_TIMEOUT_S on the real app, while a page's heartbeat stream stays
    open past both."""
    import httpx

    from ampere_qa.web.security import BODY_TIMEOUT_S
    from ampere_qa.web.server import HEAD_TIMEOUT_S

    url, port, _, _ = server
    beats: list[str] = []

    def heartbeat() -> None:
        with httpx.stream("GET", url + "/gradio_api/heartbeat/limits-test", timeout=LONG_S) as r:
            for line in (line for line in r.iter_lines() if line.startswith("data:")):
                beats.append(line)
                if len(beats) == 3:  # at 0, 15 and 30 s: open longer than both deadlines
                    return

    listener = threading.Thread(target=heartbeat, daemon=True)
    listener.start()
    timeout = max(HEAD_TIMEOUT_S, BODY_TIMEOUT_S) + 2 * WAIT_S
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as head, \
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as body:
        t0 = time.monotonic()
        head.sendall(f"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        body.sendall(_post_head(port, "/api/ask", 1000) + b'{"question": "')
        assert _closed_by_server(head)
        assert time.monotonic() - t0 >= HEAD_TIMEOUT_S * 0.9
        assert _read_head(body)[0] == 408
        assert time.monotonic() - t0 >= BODY_TIMEOUT_S * 0.9
        assert _closed_by_server(body)
    listener.join(timeout=LONG_S)
    assert len(beats) == 3, beats


@pytest.mark.integration
def test_stalled_bodies_hold_bounded_memory_that_comes_back(server):
    """300 clients send 900 KB of a 1 MB body and stall: the server holds at most its budget of
    bodies (the rest get a 503), and its memory comes back once they close. Before: +280 MiB,
    and it stayed."""
    url, port, pid, _ = server
    clients, sent = 300, b'{"question": "' + b"x" * 899_986

    def rss_mib() -> float:
        kib = rss_kib(pid)
        assert kib, "cannot read the server's memory"
        return kib / 1024

    baseline, socks = rss_mib(), []
    try:
        for _ in range(clients):
            sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
            socks.append(sock)
            with suppress(OSError):  # refused (503) and closed while it sent
                sock.sendall(_post_head(port, "/api/ask", 1_000_000) + sent)
        held = _settled(rss_mib) - baseline  # once the server has read what it takes
    finally:
        for sock in socks:
            sock.close()
    assert held < 180, f"+{held:.0f} MiB with {clients} stalled bodies"
    assert _until(lambda: rss_mib() - baseline < 40), \
        f"+{rss_mib() - baseline:.0f} MiB after the clients closed (+{held:.0f} MiB while open)"
    assert _post(url, "/api/ask", json.dumps({"question": QUESTION}).encode())[0] == 200


@pytest.mark.integration
def test_forms_get_a_415_from_the_server(server):
    url = server[0]
    for path in ("/api/ask", "/gradio_api/queue/join", "/gradio_api/call/ask", "/v1/chat/completions"):
        for kind in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                     "text/plain"):
            status, _ = _post(url, path, b"question=hi", kind)
            assert status == 415, (path, kind, status)


@pytest.mark.integration
def test_validation_errors_never_echo_the_input(server):
    """Gradio's routes as ours: the 422 names the field, bounded, whatever was sent."""
    url = server[0]
    big = "x" * 900_000
    shown = []
    for path, payload, field in [
        ("/gradio_api/queue/join", {"data": [], "fn_index": big, "session_hash": "s"}, "fn_index"),
        ("/gradio_api/queue/join", {"data": [], "fn_index": 0, "session_hash": [big]}, "session_hash"),
        ("/api/ask", {"question": QUESTION, big: 1}, "body"),  # an unknown key: its location
        ("/api/ask", {"question": QUESTION, "history": [1] * 50}, "history"),
        ("/v1/chat/completions", {"messages": [{"role": big}]}, "role"),
    ]:
        status, reply = _post(url, path, json.dumps(payload).encode())
        assert status == 422, (path, field, status)
        assert len(reply) < 4096, (path, field, len(reply))
        detail = json.loads(reply)["detail"]
        assert field in detail[0]["loc"] and all(set(e) == {"loc", "msg", "type"} for e in detail)
        shown.append(len(detail))
    from ampere_qa.web.api import MAX_ERRORS_SHOWN

    assert max(shown) == MAX_ERRORS_SHOWN  # of the 50 wrong items of history


@pytest.mark.integration
@pytest.mark.parametrize("value", ['"yes"', "1", '"true"', "0", '"false"'])
def test_stream_must_be_a_json_boolean(server, value):
    body = f'{{"messages": [{{"role": "user", "content": "{QUESTION}"}}], "stream": {value}}}'
    status, reply = _post(server[0], "/v1/chat/completions", body.encode())
    assert status == 422, reply[:200]
    (error,) = json.loads(reply)["detail"]
    assert error["loc"] == ["body", "stream"] and set(error) == {"loc", "msg", "type"}


@pytest.mark.integration
def test_aborted_streams_do_not_flood_the_log(server):
    """Clients that reset their connection mid-stream: asyncio logs each write after, at most
    once a minute. Before: about eight lines per stream."""
    url, port, _, log = server
    body = json.dumps({"messages": [{"role": "user", "content": QUESTION}], "stream": True}).encode()
    start = len(log.read_text(errors="replace"))
    for _ in range(3):  # 60 streams, 20 at a time (the API's pool takes 64 waiting)
        socks = [socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) for _ in range(20)]
        for sock in socks:
            sock.sendall(_post_head(port, "/v1/chat/completions", len(body)) + body)
        for sock in socks:
            assert sock.recv(1)  # the stream has begun
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset, not a clean close
    done = json.dumps({"messages": [{"role": "user", "content": QUESTION}]}).encode()
    assert _post(url, "/v1/chat/completions", done)[0] == 200  # the writes after each reset are done
    logged = log.read_text(errors="replace")[start:]
    assert logged.count("socket.send() raised exception.") <= 2, logged[-2000:]
    assert "Traceback" not in logged
