"""What stands in front of the page: a pure-ASGI middleware around the whole app.

Only the routes the page and the API use are reachable (no upload, no file served from disk but
the page's own assets), request bodies are limited to 1 MiB, the ``Host`` header must name the
server when it listens on loopback (``AMPERE_QA_ALLOWED_HOSTS`` adds names), and every response
carries a Content-Security-Policy and the other security headers. No Gradio here: the
middleware wraps any ASGI app.
"""

from __future__ import annotations

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
