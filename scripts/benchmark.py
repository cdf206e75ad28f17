"""Benchmark ampere-qa against the floor of the same work on the same machine.

    .venv/bin/python scripts/benchmark.py          # full run (~20 min), rewrites BENCHMARKS.md
    .venv/bin/python scripts/benchmark.py --quick  # small sizes only (~2 min)

Every figure is a median over repeated runs, and every ratio compares two figures measured in
the same run, interleaved, so that a noisy shared machine moves both sides alike. The table is
printed and written into BENCHMARKS.md between the ``benchmark`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
BIN = Path(sys.executable).parent
QUESTION = "Qui dirige Ampere ?"
START, END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
ROWS: list[tuple[str, str, str, str, str]] = []  # section, what, ours, floor, ratio/target


def row(section: str, what: str, ours: str, floor: str = "", verdict: str = "") -> None:
    ROWS.append((section, what, ours, floor, verdict))
    print(f"  {what}: {ours}" + (f"  | floor {floor}" if floor else "")
          + (f"  | {verdict}" if verdict else ""), flush=True)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def verdict(ratio: float, target: float, higher_is_better: bool = False) -> str:
    ok = ratio >= target if higher_is_better else ratio <= target
    return f"{ratio:.2f} ({'≥' if higher_is_better else '≤'} {target}: {'met' if ok else 'MISSED'})"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    ram = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))) / 2**20
    from importlib.metadata import version

    load = os.getloadavg()
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores, {ram:.0f} GB RAM; Python "
            f"{platform.python_version()}, onnxruntime {version('onnxruntime')}, torch "
            f"{version('torch')}, sentence-transformers {version('sentence-transformers')}, "
            f"faiss {version('faiss-cpu')}; "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; load average at start "
            f"{load[0]:.1f} (the machine is shared)")


# Runs a command and writes its exit code and peak RSS (kB) to a file. The command is forked from
# this small process: a child's peak counts the memory of whatever it was forked from until it
# execs (fork or vfork alike), so children of the benchmark itself (GBs by then) read high.
TRAMPOLINE = """
import os, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - t
open(sys.argv[1], "w").write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {wall}")
"""


def run_rss(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, int, float]:
    """Run a command to its end: its exit code, peak RSS in bytes and wall time in seconds."""
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run([sys.executable, "-c", TRAMPOLINE, out.name, *cmd], check=True,
                       env={**os.environ, **(env or {})})
        code, kb, wall = out.read().split()
    return int(code), int(kb) * 1024, float(wall)


# --------------------------------------------------------------------------- cold start

# The floor of a cold question: import onnxruntime, open the export's session, encode the
# question's token ids (computed here beforehand: no tokenizer at all), in a fresh process.
FLOOR = """
import sys, numpy as np, onnxruntime as ort
ids = np.array([[int(x) for x in sys.argv[2].split(",")]], dtype=np.int64)
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
s.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
"""
# What a Python app embedding the retriever pays at start, measured inside a fresh process.
EMBEDDED = """
import time, sys
t0 = time.perf_counter()
import ampere_qa
r = ampere_qa.Retriever.load(sys.argv[1])
t1 = time.perf_counter()
r.answer(sys.argv[2])
t2 = time.perf_counter()
print(t1 - t0, t2 - t0)
"""


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one fresh process."""
    code, peak, wall = run_rss(cmd, env)
    assert code == 0, cmd
    return wall, peak


def cold_start(runs: int, model_dir: Path) -> None:
    from ampere_qa.embed.embedding import OnnxEmbedder, load_embedder
    from ampere_qa.embed.model.export import GRAPH_FILE, export_dir

    print("cold start", flush=True)
    embedder = load_embedder()
    assert isinstance(embedder, OnnxEmbedder), "the ONNX export is missing: ampere-qa model install"
    ids = ",".join(map(str, embedder.encoder.tokenizer.ids("query: " + QUESTION)))
    ask = [str(BIN / "ampere-qa"), "ask", QUESTION]
    runs_of: dict[str, list[tuple[float, int]]] = {"ours": [], "torch": [], "floor": [], "app": []}
    for _ in range(runs):  # interleaved, so that a noisy machine moves every column alike
        runs_of["ours"].append(_timed(ask))
        runs_of["torch"].append(_timed(ask, {"AMPERE_QA_ENGINE": "torch"}))
        runs_of["floor"].append(_timed([sys.executable, "-c", FLOOR,
                                        str(export_dir(model_dir) / GRAPH_FILE), ids]))
        out = subprocess.run([sys.executable, "-c", EMBEDDED, str(ROOT / "index"), QUESTION],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
        runs_of["app"].append((float(out[0]), int(float(out[1]) * 1000)))

    def wall(k: str) -> float:
        return med([w for w, _ in runs_of[k]])

    def rss(k: str) -> float:
        return med([m for _, m in runs_of[k]]) / 2**20

    ok = wall("ours") <= 1.5 and rss("ours") <= 450
    row("cold start", f'`ampere-qa ask "{QUESTION}"` (median of {runs})',
        f"{wall('ours'):.2f} s, {rss('ours'):.0f} MB peak",
        f"{wall('floor'):.2f} s, {rss('floor'):.0f} MB (import onnxruntime, open the session, "
        "encode the token ids)",
        f"{wall('ours') / wall('floor'):.2f}× the floor; ≤ 1.5 s and ≤ 450 MB: "
        + ("met" if ok else "MISSED"))
    row("cold start", "same with `AMPERE_QA_ENGINE=torch` (sentence-transformers, as before)",
        f"{wall('torch'):.2f} s, {rss('torch'):.0f} MB peak", "",
        f"ONNX path {wall('torch') / wall('ours'):.1f}× faster")
    load_s = wall("app")
    first = med([ms_ / 1000 for _, ms_ in runs_of["app"]])
    row("cold start", "`import ampere_qa` + `Retriever.load(index)` in a fresh process",
        f"{load_s:.2f} s", f"{first:.2f} s with the first `answer()` (opens the session)",
        "≤ 1.2 s: " + ("met" if load_s <= 1.2 else "MISSED"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ask_http(port: int, question: str) -> None:
    base = f"http://127.0.0.1:{port}/gradio_api/call/ask"
    req = urllib.request.Request(base, json.dumps({"data": [question, 3]}).encode(),
                                 {"Content-Type": "application/json"})
    event = json.loads(urllib.request.urlopen(req, timeout=60).read())["event_id"]
    body = urllib.request.urlopen(f"{base}/{event}", timeout=60).read().decode()
    assert "complete" in body, body[:300]


GRADIO = """
import time, sys
t = time.perf_counter()
from ampere_qa.web.app import load_gradio
load_gradio()
print(time.perf_counter() - t)
"""


def web_app(runs: int) -> None:
    print("web app", flush=True)
    ready, peaks, gradio = [], [], []
    for _ in range(runs):
        gradio.append(float(subprocess.run([sys.executable, "-c", GRADIO], cwd=ROOT, check=True,
                                           capture_output=True, text=True).stdout))
        port = _free_port()
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "ampere-qa ready on" in line:
                    ready.append(time.perf_counter() - t)
                    break
            for q in ["Qui dirige Ampere ?", "How many engineers work for Ampere?",
                      "Où sont les usines ?", "What does Qualcomm do?"] * 3:
                _ask_http(port, q)
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) * 1024)  # type: ignore[union-attr]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    row("cold start", f"web app: `python app.py` launch to ready (median of {runs})", f"{med(ready):.2f} s",
        f"{med(gradio):.2f} s of it `import gradio` alone (fresh process)",
        "≤ 3 s: " + ("met" if med(ready) <= 3 else "MISSED"))
    row("memory", "web app peak RSS after 12 questions", f"{med(peaks) / 2**20:.0f} MB")


# --------------------------------------------------------------------------- warm query

def bare_encoder(embedder, threads: int | None = None):
    """``encode(texts, batch_size)`` straight on the engine: the floor of any embedding step."""
    from ampere_qa.embed.embedding import OnnxEmbedder
    from ampere_qa.embed.model.export import OnnxEncoder

    if isinstance(embedder, OnnxEmbedder):
        from ampere_qa.embed.model.export import export_dir

        enc = OnnxEncoder(export_dir(Path(embedder.location())), threads=threads)

        def encode(texts: list[str], batch_size: int = 32) -> np.ndarray:
            enc.batch_size = batch_size
            return enc.encode(texts, embedder.dimension)
        return encode
    import torch

    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    model = embedder.model
    return lambda texts, batch_size=32: model.encode(texts, batch_size=batch_size,
                                                     normalize_embeddings=True)


def warm_query(retriever, questions: list[str], reps: int) -> None:
    from ampere_qa.qa import language, understand
    from ampere_qa.qa.question import clean_question
    from ampere_qa.qa.rules import rules

    settings = retriever.settings
    read_rules = rules(settings.languages, settings.domains)

    print("warm query", flush=True)
    retriever.answer(QUESTION)
    floor = {1: [], 2: []}
    ours: list[float] = []
    parts: dict[str, list[float]] = {k: [] for k in ("language.detect", "embed query", "BM25", "FAISS search",
                                                      "rank+fuse", "read question", "answer")}
    bare = {n: bare_encoder(retriever.embedder, n) for n in (1, 2)}
    for q in questions * reps:  # the floor on both cores, in its own pass
        t = time.perf_counter()
        bare[2](["query: " + q])
        floor[2].append(time.perf_counter() - t)
    for _ in range(reps):
        for q in questions:
            t = time.perf_counter()
            bare[1](["query: " + q])
            floor[1].append(time.perf_counter() - t)
            t = time.perf_counter()
            retriever.answer(q)
            ours.append(time.perf_counter() - t)
            text = clean_question(q)
            for name, fn in (("language.detect", lambda text=text: language.detect(text)),
                             ("embed query", lambda text=text: retriever._embed(text))):
                t = time.perf_counter()
                fn()
                parts[name].append(time.perf_counter() - t)
            qv = retriever._embed(text)
            steps = (("BM25", lambda text=text: retriever.lexical.scores(text)),
                     ("FAISS search",
                      lambda qv=qv: retriever.data.store.search(qv, 3 * settings.sentences_per_hit)),
                     ("rank+fuse", lambda text=text, qv=qv: retriever.ranker.rank(text, qv, 3)),
                     ("read question",
                      lambda text=text: understand.read(text, read_rules, settings.typed_words)),
                     ("answer",  # answerability, the answering sentence, the short answer
                      lambda text=text, qv=qv: retriever.pipeline._answer(
                          text, retriever.pipeline.read(text), qv,
                          retriever.ranker.rank(text, qv, 3), 1.0)))
            for name, fn in steps:
                t = time.perf_counter()
                fn()
                parts[name].append(time.perf_counter() - t)
    f1, f2 = med(floor[1]), med(floor[2])
    best = min(f1, f2)
    row("warm query", f"`Retriever.answer()` (median of {len(ours)})", ms(med(ours)),
        f"{ms(best)} bare encode of the query (1 thread {ms(f1)}, 2 threads {ms(f2)})",
        verdict(med(ours) / best, 1.2) + "; ≤ 17.9 ms (before the ONNX path): "
        + ("met" if med(ours) <= 0.0179 else "MISSED"))
    row("warm query", "where the time goes (medians)",
        ", ".join(f"{k} {med(v) * 1000:.2f} ms" for k, v in parts.items()))


# --------------------------------------------------------------------------- realistic text

def _sentences_from(text: str) -> list[str]:
    out = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [s for s in out if 40 <= len(s) <= 240 and re.match(r"^[A-ZÀ-Ý]", s) and "http" not in s
            and not re.search(r"[`{}<>|=#*\[\]]", s)]


def realistic_passages(n: int, seed: int = 0) -> list[str]:
    """~n paragraphs of 2-3 sentences: French from the article with names, numbers and places
    swapped, mixed with English prose from the installed packages' descriptions."""
    rng = random.Random(seed)
    article = (ROOT / "corpus").glob("*.txt")
    french = sorted({s for p in article for s in _sentences_from(p.read_text(encoding="utf-8"))})
    swaps = {
        "Ampere": ["Volta", "Ohm", "Faraday", "Tesla Europe", "Kelvin", "Joule Mobilité"],
        "Renault": ["Stellantis", "Peugeot", "Citroën", "Dacia", "Alpine", "Michelin"],
        "Luca de Meo": ["Marie Dupont", "Jean Martin", "Claire Bernard", "Paul Moreau"],
        "Cléon": ["Lyon", "Lille", "Nantes", "Rennes", "Grenoble", "Toulouse"],
        "Douai": ["Bordeaux", "Metz", "Caen", "Dijon", "Reims"],
        "Qualcomm": ["Nvidia", "Intel", "Arm", "Bosch", "Valeo"],
    }
    english: list[str] = []
    import site

    for meta in sorted(Path(site.getsitepackages()[0]).glob("*.dist-info/METADATA")):
        english += _sentences_from(meta.read_text(encoding="utf-8", errors="replace"))
    english = sorted(set(english))

    def vary_fr() -> str:
        s = rng.choice(french)
        for word, alts in swaps.items():
            s = s.replace(word, rng.choice(alts))
        return re.sub(r"\d+", lambda m: str(int(m.group()) * rng.randint(2, 9) // rng.randint(1, 3)), s)

    out = []
    for _ in range(n):
        k = rng.choice((2, 2, 3))
        out.append(" ".join(vary_fr() if rng.random() < 0.35 else rng.choice(english) for _ in range(k)))
    return out


def write_corpus(folder: Path, passages: list[str], per_file: int = 500) -> None:
    folder.mkdir(parents=True)
    for i in range(0, len(passages), per_file):
        (folder / f"doc{i // per_file:04d}.txt").write_text("\n\n".join(passages[i:i + per_file]) + "\n",
                                                           encoding="utf-8")


# --------------------------------------------------------------------------- build

def build_throughput(embedder, tmp: Path, n: int) -> np.ndarray:
    from ampere_qa import build_index
    from ampere_qa.embed.embedding import SentenceTransformerEmbedder

    print("build", flush=True)
    passages = realistic_passages(n, seed=1)
    corpus = tmp / "build-corpus"
    write_corpus(corpus, passages)
    encode = bare_encoder(embedder)
    torch_encode = bare_encoder(SentenceTransformerEmbedder("bundled"))
    engines: dict[str, list[float]] = {"onnx": [], "torch": []}
    for _ in range(2):  # interleaved
        for name, fn in (("onnx", encode), ("torch", torch_encode)):
            t = time.perf_counter()
            fn(["passage: " + p for p in passages], batch_size=8 if name == "onnx" else 32)
            engines[name].append(n / (time.perf_counter() - t))
    row("build", f"bare encode of the passages by engine ({n} passages, 2 threads, median of 2)",
        f"onnxruntime {med(engines['onnx']):.0f}/s (batches of 8)",
        f"sentence-transformers {med(engines['torch']):.0f}/s (batches of 32)",
        f"{med(engines['onnx']) / med(engines['torch']):.2f}")
    sizes = {}
    for bs in (16, 32, 64):
        t = time.perf_counter()
        encode(["passage: " + p for p in passages], batch_size=bs)
        sizes[bs] = time.perf_counter() - t
    row("build", f"bare encode of the passages by batch size ({n} passages, 2 threads)",
        ", ".join(f"{bs}: {n / s:.0f}/s" for bs, s in sizes.items()))
    ours, floor = [], []
    for i in range(2):
        t = time.perf_counter()
        encode(["passage: " + p for p in passages], batch_size=32)
        floor.append(time.perf_counter() - t)
        t = time.perf_counter()
        report = build_index(corpus, tmp / f"build-index-{i}", embedder=embedder, reuse=False)
        ours.append(time.perf_counter() - t)
    texts = report.embedded
    t = time.perf_counter()
    from ampere_qa.indexing.build import background_texts, leave_one_out_texts
    from ampere_qa.indexing.index import load_index

    data = load_index(tmp / "build-index-0")
    same = list(dict.fromkeys([p.text for p in data.passages]
                              + [s for p in data.passages for s in p.sentence_texts()]
                              + [x for p in data.passages for x in leave_one_out_texts(p)]
                              + background_texts()))
    t = time.perf_counter()
    encode(["passage: " + x for x in same], batch_size=32)
    all_floor = time.perf_counter() - t
    row("build", f"`build_index` passages/s ({n} passages, {texts} texts embedded)",
        f"{n / med(ours):.1f}/s", f"{n / med(floor):.1f}/s bare encode of the passages",
        verdict(med(floor) / med(ours), 0.9, higher_is_better=True))
    row("build", "same, against encoding every text the build needs (passages, sentences, "
        "leave-one-out, anchors)", f"{texts / med(ours):.1f} texts/s", f"{len(same) / all_floor:.1f} texts/s",
        f"{all_floor / med(ours):.2f}")
    # Rebuild after changing one file: only its new texts are embedded.
    first = corpus / "doc0000.txt"
    changed = first.read_text(encoding="utf-8").replace(passages[0], passages[0] + " Une phrase ajoutée.")
    first.write_text(changed, encoding="utf-8")
    t = time.perf_counter()
    again = build_index(corpus, tmp / "build-index-0", embedder=embedder)
    row("build", "rebuild after one paragraph changed (vectors reused)", f"{time.perf_counter() - t:.2f} s",
        f"{med(ours):.2f} s full build", f"{again.embedded} texts embedded, {again.reused} reused")
    peaks = {}
    for engine in ("onnx", "torch"):
        cmd = [str(BIN / "ampere-qa"), "build", "--corpus", str(corpus), "--index",
               str(tmp / f"cli-index-{engine}"), "--json"]
        code, peaks[engine], _ = run_rss(cmd, {"AMPERE_QA_ENGINE": engine})
        assert code == 0, cmd
    row("memory", f"`ampere-qa build` peak RSS ({n} passages, model load included)",
        f"{peaks['onnx'] / 2**20:.0f} MB", f"{peaks['torch'] / 2**20:.0f} MB with AMPERE_QA_ENGINE=torch")
    sent = data.store.get(np.arange(data.store.count()))
    return np.concatenate([data.vectors.passage_vectors, sent])


def end_to_end(embedder, tmp: Path, n: int, questions: list[str]) -> None:
    from ampere_qa import Retriever, build_index

    print(f"end to end, {n} real passages", flush=True)
    corpus = tmp / "e2e-corpus"
    write_corpus(corpus, realistic_passages(n, seed=2))
    t = time.perf_counter()
    report = build_index(corpus, tmp / "e2e-index", embedder=embedder)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    r = Retriever.load(tmp / "e2e-index", embedder=embedder)
    load_s = time.perf_counter() - t
    r.answer(questions[0])
    lat = []
    for q in questions * 2:
        t = time.perf_counter()
        r.answer(q)
        lat.append(time.perf_counter() - t)
    disk = sum(f.stat().st_size for f in (tmp / "e2e-index").iterdir())
    row("scale (real text)", f"{report.passages} passages, {report.sentences} sentences: build",
        f"{build_s:.0f} s ({report.passages / build_s:.0f} passages/s, {report.embedded} texts)")
    row("scale (real text)", "load (index + BM25, model already loaded) / answer median / disk",
        f"{load_s:.2f} s / {ms(med(lat))} / {disk / 2**20:.0f} MB")


# --------------------------------------------------------------------------- scale (vectors only)

def synthetic(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Noisy mixtures of real embeddings: each vector is a real one, plus a third of another,
    plus Gaussian noise of about 0.35 of its norm, normalised. Keeps the real vectors' strong
    common direction and topical clusters (uniform random vectors would have neither)."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    out = np.empty((n, d), np.float32)
    for a in range(0, n, 100_000):
        b = min(n, a + 100_000)
        i = rng.integers(0, len(real), b - a)
        j = rng.integers(0, len(real), b - a)
        v = real[i] + 0.33 * real[j] + rng.normal(0, 0.35 / np.sqrt(d), (b - a, d)).astype(np.float32)
        out[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def scale(real: np.ndarray, queries: np.ndarray, sizes: list[int], tmp: Path) -> None:
    import faiss

    from ampere_qa.indexing.stores import faiss as faiss_backend
    from ampere_qa.qa.question import DEFAULT_K
    from ampere_qa.settings import AnswerSettings

    wanted = DEFAULT_K * AnswerSettings().sentences_per_hit  # sentences Retriever asks the store for

    print("scale", flush=True)
    qs = synthetic(queries, len(queries), seed=99)  # questions, slightly perturbed
    for n in sizes:
        gc.collect()
        base = synthetic(real, n, seed=n)
        results = {}
        exact_ids = None
        for kind in ("IndexFlatIP", "IndexIVFFlat"):
            t = time.perf_counter()
            idx, info = faiss_backend.make_faiss(base, kind)
            build = time.perf_counter() - t
            path = tmp / f"scale-{n}-{kind}.faiss"
            faiss.write_index(idx, str(path))
            disk = path.stat().st_size
            lat = []
            for q in qs:
                t = time.perf_counter()
                idx.search(q.reshape(1, -1), wanted)
                lat.append(time.perf_counter() - t)
            _, ids = idx.search(qs, 10)
            if exact_ids is None:
                exact_ids = ids
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids, strict=True)])
            t = time.perf_counter()
            h = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 24), b""):
                    h.update(block)
            full_hash = time.perf_counter() - t
            results[kind] = (med(lat), recall)
            params = info.get("faiss_params")
            extra = f", nprobe {params['nprobe']}/{params['nlist']}" if params else ""
            row("scale (vectors)", f"{n:,} vectors, {kind}{extra}",
                f"search {ms(med(lat))}, build {build:.1f} s, RAM≈disk {disk / 2**20:.0f} MB",
                f"recall@10 {recall:.3f}", f"sha256 of the file {full_hash:.2f} s")
            if kind == "IndexIVFFlat" and n == max(sizes):
                sweep = []
                ivf = faiss.extract_index_ivf(idx)
                for probe in (8, 16, 32, 64, 128):
                    ivf.nprobe = probe
                    lat = []
                    for q in qs[:50]:
                        t = time.perf_counter()
                        idx.search(q.reshape(1, -1), wanted)
                        lat.append(time.perf_counter() - t)
                    _, ids = idx.search(qs, 10)
                    rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids, strict=True)])
                    sweep.append(f"{probe}: {ms(med(lat))} r {rec:.3f}")
                row("scale (vectors)", f"{n:,}: IVF nprobe sweep (latency, recall@10)", "; ".join(sweep))
            del idx
            path.unlink()
        exact, approx = results["IndexFlatIP"][0], results["IndexIVFFlat"][0]
        row("scale (vectors)", f"{n:,}: IVF speed-up and recall@10 vs exact", f"{exact / approx:.1f}×",
            "", verdict(exact / approx, 10, True) + f"; recall {results['IndexIVFFlat'][1]:.3f} (≥ 0.95: "
            f"{'met' if results['IndexIVFFlat'][1] >= 0.95 else 'MISSED'})" if n >= 1_000_000 else "")
        del base
    row("scale (vectors)", "which index the build picks",
        f"exact up to {faiss_backend.EXACT_MAX_VECTORS:,} sentence vectors, IVF above")


# --------------------------------------------------------------------------- main

def table() -> str:
    lines = ["| section | measure | ampere-qa | floor / reference | ratio, target |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(c.replace('|', '/') for c in r)} |" for r in ROWS]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes only (< 2 minutes)")
    ap.add_argument("--no-write", action="store_true", help="print, do not update BENCHMARKS.md")
    args = ap.parse_args()
    os.chdir(ROOT)  # the commands below name the checkout's index and app.py relatively
    quick = args.quick
    t0 = time.perf_counter()
    header = machine()
    print(header, flush=True)

    from ampere_qa import Retriever
    from ampere_qa.embed.model import ensure_bundled_model
    from ampere_qa.eval import load_questions

    questions = [q.question for q in load_questions(ROOT / "eval/questions.jsonl")]
    model_dir = ensure_bundled_model()
    cold_start(1 if quick else 3, model_dir)
    if not quick:
        web_app(2)
    retriever = Retriever.load(ROOT / "index")
    warm_query(retriever, questions[::6 if quick else 3], 1 if quick else 2)
    tmp = Path(tempfile.mkdtemp(prefix="ampere-bench-"))
    try:
        real = build_throughput(retriever.embedder, tmp, 100 if quick else 600)
        end_to_end(retriever.embedder, tmp, 300 if quick else 2_000, questions[::10])
        qvecs = retriever.embedder.embed_queries(questions)
        scale(real, qvecs[:100], [10_000] if quick else [10_000, 100_000, 1_000_000], tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    minutes = (time.perf_counter() - t0) / 60
    cmd = ".venv/bin/python scripts/benchmark.py" + (" --quick" if quick else "")
    body = (f"Machine: {header}.\n\nReproduce: `{cmd}` ({minutes:.1f} min; benchmark process peak RSS "
            f"{peak:.0f} MB).\n\n{table()}\n")
    print("\n" + body)
    if not args.no_write:
        md = ROOT / "BENCHMARKS.md"
        text = md.read_text(encoding="utf-8") if md.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
        a, b = text.index(START) + len(START), text.index(END)
        md.write_text(text[:a] + "\n" + body + text[b:], encoding="utf-8")


if __name__ == "__main__":
    main()
