"""The Milvus client and its credentials: connecting, and masking every secret that is shown.

A server that requires credentials gets ``$AMPERE_QA_MILVUS_TOKEN`` (``user:password`` or an API
key; the CLI's ``--token`` sets it). The token is read when a client connects and is never
written to the manifest, a collection property or a message. Credentials written into the URI
(``http://user:password@host:19530``) are taken out of it before it is recorded or shown: they
open this process's connections (kept in memory, :data:`_CREDENTIALS`), the manifest records the
URI without them, and a later command needs the token. Every URI and message shown goes
through :func:`redact` (credentials in a URI, the token, ``token=``-style parameters masked).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ....errors import StoreUnavailableError

TOKEN_ENV = "AMPERE_QA_MILVUS_TOKEN"
# Credentials taken out of a URI (normalize_uri, MilvusStore): the URI without them -> the token
# they stand for. This process's connections use them; nothing writes them anywhere.
_CREDENTIALS: dict[str, str] = {}
# A URI's userinfo (user:password@, up to its last @ before the host) and secret parameters.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
_SECRET_PARAM = re.compile(r"(?i)(?P<key>\b(?:token|password|passwd|secret|api_?key)=)[^&#\s]+")
_MIN_SECRET_PART = 4  # the password part of a user:password token is masked alone from this length


@contextlib.contextmanager
def muted(logger_name: str, level: int) -> Iterator[None]:
    """Raise a library logger's level for the block only, then put back whatever it was."""
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def split_credentials(uri: str) -> tuple[str, str]:
    """``uri`` without its userinfo, and the token that userinfo stands for (``user:password``,
    percent-decoded; "" when it has none). A local path has none."""
    m = re.match(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#]*)(?P<rest>.*)\Z", uri, re.S)
    if not m or "@" not in m["netloc"]:
        return uri, ""
    userinfo, _, host = m["netloc"].rpartition("@")
    user, colon, password = userinfo.partition(":")
    return m["scheme"] + host + m["rest"], unquote(user) + (":" + unquote(password) if colon else "")


def remember(uri: str) -> str:
    """``uri`` without its credentials, which this process's connections to it will use."""
    bare, token = split_credentials(uri)
    if token:
        _CREDENTIALS[bare] = token
    return bare


def _secrets() -> list[str]:
    tokens = [t for t in (os.environ.get(TOKEN_ENV, ""), *_CREDENTIALS.values()) if t]
    parts = [t.partition(":")[2] for t in tokens if ":" in t]
    found = {*tokens, *(p for p in parts if len(p) >= _MIN_SECRET_PART)}
    return sorted(found, key=len, reverse=True)  # a token before the password inside it


def redact(text: object) -> str:
    """``text`` (a message, an exception, a URI) as it may be shown: the userinfo of any URI in
    it, ``token=``-style parameters, the token and any credentials taken from a URI, masked."""
    out = _SECRET_PARAM.sub(r"\g<key>***", _USERINFO.sub(r"\g<scheme>***@", str(text)))
    for secret in _secrets():
        out = out.replace(secret, "***")
    return out


def shown_uri(uri: str) -> str:
    """A URI as messages, ``info`` and logs show it (:func:`redact`)."""
    return redact(uri)


def same_uri(a: object, b: object) -> bool:
    """Whether two recorded URIs name the same Milvus (credentials aside)."""
    return isinstance(a, str) and isinstance(b, str) and split_credentials(a)[0] == split_credentials(b)[0]


def connect(uri: str) -> Any:
    """A pymilvus client for ``uri``: its own credentials first (as pymilvus itself does), else
    the token. A failure is one line, secrets masked, saying what to check."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise StoreUnavailableError(
            "this index keeps its vectors in Milvus, which needs pymilvus: "
            "pip install 'ampere-qa[milvus]'"
        ) from None
    # Milvus Lite logs a full traceback (logger.exception, e.g. the lock another process holds)
    # before pymilvus raises; the error below already says it in one line. AMPERE_QA_DEBUG=1
    # (the CLI's traceback switch) lets it through.
    debug = os.environ.get("AMPERE_QA_DEBUG")
    bare = remember(uri)
    token = _CREDENTIALS.get(bare) or os.environ.get(TOKEN_ENV, "")
    try:
        with contextlib.nullcontext() if debug else muted("milvus_lite", logging.CRITICAL + 1):
            return MilvusClient(uri=bare, token=token)
    except Exception as exc:
        if "://" not in uri:
            why = "; a Milvus Lite file is opened by one process at a time"
        else:
            why = ("; if the server requires credentials, set $AMPERE_QA_MILVUS_TOKEN or --token"
                   if not token else "; check the server and the token")
        raise StoreUnavailableError(f"cannot reach Milvus at {shown_uri(uri)} ({redact(exc)}){why}") from None


def normalize_uri(uri: str) -> str:
    """The URI a manifest records: a local Milvus Lite file as an absolute path; a server's URI
    as given, less any credentials in it (``user:password@``). Those are kept in this process's
    memory for its connections (so the build given them works) and never recorded: a warning
    says that later commands need ``$AMPERE_QA_MILVUS_TOKEN`` or ``--token``."""
    if "://" not in uri:
        return str(Path(uri).expanduser().resolve())
    bare, token = split_credentials(uri)
    if token:
        remember(uri)
        logging.getLogger("ampere_qa").warning(
            "the credentials in the Milvus URI %s serve this command only and are not recorded in "
            "the index: later commands need $%s or --token", shown_uri(uri), TOKEN_ENV)
    return bare
