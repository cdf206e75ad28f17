"""The running server under concurrent clients (small runs of scripts/load_test.py, run as a
command), and its security basics: loopback only, no share link, no file served from a path in
the request."""

from __future__ import annotations

import inspect
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import INDEX, ROOT
from .serving import running_server

pytestmark = pytest.mark.integration

# Growth allowed across a second small run, once a first one has warmed the server up: the
# first requests of each worker thread allocate for good (measured: +54 MiB over 200 questions
# from a cold server, +72 MiB over 40 questions after one warm-up question per client), so only
# a second run tells a leak from a warm-up.
RSS_GROWTH_MIB = 32


LOAD_SCRIPT = ROOT / "scripts" / "load_test.py"
SCRIPT_TIMEOUT_S = 600


def run_load_script(*args: str) -> subprocess.CompletedProcess:
    """``python scripts/load_test.py ARGS``, as a person runs it."""
    return subprocess.run([sys.executable, str(LOAD_SCRIPT), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=SCRIPT_TIMEOUT_S)


@pytest.fixture(scope="module")
def app_server(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """``python app.py`` on a free loopback port: (process, URL)."""
    log = tmp_path_factory.mktemp("load") / "server.log"
    with running_server(INDEX, log_path=log) as (proc, url):
        yield proc, url


def test_concurrent_clients_get_right_answers_and_memory_stays_flat(app_server):
    proc, url = app_server
    run = ["--url", url, "--pid", str(proc.pid), "--questions", "40", "--clients", "8",
           "--timeout", "300", "--json"]
    run_load_script(*run)  # warm-up run
    done = run_load_script(*run)
    print(done.stdout, done.stderr)
    report = json.loads(done.stdout)["ask"]
    assert report["errors"] == 0 and report["wrong_answers"] == 0 and report["not_sent"] == 0
    assert report["answered_requests"] == 40
    assert report["rss_before_mib"] and report["rss_after_mib"]
    assert report["rss_after_mib"] - report["rss_before_mib"] < RSS_GROWTH_MIB
    assert done.returncode == 0


def test_the_json_and_openai_routes_under_concurrent_clients(app_server):
    proc, url = app_server
    done = run_load_script("--url", url, "--pid", str(proc.pid), "--questions", "30",
                           "--clients", "6", "--route", "all", "--timeout", "300", "--json")
    reports = json.loads(done.stdout)
    assert set(reports) == {"ask", "api", "openai"}
    for route, report in reports.items():
        assert (report["errors"], report["wrong_answers"], report["answered_requests"]) == \
            (0, 0, 30), (route, report)
    assert done.returncode == 0


def test_the_load_script_only_targets_loopback():
    done = run_load_script("--url", "http://example.com:7860/", "--questions", "1", "--clients", "1")
    assert done.returncode != 0
    assert "loopback only" in done.stderr


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                if len(addr) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(addr[i:i + 8])[::-1] for i in range(0, 32, 8))
                    found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def test_defaults_are_loopback_and_no_share_link(app_server):
    from ampere_qa import web
    from ampere_qa.cli.commands_serve import serve

    _, url = app_server
    port = urllib.parse.urlparse(url).port
    assert port is not None
    assert _listening_addresses(port) == {"127.0.0.1"}
    params = inspect.signature(web.serve).parameters
    assert params["host"].default == "127.0.0.1" and params["share"].default is False
    host_option = next(p for p in serve.params if p.name == "host")
    assert host_option.default == "127.0.0.1"
    app = (ROOT / "app.py").read_text(encoding="utf-8")
    assert 'default="127.0.0.1"' in app and "share" not in app


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read(200_000)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(200_000)


SECRET_PATHS = ["/etc/passwd", str(ROOT / "pyproject.toml"), str(INDEX / "manifest.json"),
                str(ROOT / "corpus" / "renault-ampere-article.txt")]
FILE_ROUTES = ["gradio_api/file={}", "file={}", "gradio_api/file/{}", "gradio_api/upload?path={}",
               "static/..%2F..%2F..%2F..{}", "assets/..%2F..%2F..%2F..{}",
               "gradio_api/file=..%2F..%2F..%2F..{}", "favicon.ico/..%2F..{}"]


@pytest.mark.parametrize("route", FILE_ROUTES)
def test_no_route_serves_a_file_named_in_the_request(app_server, route):
    _, url = app_server
    markers = [b"root:x:0:0", b"[build-system]", b'"format_version"', b"Luca de Meo"]
    for path in SECRET_PATHS:
        status, body = _get(url + route.format(urllib.parse.quote(path, safe="/")))
        assert not any(m in body for m in markers), (route, path, status)
        assert status != 200 or b"<html" in body[:2000].lower(), (route, path, status)


def test_the_api_takes_only_a_question_k_and_the_earlier_questions(app_server):
    from gradio_client import Client

    _, url = app_server
    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/ask"]
    params = api["named_endpoints"]["/ask"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["question", "k", "history"]
    assert [p["python_type"]["type"] for p in params[:2]] == ["str", "int"]
    assert not params[0]["parameter_has_default"] and params[2]["parameter_default"] is None
