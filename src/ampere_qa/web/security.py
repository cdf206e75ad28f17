"""What stands in front of the page: a pure-ASGI middleware around the whole app.

Only the routes the page and the API use are reachable (no upload, no file served from disk but
the page's own assets, no form), request bodies are limited to 1 MiB that must arrive within
30 s (64 MiB of bodies being received at once, all requests together), the ``Host`` header must
name the server when it listens on loopback (``AMPERE_QA_ALLOWED_HOSTS`` adds names), and every
response carries a Content-Security-Policy and the other security headers. No Gradio here: the
middleware wraps any ASGI app.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import os
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

# Largest request body the server reads. A question is at most 1,000 characters (4 KB of UTF-8,
# 24 KB as JSON \u escapes) and the page sends a few KB of chat history with it: 1 MiB is
# plenty, and it keeps a client from making the server hold hundreds of MB.
MAX_BODY_BYTES = 1 << 20
# Seconds a request body has to arrive whole once its head has: 1 MiB at 300 kbit/s, a slow
# mobile uplink. A client that stalls mid-body gets a 408 then, instead of holding its
# connection, and its body in memory, for as long as it likes.
BODY_TIMEOUT_S = 30
# Bytes of request bodies being received at once, all requests together: 64 bodies of the
# largest size, where a question's body is a few KB. Past it a request gets a 503 (Retry-After):
# slow or stalled clients cannot make the server hold more than this many bytes of bodies.
BODY_BUDGET_BYTES = 64 * MAX_BODY_BYTES
# Seconds a client refused for that waits: bodies come in within milliseconds, or are dropped
# within BODY_TIMEOUT_S.
BUSY_RETRY_AFTER_S = 1
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
# The only routes the page (in a browser) and the APIs use: page, config, theme, the page's
# script and Gradio's own built assets; API info; the queue, its event streams and heartbeats;
# /run for the page's unqueued events, /call for REST callers; the JSON and OpenAI routes
# (api.py). Everything else Gradio mounts (uploads, /file=, /proxy=, streams, monitoring, custom
# components, ...) gets a 404, so a route added by a future Gradio is closed until it is listed
# here.
_GET_ROUTES = re.compile(
    r"/(?:config|theme\.css|page\.js|favicon\.ico|manifest\.json|robots\.txt|assets/.+|static/.+"
    r"|gradio_api/(?:info|queue/data|heartbeat/[\w-]+"
    r"|call/(?:v2/)?[\w-]+/[\w-]+)"
    r"|api/(?:health|info|openapi\.json|docs)|v1/models)?/?"
)
_POST_ROUTES = re.compile(
    r"/(?:gradio_api/(?:queue/join|run/[\w-]+|call/(?:v2/)?[\w-]+|cancel|reset)"
    r"|api/ask|v1/chat/completions)/?"
)

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What an HTML form posts (its three encodings, text/plain included): no route takes a form, so
# no upload is ever parsed or spooled to disk, and a form on another site cannot post here.
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded", "text/plain")
# Replies instead of the app's, when a request body is refused while it is read.
_TOO_LARGE = 413, "Request body too large"
_TOO_SLOW = 408, "Request body not received in time"
_BUSY = 503, "The server is busy: retry in a moment"

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


def _media_type(content_type: str) -> str:
    """``Multipart/Form-Data; boundary=x`` -> ``multipart/form-data``."""
    return content_type.partition(";")[0].strip().lower()


class SecurityMiddleware:
    """Pure ASGI middleware around the whole app (not BaseHTTPMiddleware: event streams go
    through message by message, never buffered).

    In order: one Host header naming this server (else 400), a route the page or the API uses
    (404), no form (415), a Content-Length within the limit (413, body unread); then the body is
    read whole, counted as it arrives: over the limit 413, not arrived within ``body_timeout``
    seconds 408, more than ``body_budget`` bytes of bodies being received at once 503; and only
    then the app, given that body. Every response, ours and the app's, gets the security headers.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None,
                 max_body: int = MAX_BODY_BYTES,
                 allow_route: Callable[[str, str], bool] = route_allowed,
                 body_timeout: float = BODY_TIMEOUT_S,
                 body_budget: int = BODY_BUDGET_BYTES) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.max_body = max_body
        self.allow_route = allow_route
        self.body_timeout = body_timeout
        self.body_budget = body_budget
        self.receiving = 0  # bytes of the bodies being read now; only the event loop touches it

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
        body = await self.read_body(receive)
        if isinstance(body, tuple):
            await _reply(send, *body)
        elif body is not None:  # None: the client left
            await self.app(_uncompressed_page(scope), _replayed(body, receive), send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, text) to answer instead of the app, or None to let the request in."""
        headers = [(k.lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        hosts = [host_name(v) for k, v in headers if k == b"host"]
        if self.allowed_hosts is not None and (len(hosts) != 1 or hosts[0] not in self.allowed_hosts):
            return 400, f"Invalid Host header (names this server answers to: ${ALLOWED_HOSTS_ENV})"
        if not self.allow_route(scope["method"], scope["path"]):
            return 404, "Not Found"
        # Every Content-Type header: frameworks read the first, a dict keeps the last.
        if any(_media_type(v) in _FORM_TYPES for k, v in headers if k == b"content-type"):
            return 415, "Unsupported Media Type"
        length = dict(headers).get(b"content-length", "")
        if length.isdigit() and int(length) > self.max_body:  # the server rejects malformed ones
            return _TOO_LARGE
        return None

    async def read_body(self, receive: Receive) -> bytes | tuple[int, str] | None:
        """The whole request body; or the (status, text) to answer instead: too large, too slow,
        too many bytes of bodies being received; or None when the client left meanwhile.

        Read here rather than by the app, so that a body cut short is dropped at once: an
        exception raised into the frameworks' body readers would keep it in a reference cycle
        (their frames, in its traceback) until the next full garbage collection.
        """
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_timeout):
                while (message := await receive())["type"] == "http.request":
                    chunk = message.get("body", b"")
                    if len(body) + len(chunk) > self.max_body:
                        return _TOO_LARGE
                    if self.receiving + len(chunk) > self.body_budget:
                        return _BUSY
                    body += chunk
                    self.receiving += len(chunk)
                    if not message.get("more_body", False):
                        return bytes(body)
            return None  # http.disconnect
        except TimeoutError:
            return _TOO_SLOW
        finally:
            self.receiving -= len(body)


def _replayed(body: bytes, receive: Receive) -> Receive:
    """receive() for the app: the body already read, in one message, then the client's own
    messages (its disconnect, which event streams wait for)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


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
    if status in (400, 408, 413, 503):  # body unread, or the client hostile: do not reuse
        headers.append((b"connection", b"close"))
    if status == 503:
        headers.append((b"retry-after", str(BUSY_RETRY_AFTER_S).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
