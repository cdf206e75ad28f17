"""Document retrieval on the committed external corpora, ampere-qa beside the plain baselines.

    .venv/bin/python scripts/benchmark_corpora.py [--ablation] [--weights W,W,...] [--readme]
                                                  [SET.squad.json ...]

Each SQuAD-format set under eval/external/ is written out as a corpus of files, indexed with the
bundled model (ampere-qa's own build, in a temporary folder), and scored: document hit@1, hit@5,
MRR, share answered and answer recall, overall and by question language, for ampere-qa, dense
retrieval over ~1,000-character chunks (best chunk per file: what chunk-and-embed pipelines give)
and bm25s over the same chunks. ``--ablation`` adds ampere-qa without its documents' windows, and
with packed passages, whole-passage scores and windows all off (one passage a paragraph,
closest sentence only). ``--weights 0,0.25,0.5,1,2`` adds ampere-qa's ranking with each
``document_weight`` (same index; how the shipped weight was chosen, BENCHMARKS.md).
``--readme`` rewrites the table between the markers in README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ampere_qa.eval.squad import AmpereFiles, DocTally, evaluate_squad, load_squad, write_corpus  # noqa: E402
from ampere_qa.indexing.build import build_index  # noqa: E402
from ampere_qa.ingest.passages import SplitSettings  # noqa: E402
from ampere_qa.search import Retriever  # noqa: E402

SETS = sorted((ROOT / "eval" / "external").glob("*/*.squad.json"))
BEGIN, END = "<!-- corpora:begin -->", "<!-- corpora:end -->"


def _ranked(r: Retriever, squad) -> dict[str, dict]:
    """Document hit@1/@5 and MRR of ``r``'s ranking of files, overall and by language."""
    system, by = AmpereFiles(r), {"all": DocTally()}
    for q in squad.questions:
        ranked = system.rank(q.question)
        for key in ("all", q.lang) if q.lang else ("all",):
            by.setdefault(key, DocTally()).add(ranked, q.file)
    return {key: t.metrics() for key, t in by.items()}


def _ablated(squad, corpus: Path, work: Path, index: Path) -> dict[str, dict[str, dict]]:
    """ampere-qa without its documents' windows (same index), and as before packed passages:
    a passage a paragraph, closest sentence only, no windows."""
    r = Retriever.load(index)
    alone = dataclasses.replace(r.settings, document_weight=0.0)
    no_windows = _ranked(Retriever(r.data, r.embedder, settings=alone), squad)
    build_index(corpus, work / "plain", settings=SplitSettings(pack_chars=0, window_chars=0), progress=False)
    r = Retriever.load(work / "plain")
    r = Retriever(r.data, r.embedder, settings=dataclasses.replace(alone, whole_passages=False))
    return {"ampere-qa, no document windows": no_windows,
            "ampere-qa, paragraphs, sentences only": _ranked(r, squad)}


def run(path: Path, ablation: bool, weights: list[float]) -> tuple[str, dict[str, dict[str, dict]], float]:
    squad = load_squad(path)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_corpus(squad, work / "corpus")
        t0 = time.perf_counter()
        build_index(work / "corpus", work / "index", progress=False)
        built = time.perf_counter() - t0
        report = evaluate_squad(Retriever.load(work / "index"), squad)
        systems = report.systems
        if ablation:
            systems = {**systems, **_ablated(squad, work / "corpus", work, work / "index")}
        if weights:
            r = Retriever.load(work / "index")
            for w in weights:
                settings = dataclasses.replace(r.settings, document_weight=w)
                weighed = Retriever(r.data, r.embedder, settings=settings)
                systems[f"ampere-qa, document_weight {w:g}"] = _ranked(weighed, squad)
    return path.name.removesuffix(".squad.json"), systems, built


def table(results: list[tuple[str, dict[str, dict[str, dict]], float]]) -> str:
    lines = ["| set | questions | system | hit@1 | hit@5 | MRR | answered |", "|---|---|---|---|---|---|---|"]
    for name, systems, _ in results:
        keys = list(next(iter(systems.values())))
        for key in keys:
            for system, by in systems.items():
                m = by.get(key)
                if m is None:
                    continue
                answered = m.get("answered", "—")
                lines.append(f"| {name} ({key}) | {m['questions']} | {system} | {m['hit@1']:.3f} | "
                             f"{m['hit@5']:.3f} | {m['mrr']:.3f} | {answered} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--weights", type=lambda s: [float(w) for w in s.split(",")], default=[])
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args(argv)
    results = []
    for path in args.sets or SETS:
        results.append(run(path, args.ablation, args.weights))
        print(f"{results[-1][0]}: built in {results[-1][2]:.0f} s", file=sys.stderr)
    text = table(results)
    print(text)
    if args.readme:
        doc = (ROOT / "README.md").read_text(encoding="utf-8")
        a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        (ROOT / "README.md").write_text(f"{doc[:a]}\n{text}\n{doc[b:]}", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
