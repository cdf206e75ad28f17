"""Warm ``answer()`` as a corpus grows, with the bundled model encoding every question.

    .venv/bin/python scripts/benchmark_scale.py                          # 1k and 13k passages, ~3 min
    .venv/bin/python scripts/benchmark_scale.py --paragraphs 1600,20000 --rounds 3

Each size is a folder of files of 50 paragraphs of realistic text (scripts/benchmark.py's
generator: the article's French with names and numbers swapped, English prose), built by
ampere-qa's own build (packing, windows, BM25, the passage table) in a temporary folder. Its
vectors come from a stand-in embedder of the bundled model's dimension (hashed words and
trigrams, tests/conftest.py): embedding 13k passages' ~70k texts with the model would take
most of an hour here, and what a question costs depends on how many vectors and passages it
scans, not on their values. The questions (eval/questions.jsonl) are encoded by the bundled
model, as a served index encodes them. Answers are not judged (the vectors are not the model's);
the relevance cut-off is off so that every question goes through the whole answer path.

Prints, per size: passages, sentences and windows, and the medians of the bare query encode,
``search`` and ``answer``, interleaved question by question so the machine's noise moves all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "scripts")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PER_FILE = 50


def corpus(folder: Path, paragraphs: int) -> None:
    from benchmark import realistic_passages

    texts = realistic_passages(paragraphs)
    folder.mkdir(parents=True)
    for i in range(0, len(texts), PER_FILE):
        (folder / f"doc{i // PER_FILE:04d}.txt").write_text("\n\n".join(texts[i:i + PER_FILE]) + "\n",
                                                           encoding="utf-8")


def measure(index: Path, questions: list[str], rounds: int) -> dict:
    from ampere_qa.embed.embedding import load_embedder
    from ampere_qa.indexing.index import load_index
    from ampere_qa.search import Retriever

    data = load_index(index)
    model = load_embedder()  # the bundled model, not the stand-in the vectors came from
    r = Retriever(data, model)
    r = Retriever(data, model, settings=dataclasses.replace(r.settings, min_relevance=-2.0))
    for q in questions[:10]:
        r.answer(q)
    times: dict[str, list[float]] = {"encode": [], "search": [], "answer": []}
    for _ in range(rounds):
        for q in questions:
            for name, call, arg in (("encode", lambda x: model.embed_queries([x]), q),
                                    ("search", r.search, q), ("answer", r.answer, q)):
                t = time.perf_counter()
                call(arg)
                times[name].append(time.perf_counter() - t)
    windows = data.vectors.windows
    return {"passages": len(data.passages), "sentences": len(data.sentence_owner),
            "windows": 0 if windows is None else len(windows.docs),
            **{name: statistics.median(t) * 1000 for name, t in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paragraphs", default="1600,20000",
                    help="sizes, in paragraphs (about three make two passages)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from ampere_qa.embed.embedding import load_embedder
    from ampere_qa.indexing.build import build_index
    from tests.conftest import FakeEmbedder

    class StandIn(FakeEmbedder):
        dimension = load_embedder().dimension

    questions = [json.loads(line)["question"]
                 for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    print("| paragraphs | passages | sentences | windows | build (stand-in vectors) | encode | search "
          "| answer |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="ampere-scale-") as tmp:
        for n in (int(s) for s in args.paragraphs.split(",")):
            folder = Path(tmp) / str(n)
            corpus(folder / "corpus", n)
            t0 = time.perf_counter()
            build_index(folder / "corpus", folder / "index", embedder=StandIn(), progress=False)
            built = time.perf_counter() - t0
            m = measure(folder / "index", questions, args.rounds)
            print(f"| {n:,} | {m['passages']:,} | {m['sentences']:,} | {m['windows']:,} | {built:.0f} s | "
                  f"{m['encode']:.1f} ms | {m['search']:.1f} ms | **{m['answer']:.1f} ms** |", flush=True)


if __name__ == "__main__":
    main()
