"""Opening an index of a million passages: ``Retriever.load`` time and peak memory, and warm
search, with the passage table and BM25 saved at build time, against the very same index read
the way it was before they existed (every passage parsed, BM25 rebuilt at load).

    .venv/bin/python scripts/benchmark_open.py                    # 1,000,000 passages (~15 min)
    .venv/bin/python scripts/benchmark_open.py --passages 100000  # a quicker look
    .venv/bin/python scripts/benchmark_open.py --write-only       # the writer's time and memory

The passages are realistic text (scripts/benchmark.py's generator: French from the article with
names and numbers swapped, English prose), 2-3 sentences each, each opening with one of 300,000
made-up names so that the vocabulary is an archive's (hundreds of thousands of words, not the
generator's few thousand); the vectors are random unit
vectors of the fake embedder's dimension (no model: the load is what is measured). The index is
written by ampere-qa's own writer (``index.write_index``, so BM25 and the passage table are built
as a build builds them); the writer's peak is VmHWM reset just before it, beside what the
process held then (the passages and vectors a build holds too). Each load runs in a fresh
process; its peak memory is VmHWM. Prints BENCHMARKS.md rows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

QUESTIONS = ["Qui dirige Volta ?", "Combien de salariés compte Ohm ?", "How many engineers work there?",
             "Où sont les sites de Faraday ?", "Quel partenariat avec Nvidia ?", "When was it released?",
             "Quelle usine à Grenoble ?", "What does the package install?", "Combien de modèles d'ici 2030 ?",
             "Who is the chief executive?"]

CHILD = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
sys.path[:0] = [{src!r}, {root!r}]
from tests.conftest import FakeEmbedder
from ampere_qa import Retriever
t1 = time.perf_counter()
r = Retriever.load({index!r}, embedder=FakeEmbedder())
load, imports = time.perf_counter() - t1, t1 - t0
def status():
    return {{l.split(':')[0]: int(l.split()[1]) // 1024 for l in open('/proc/self/status')
            if l.startswith(('VmHWM', 'VmRSS', 'RssAnon', 'RssFile'))}}
at_load = status()
questions = {questions!r}
for q in questions:  # warm-up: the pages and passages a search touches
    r.search(q, 5)
search, answer = [], []
for _ in range(3):
    for q in questions:
        t = time.perf_counter(); r.search(q, 5); search.append(time.perf_counter() - t)
        t = time.perf_counter(); r.answer(q); answer.append(time.perf_counter() - t)
after = status()
print(json.dumps({{"load": load, "imports": imports, "rss_mb": at_load["VmHWM"], "at_load": at_load,
                  "after_search": after, "search": statistics.median(search),
                  "answer": statistics.median(answer), "passages": len(r.data.passages),
                  "lazy": type(r.data.passages).__name__, "saved_bm25": r.data.lexical is not None,
                  "top": [h.passage_id for h in r.search(questions[0], 5)]}}))
"""


def names(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct made-up proper names ("Kavuroné"), from random syllables."""
    import random

    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfgklmnprstvz" for v in ["a", "e", "i", "o", "u", "é", "ou", "ai"]]
    out: dict[str, None] = {}
    while len(out) < n:
        out["".join(rng.choice(syllables) for _ in range(rng.randint(3, 4))).capitalize()] = None
    return list(out)


def passages_of(texts: list[str]):
    import random

    from ampere_qa.types import Location, Passage

    rng, pool = random.Random(1), names(300_000)
    out = []
    for i, text in enumerate(texts):
        text = f"{rng.choice(pool)} : {text}"
        cuts = [m.end() for m in re.finditer(r"(?<=[.!?])\s+", text)]
        starts = [0, *cuts]
        ends = [len(text[:c].rstrip()) for c in cuts] + [len(text)]
        out.append(Passage(id=f"p{i:07d}", text=text,
                           locations=(Location(f"corpus/doc{i // 500:04d}.txt", 0, len(text)),),
                           sentences=tuple(zip(starts, ends, strict=True))))
    return out


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    for a in range(0, n, 200_000):  # in slices: one float64 temporary of everything is 2x the RAM
        block = rng.standard_normal((min(n, a + 200_000) - a, dim), dtype=np.float32)
        out[a:a + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def write(index: Path, n: int) -> dict:
    from benchmark import realistic_passages

    from ampere_qa.indexing import folder
    from ampere_qa.indexing.index import Vectors, write_index
    from tests.conftest import FakeEmbedder

    t0 = time.perf_counter()
    passages = passages_of(realistic_passages(n))
    sentences = sum(len(p.sentences) for p in passages)
    rng = np.random.default_rng(0)
    dim = FakeEmbedder.dimension
    vectors = Vectors(sentences=unit(rng, sentences, dim), passage_vectors=unit(rng, n, dim),
                      leave_one_out=unit(rng, sentences, dim), background=unit(rng, 64, dim))
    made = time.perf_counter() - t0
    fake = FakeEmbedder()
    described = {
        "model": {"name": fake.name, "fingerprint": fake.fingerprint(), "location": ""},
        "corpus": {"path": "../corpus", "relative_to": "index", "fingerprint": "synthetic", "files": []},
        "split": {}, "duplicates": {"exact": 0, "near": 0}, "answer": {"min_relevance": 0.0},
    }
    folder.check_target(index)
    with open("/proc/self/status") as status:
        peak = int(next(line.split()[1] for line in status if line.startswith("VmHWM")))
        status.seek(0)
        held = int(next(line.split()[1] for line in status if line.startswith("VmRSS")))
    with open("/proc/self/clear_refs", "w") as clear:  # from here VmHWM is the writer's peak
        clear.write("5")
    t0 = time.perf_counter()
    with folder.build_lock(index):
        write_index(index, passages, vectors, described, set())
    with open("/proc/self/status") as status:
        writing = int(next(line.split()[1] for line in status if line.startswith("VmHWM")))
    return {"passages": n, "sentences": sentences, "generate_s": made,
            "write_s": time.perf_counter() - t0, "peak_mb": max(peak, writing) // 1024,
            "held_mb": held // 1024, "write_peak_mb": writing // 1024}


def old_style(index: Path, old: Path) -> None:
    """The same index as one from before the saved parts: hard links, and a manifest without them."""
    from ampere_qa.indexing.index import LAZY

    old.mkdir()
    manifest = json.loads((index / "manifest.json").read_text())
    for role in LAZY:
        del manifest["files"][role]
    del manifest["lexical"]
    for entry in manifest["files"].values():
        os.link(index / entry["name"], old / entry["name"])
    (old / "manifest.json").write_text(json.dumps(manifest, indent=2))


def child(index: Path) -> dict:
    code = CHILD.format(src=str(ROOT / "src"), root=str(ROOT), index=str(index), questions=QUESTIONS)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3, help="fresh-process loads of the saved index")
    ap.add_argument("--keep", type=Path, help="write the index here and keep it (default: a temp folder)")
    ap.add_argument("--write-only", action="store_true",
                    help="write the index, print the writer's figures, stop")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ampere-open-"))
    index = args.keep or tmp / "index"
    try:
        if not (index / "manifest.json").exists():
            built = write(index, args.passages)
            print(f"# wrote {built['passages']:,} passages, {built['sentences']:,} sentences: generated "
                  f"in {built['generate_s']:.0f} s, written (BM25 and passage table included) in "
                  f"{built['write_s']:.0f} s; this process's peak memory {built['peak_mb']:,} MB", flush=True)
            print(f"| writing at scale | {built['passages']:,} passages: `write_index`, peak memory "
                  f"while writing, and above what the caller held (passages and vectors, "
                  f"{built['held_mb']:,} MB) | **{built['write_peak_mb']:,} MB, "
                  f"+{built['write_peak_mb'] - built['held_mb']:,} MB**, {built['write_s']:.0f} s | | |",
                  flush=True)
        if args.write_only:
            return
        disk = sum(f.stat().st_size for f in index.iterdir() if f.is_file())
        saved = [child(index) for _ in range(args.runs)]
        old_style(index, tmp / "old")
        before = child(tmp / "old")
        assert saved[0]["lazy"] == "PassageFile" and saved[0]["saved_bm25"] and not before["saved_bm25"]
        assert saved[0]["top"] == before["top"], "the two ways of reading disagree"
        load = statistics.median(s["load"] for s in saved)
        imports = statistics.median(s["imports"] for s in saved)
        rss = max(s["rss_mb"] for s in saved)
        anon = max(s["at_load"]["RssAnon"] for s in saved)
        later = saved[0]["after_search"]
        search = statistics.median(s["search"] for s in saved)
        answer = statistics.median(s["answer"] for s in saved)
        n = saved[0]["passages"]
        print(f"| opening at scale | {n:,} passages ({disk / 2**30:.1f} GB on disk): `Retriever.load`, "
              f"fake embedder, fresh process (median of {args.runs}; imports before it "
              f"{imports:.2f} s) | **{load:.2f} s, {rss:,} MB** peak "
              f"| before (every passage parsed, BM25 rebuilt): {before['load']:.1f} s, "
              f"{before['rss_mb']:,} MB | ≤ 5 s and ≤ 2 GB: "
              f"{'met' if load <= 5 and rss <= 2048 else 'MISSED'} |")
        print(f"| opening at scale | {n:,} passages: memory after load (private / mapped files) and "
              f"after {4 * len(QUESTIONS)} searches and answers (RSS = private + mapped pages of the "
              f"index files) | {anon:,} MB / {saved[0]['at_load']['RssFile']:,} MB; then RSS "
              f"{later['VmRSS']:,} MB ({later['RssAnon']:,} private, {later['RssFile']:,} mapped) "
              f"| before: RSS {before['after_search']['VmRSS']:,} MB "
              f"({before['after_search']['RssAnon']:,} private) | |")
        print(f"| opening at scale | {n:,} passages: warm `search` / `answer` (medians of "
              f"{3 * len(QUESTIONS)}) | {search * 1000:.1f} ms / {answer * 1000:.1f} ms | before: "
              f"{before['search'] * 1000:.1f} ms / {before['answer'] * 1000:.1f} ms | "
              f"{search / before['search']:.2f}× / {answer / before['answer']:.2f}× |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
