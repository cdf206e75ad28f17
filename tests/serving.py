"""The real server for the tests that need one: ``python app.py`` on a free loopback port,
started in a subprocess, found ready from its ready line, and stopped afterwards.

(scripts/load_test.py keeps its own starter: a script runs on its own, without the tests.)
"""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import INDEX, ROOT

READY = re.compile(r"^ampere-qa ready on (http://\S+)$")
# Seconds the server gets to print its ready line (it may build an index first) and to exit.
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15
# Characters of the server's log shown when it did not start.
LOG_TAIL_CHARS = 3000
SERVER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
              "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int | None:
    """Resident memory of ``pid`` in KiB (``VmRSS``), or None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def index_for(tmp: Path) -> Path:
    """The committed index when it is there; otherwise a folder in ``tmp`` that app.py builds
    the index into (never into the checkout)."""
    return INDEX if (INDEX / "manifest.json").exists() else tmp / "index"


def start_server(index: str | Path, log_path: Path | None = None,
                 env: dict[str, str] | None = None,
                 timeout: float = START_TIMEOUT_S,
                 corpus: str | Path | None = None) -> tuple[subprocess.Popen, str]:
    """``python app.py --port <free>`` on 127.0.0.1 (``env`` added to the environment; with
    ``corpus``, a missing index is built from it); returns the process and its URL once ready,
    or raises RuntimeError."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port),
           "--index", str(index)] + (["--corpus", str(corpus)] if corpus else [])
    log = log_path.open("w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **SERVER_ENV, **(env or {})},
                            stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            stop_server(proc)
            raise RuntimeError(f"the server did not start (exit code {proc.poll()})")
        m = READY.match(line.strip())
        if m:
            return proc, m.group(1) + "/"


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_server(index: str | Path, log_path: Path, env: dict[str, str] | None = None,
                   corpus: str | Path | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """:func:`start_server` for the span of a ``with``: (process, URL). A server that does not
    start fails the test with the end of its log."""
    try:
        proc, url = start_server(index, log_path=log_path, env=env, corpus=corpus)
    except RuntimeError as exc:
        pytest.fail(f"{exc}:\n{log_path.read_text(errors='replace')[-LOG_TAIL_CHARS:]}")
    try:
        yield proc, url
    finally:
        stop_server(proc)
