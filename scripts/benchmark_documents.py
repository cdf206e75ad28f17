"""Warm ``answer()`` with and without the documents' windows, on one index, interleaved.

    .venv/bin/python scripts/benchmark_documents.py INDEX SET.squad.json [--rounds 3]

The index is any ampere-qa index of several documents (``ampere-qa eval --squad SET
--build-corpus DIR`` builds one); the questions are the set's. Each round answers every
question once with document evidence (the index's ``document_weight``) and once without
(``document_weight = 0``), alternately question by question, so a noisy shared machine moves
both alike. Prints the passage and window counts, the median of each and their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ampere_qa.eval.squad import load_squad  # noqa: E402
from ampere_qa.search import Retriever  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index")
    ap.add_argument("squad")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    on = Retriever.load(args.index)
    off = Retriever(on.data, on.embedder, settings=dataclasses.replace(on.settings, document_weight=0.0))
    questions = [q.question for q in load_squad(args.squad).questions]
    for q in questions[:10]:
        on.answer(q)
        off.answer(q)
    times: dict[str, list[float]] = {"with windows": [], "without": []}
    for _ in range(args.rounds):
        for q in questions:
            for name, r in (("with windows", on), ("without", off)):
                t = time.perf_counter()
                r.answer(q)
                times[name].append(time.perf_counter() - t)
    windows = on.data.vectors.windows
    print(f"{len(on.data.passages)} passages, {0 if windows is None else len(windows.docs)} windows, "
          f"{len(questions)} questions x {args.rounds}")
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, ms in medians.items():
        print(f"{name}: {ms:.1f} ms median")
    print(f"ratio: {medians['with windows'] / medians['without']:.3f}")


if __name__ == "__main__":
    main()
