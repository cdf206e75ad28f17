"""Load test: many concurrent clients asking the running web app through one of its HTTP APIs.

    python scripts/load_test.py --start                       # launch app.py on a free port, then test
    python scripts/load_test.py --url http://127.0.0.1:7860/ --pid 12345
    python scripts/load_test.py --start --questions 400 --clients 32 --json
    python scripts/load_test.py --start --route all           # /ask, /api/ask, /v1/chat/completions
    python scripts/load_test.py --start --route api --clients 1 --compare-answer

Routes: ``ask`` is the page's Gradio endpoint (one ``gradio_client.Client`` per worker thread),
``api`` the plain JSON route ``POST /api/ask``, ``openai`` ``POST /v1/chat/completions`` (one
``httpx.Client`` per worker for both); ``all`` runs the three, one after the other, on the same
server. ``--compare-answer`` also times ``Retriever.answer`` in this process on the same
questions (the server idle meanwhile), so that the HTTP overhead can be read off. The questions
cycle through a fixed
French/English list whose answers were checked by hand, and every reply is checked: the JSON
contract, each citation's ``source[start:end] == text``, and the expected excerpt in the answer
sentence (or "not found" for the off-topic question). It prints errors, wrong answers,
throughput, p50/p95/p99 latency and the server's resident memory before and after (read from
``/proc/PID/status``: known when the script started the server, or given with ``--pid``),
"before" being after each client's first (warm-up, uncounted) question.

Loopback only and bounded: at most ``--questions`` requests, stopped after ``--timeout`` seconds.
Exit code 0 when there were no errors and no wrong answers, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ampere_qa import types

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"^ampere-qa ready on (http://\S+)$")

# (question, excerpt the answer sentence must contain; None: the reply must be "not found").
# Checked against the committed index with the bundled model.
CASES: list[tuple[str, str | None]] = [
    ("Qui dirige Ampere ?", "Luca de Meo"),
    ("Combien de salariés compte Ampere ?", "11 000 salariés"),
    ("Quand Ampere sera-t-elle introduite en bourse ?", "premier semestre 2024"),
    ("Quels modèles Ampere proposera-t-elle d'ici 2025 ?", "Megane"),
    ("Quand le projet Ampere a-t-il été évoqué ?", "novembre 2022"),
    ("Nissan va-t-il investir dans Ampere ?", "Nissan et Mitsubishi"),
    ("How many engineers work for Ampere?", "35 % sont des ingénieurs"),
    ("How many sites does Ampere have in France?", "11 sites en France"),
    ("What does Ampere's logo represent?", "losange historique"),
    ("When will the birth of Ampere be celebrated?", "15 novembre"),
    ("What is the capital of Australia?", None),
]
KEYS = set(types.ANSWER_KEYS)
CITATION_KEYS = set(types.CITATION_KEYS)


def rss_kib(pid: int) -> int | None:
    """Resident memory of ``pid`` in KiB (``VmRSS``), or None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index: str | None = None, timeout: float = 180.0,
                 log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``python app.py --port <free>`` on 127.0.0.1; returns the process and its URL once ready."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    if index:
        cmd += ["--index", index]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log = log_path.open("w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
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
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check(result: Any, expected: str | None, sources: dict[str, str]) -> str | None:
    """Why ``result`` is wrong, or None when it is right."""
    if not isinstance(result, dict) or set(result) - {"reason"} != KEYS:
        return f"not the JSON contract: {str(result)[:200]}"
    if expected is None:
        return None if result["answered"] is False and not result["citations"] else "answered off-topic"
    if result["answered"] is not True or not result["citations"]:
        return "not answered"
    for c in result["citations"]:
        if not isinstance(c, dict) or set(c) != CITATION_KEYS:
            return f"citation not in the contract: {c}"
        if c["source"] not in sources:
            sources[c["source"]] = (ROOT / c["source"]).read_text(encoding="utf-8")
        if sources[c["source"]][c["start"]:c["end"]] != c["text"]:
            return f"citation {c['rank']} does not match {c['source']}[{c['start']}:{c['end']}]"
    if expected not in result["answer"]:
        return f"expected {expected!r} in the answer, got {result['answer'][:160]!r}"
    return None


@dataclass
class Report:
    questions: int
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    not_sent: int = 0
    rss_before_kib: int | None = None
    rss_after_kib: int | None = None

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]  # nearest rank

    def to_dict(self) -> dict[str, Any]:
        done = len(self.latencies)
        return {
            "questions": self.questions, "clients": self.clients, "answered_requests": done,
            "errors": len(self.errors), "wrong_answers": len(self.wrong), "not_sent": self.not_sent,
            "seconds": round(self.seconds, 2),
            "throughput_per_s": round(done / self.seconds, 2) if self.seconds else None,
            "latency_ms": {f"p{p}": round(1000 * self.percentile(p), 1) for p in (50, 95, 99)}
            | {"max": round(1000 * max(self.latencies, default=float("nan")), 1)},
            "rss_before_mib": None if self.rss_before_kib is None else round(self.rss_before_kib / 1024, 1),
            "rss_after_mib": None if self.rss_after_kib is None else round(self.rss_after_kib / 1024, 1),
            "error_samples": self.errors[:5], "wrong_samples": self.wrong[:5],
        }

    @property
    def ok(self) -> bool:
        return not self.errors and not self.wrong and not self.not_sent


ROUTES = ("ask", "api", "openai")


def make_client(route: str, url: str) -> Any:
    """A function question -> answer JSON for ``route``, with its own connection."""
    if route == "ask":
        from gradio_client import Client

        client = Client(url, verbose=False)
        return lambda question: client.predict(question, api_name="/ask")
    import httpx

    http = httpx.Client(base_url=url.rstrip("/"), timeout=60)
    if route == "api":
        def api(question: str) -> Any:
            r = http.post("/api/ask", json={"question": question})
            r.raise_for_status()
            return r.json()
        return api

    def openai(question: str) -> Any:
        r = http.post("/v1/chat/completions",
                      json={"model": "ampere-qa", "messages": [{"role": "user", "content": question}]})
        r.raise_for_status()
        return r.json()["ampere_qa"]
    return openai


def run_load(url: str, questions: int = 200, clients: int = 20, timeout: float = 600.0,
             pid: int | None = None, route: str = "ask") -> Report:
    """Send ``questions`` questions from ``clients`` threads (one client each) to ``url``."""
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load-test {host}: loopback only")
    report = Report(questions, clients)
    work: queue.Queue[int] = queue.Queue()
    for i in range(questions):
        work.put(i)
    lock = threading.Lock()
    # Every client connects and asks one warm-up question first (checked, not counted), so the
    # memory "before" is that of a server that has met all its clients once.
    ready = threading.Barrier(clients + 1)
    deadline = time.monotonic() + timeout

    def ask(client: Any, question: str, expected: str | None, sources: dict[str, str],
            count: bool) -> None:
        t0 = time.perf_counter()
        try:
            result = client(question)
        except Exception as exc:
            with lock:
                report.errors.append(f"{question!r}: {type(exc).__name__}: {str(exc)[:200]}")
            return
        elapsed = time.perf_counter() - t0
        why = check(result, expected, sources)
        with lock:
            if count:
                report.latencies.append(elapsed)
            if why:
                report.wrong.append(f"{question!r}: {why}")

    def worker(n: int) -> None:
        sources: dict[str, str] = {}
        client = None
        try:
            client = make_client(route, url)
            ask(client, *CASES[n % len(CASES)], sources, count=False)
        except Exception as exc:
            with lock:
                report.errors.append(f"client: {type(exc).__name__}: {exc}")
        finally:
            ready.wait()
        while client is not None and time.monotonic() < deadline:
            try:
                i = work.get_nowait()
            except queue.Empty:
                return
            ask(client, *CASES[i % len(CASES)], sources, count=True)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(worker, n) for n in range(clients)]
        ready.wait()
        report.rss_before_kib = rss_kib(pid) if pid else None
        t0 = time.perf_counter()
        for f in futures:
            f.result()
        report.seconds = time.perf_counter() - t0
    report.not_sent = work.qsize()
    report.rss_after_kib = rss_kib(pid) if pid else None
    return report


def format_report(r: Report) -> str:
    d = r.to_dict()
    lat = d["latency_ms"]
    rss = ("server RSS      unknown (pass --pid)" if d["rss_before_mib"] is None else
           f"server RSS      {d['rss_before_mib']} MiB before, {d['rss_after_mib']} MiB after "
           f"({d['rss_after_mib'] - d['rss_before_mib']:+.1f} MiB)")
    lines = [
        f"questions       {d['questions']} from {d['clients']} concurrent clients "
        f"({d['answered_requests']} answered, {d['not_sent']} not sent before the time limit)",
        f"errors          {d['errors']}",
        f"wrong answers   {d['wrong_answers']}",
        f"elapsed         {d['seconds']} s",
        f"throughput      {d['throughput_per_s']} questions/s",
        f"latency         p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, max {lat['max']} ms",
        rss,
    ]
    lines += [f"  error: {e}" for e in d["error_samples"]]
    lines += [f"  wrong: {w}" for w in d["wrong_samples"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="URL of a running app (loopback only)")
    where.add_argument("--start", action="store_true", help="launch python app.py on a free port")
    parser.add_argument("--pid", type=int, help="server process id, for its memory (with --url)")
    parser.add_argument("--index", help="index folder for --start [default: app.py's]")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600.0, help="stop sending after this many s")
    parser.add_argument("--route", choices=[*ROUTES, "all"], default="ask",
                        help="which HTTP API to load [default: ask, the page's Gradio endpoint]")
    parser.add_argument("--compare-answer", action="store_true",
                        help="also time Retriever.answer in this process on the same questions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 200 or not 1 <= args.questions <= 100_000:
        parser.error("--clients must be 1-200 and --questions 1-100000")
    proc = None
    url, pid = args.url, args.pid
    if args.start:
        proc, url = start_server(args.index)
        pid = proc.pid
        print(f"started {url} (pid {pid})", file=sys.stderr)
    routes = ROUTES if args.route == "all" else (args.route,)
    reports: dict[str, Report] = {}
    try:
        for route in routes:
            reports[route] = run_load(url, args.questions, args.clients, args.timeout, pid, route)
    finally:
        if proc:
            stop_server(proc)
    answer_ms = answer_median_ms(args.index, args.questions) if args.compare_answer else None
    if args.json:
        out: dict[str, Any] = {route: r.to_dict() for route, r in reports.items()}
        if answer_ms is not None:
            out["answer_in_process_p50_ms"] = round(answer_ms, 1)
        print(json.dumps(out, indent=2))
    else:
        for route, r in reports.items():
            print(f"== route {route} ==\n{format_report(r)}")
        if answer_ms is not None:
            print(f"Retriever.answer in process: p50 {answer_ms:.1f} ms on the same questions")
    return 0 if all(r.ok for r in reports.values()) else 1


def answer_median_ms(index: str | None, questions: int) -> float:
    """Median wall time of ``Retriever.answer`` here, warm, on the load test's questions."""
    import statistics

    from ampere_qa import Retriever

    retriever = Retriever.load(index or ROOT / "index")
    for question, _ in CASES:
        retriever.answer(question)  # warm: the model, the caches
    times = []
    for i in range(questions):
        t0 = time.perf_counter()
        retriever.answer(CASES[i % len(CASES)][0])
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
