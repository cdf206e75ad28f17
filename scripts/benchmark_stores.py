"""The vector stores side by side at archive-like sizes: FAISS (files in the index folder),
Milvus Lite (a local .db file, what `ampere-qa build --store milvus --uri x.db` writes) and a
Milvus server (the 2.3 standalone binary of the PyPI package `milvus`, started here in a
temporary folder, when that package is installed).

    .venv/bin/python scripts/benchmark_stores.py                  # 10k, 30k, 100k vectors
    .venv/bin/python scripts/benchmark_stores.py --sizes 10000    # quicker

For each size: time to build the FAISS index / to create and fill the Milvus collection (through
the same ``stores`` code build uses, in batches), search latency p50/p95 for the retriever's
request (48 nearest sentences, k=3), recall@10 against exact search (FAISS IndexFlatIP), and the
process's resident memory growth (for the server: the server process's resident memory).
Vectors are synthetic but shaped like real ones (scripts/benchmark.py's ``synthetic()`` over
the committed index's real vectors); queries are real question embeddings of
eval/questions.jsonl, perturbed the same way. The table goes into
BENCHMARKS.md between the ``stores`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
START, END = "<!-- stores:start -->", "<!-- stores:end -->"

from ampere_qa.qa.question import DEFAULT_K  # noqa: E402 - after the path is set
from ampere_qa.settings import AnswerSettings  # noqa: E402

# What Retriever asks the store for at the default k.
SEARCH_K = DEFAULT_K * AnswerSettings().sentences_per_hit


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def real_vectors(n_questions: int) -> tuple[np.ndarray, np.ndarray]:
    """Every vector of the committed index, and real embeddings of evaluation questions."""
    from ampere_qa.embed.embedding import load_embedder
    from ampere_qa.eval import load_questions
    from ampere_qa.indexing.index import load_index

    data = load_index(ROOT / "index")
    sent = data.store.get(np.arange(data.store.count()))
    v = data.vectors
    real = np.concatenate([sent, v.passage_vectors, v.leave_one_out, v.background])
    questions = [q.question for q in load_questions(ROOT / "eval" / "questions.jsonl")][:n_questions]
    return real, load_embedder("bundled").embed_queries(questions)


def du(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def pct(xs: list[float], p: float) -> str:
    return f"{np.percentile(xs, p) * 1000:.1f} ms"


def _proc_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def _milvus_row(backend, label: str, uri: str, server_pid: int | None, n: int, ids: np.ndarray,
                base: np.ndarray, qs: np.ndarray, exact: list[set[int]], tmp: str,
                index_type: str = "FLAT") -> tuple[str, ...]:
    gc.collect()
    before = _proc_rss_mb(server_pid) if server_pid else rss_mb()
    t = time.perf_counter()
    store = backend.MilvusStore(uri, f"bench_{n}", keys=ids)
    if store.exists():
        store.drop()
    store.create(base.shape[1], {}, index_type=index_type)
    store.load()
    store.upsert(np.arange(n), base)  # rows; the store keys them by ids
    store.flush()
    store.search(qs[0], SEARCH_K)  # the first search after inserts may build the segment index
    build_s = time.perf_counter() - t
    lat, recall = [], []
    for q, truth in zip(qs, exact, strict=True):
        t = time.perf_counter()
        store.search(q, SEARCH_K)
        lat.append(time.perf_counter() - t)
        recall.append(len(truth & set(store.search(q, 10)[1].tolist())) / 10)
    if server_pid and index_type == "FLAT" and n == min(SIZES_SEEN):
        # Why searches read at "Bounded": the same request at "Strong" waits for a time tick.
        strong = []
        for q in qs[:30]:
            t = time.perf_counter()
            store.client.search(store.collection, [q.tolist()], limit=SEARCH_K,
                                search_params={"metric_type": "IP"}, consistency_level="Strong")
            strong.append(time.perf_counter() - t)
        print(f"server search p50 at Strong consistency: {pct(strong, 50)} "
              f"(Bounded: {pct(lat, 50)})", flush=True)
    if server_pid:
        mem = f"{_proc_rss_mb(server_pid):.0f} MB (server RSS; {_proc_rss_mb(server_pid) - before:+.0f})"
        disk = "(server's folder)"
    else:
        mem = f"{rss_mb() - before:.0f} MB (RSS growth)"
        disk = f"{du(Path(tmp) / f'bench-{n}.db'):.0f} MB"
    store.drop()
    store.client.close()
    return (f"{n:,}", label, f"{build_s:.2f} s", pct(lat, 50), pct(lat, 95), f"{np.mean(recall):.3f}",
            mem, disk)


def start_server(folder: str):
    """The Milvus 2.3 standalone server of the PyPI package ``milvus``, or None without it."""
    if importlib.util.find_spec("milvus") is None:
        return None
    from milvus import MilvusServer, MilvusServerConfig

    server = MilvusServer(MilvusServerConfig())
    server.set_base_dir(folder)
    server.start()
    return server


SIZES_SEEN: list[int] = []


def run(sizes: list[int], n_questions: int) -> list[tuple[str, ...]]:
    SIZES_SEEN.extend(sizes)
    from ampere_qa.indexing.stores import faiss as faiss_backend
    from ampere_qa.indexing.stores import milvus as milvus_backend

    synthetic = _benchmark_module().synthetic
    real, questions = real_vectors(n_questions)
    qs = synthetic(questions, len(questions), seed=99)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        milvus_server = start_server(str(Path(tmp) / "milvus-server"))
        server = None if milvus_server is None else (
            f"http://127.0.0.1:{milvus_server.listen_port}", milvus_server.server_proc.pid)
        try:
            rows = _sizes(sizes, real, qs, faiss_backend, milvus_backend, server, tmp)
        finally:
            if milvus_server is not None:
                milvus_server.stop()
    return rows


def _sizes(sizes, real, qs, faiss_backend, milvus_backend, server, tmp) -> list[tuple[str, ...]]:
    import faiss

    synthetic = _benchmark_module().synthetic
    rows = []
    for n in sizes:
        gc.collect()
        base = synthetic(real, n, seed=n)
        ids = np.arange(n, dtype=np.int64)
        # FAISS exact: the reference for recall, and the default store.
        t = time.perf_counter()
        index, _ = faiss_backend.make_faiss(base, "IndexFlatIP")
        faiss_store = faiss_backend.FaissStore(index)
        build_s = time.perf_counter() - t
        mem = index.ntotal * index.d * 4 / 2**20  # what it holds (RSS growth is lost in allocator reuse)
        faiss.write_index(index, str(Path(tmp) / "f.faiss"))
        disk = (Path(tmp) / "f.faiss").stat().st_size / 2**20
        exact = [set(faiss_store.search(q, 10)[1].tolist()) for q in qs]
        lat = []
        for q in qs:
            t = time.perf_counter()
            faiss_store.search(q, SEARCH_K)
            lat.append(time.perf_counter() - t)
        rows.append((f"{n:,}", "FAISS IndexFlatIP", f"{build_s:.2f} s", pct(lat, 50), pct(lat, 95),
                     "1.000", f"{mem:.0f} MB (vectors)", f"{disk:.0f} MB"))
        print(rows[-1], flush=True)
        del index, faiss_store
        gc.collect()

        # Milvus, exact (FLAT, inner product): what --store milvus builds up to 200k rows; and
        # HNSW, what it builds above (forced here at every size, to measure its recall).
        hnsw = f"HNSW (M {milvus_backend.HNSW_BUILD['M']}, ef {milvus_backend.HNSW_EF})"
        targets = [("Milvus Lite FLAT (IP)", str(Path(tmp) / f"bench-{n}.db"), None, "FLAT"),
                   (f"Milvus Lite {hnsw}", str(Path(tmp) / f"bench-{n}.db"), None, "HNSW")]
        if server is not None:
            targets += [("Milvus server 2.3 FLAT (IP)", server[0], server[1], "FLAT"),
                        (f"Milvus server 2.3 {hnsw}", server[0], server[1], "HNSW")]
        for label, uri, server_pid, kind in targets:
            rows.append(_milvus_row(milvus_backend, label, uri, server_pid, n, ids, base, qs, exact, tmp,
                                    kind))
            print(rows[-1], flush=True)
        del base
    return rows


def table(rows: list[tuple[str, ...]], seconds: float) -> str:
    import platform

    import faiss
    import pymilvus

    try:
        import milvus_lite

        lite = milvus_lite.__version__
    except Exception:
        lite = "?"
    head = (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
            f"{platform.python_version()}, faiss {faiss.__version__}, pymilvus {pymilvus.__version__}, "
            f"milvus-lite {lite}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; load average at start "
            f"{os.getloadavg()[0]:.1f}.\n\nReproduce: `.venv/bin/python scripts/benchmark_stores.py` "
            f"({seconds / 60:.1f} min).\n\n")
    lines = ["| vectors | store | build / insert | search p50 | search p95 | recall@10 vs exact "
             "| memory | disk |",
             "|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return head + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,30000,100000")
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--no-write", action="store_true", help="Print only; leave BENCHMARKS.md alone.")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = run([int(s) for s in args.sizes.split(",")], args.questions)
    text = table(rows, time.perf_counter() - t0)
    print(text)
    if not args.no_write:
        path = ROOT / "BENCHMARKS.md"
        doc = path.read_text(encoding="utf-8")
        block = f"{START}\n{text}{END}"
        doc = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, doc, flags=re.S) \
            if START in doc else doc.rstrip() + f"\n\n## Vector stores: FAISS and Milvus Lite\n\n{block}\n"
        path.write_text(doc, encoding="utf-8")


if __name__ == "__main__":
    main()
