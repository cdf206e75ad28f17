"""Document retrieval on the committed external corpora, ampere-qa beside the plain baselines.

    .venv/bin/python scripts/benchmark_corpora.py [--ablation] [--weights W,W,...] [--readme]
                                                  [--txtai PYTHON] [SET.squad.json ...]

Each SQuAD-format set under eval/external/ is written out as a corpus of files, indexed with the
bundled model (ampere-qa's own build, in a temporary folder), and scored: document hit@1, hit@5,
MRR, share answered and answer recall, overall and by question language, for ampere-qa, dense
retrieval over ~1,000-character chunks (best chunk per file: what chunk-and-embed pipelines give)
and bm25s over the same chunks. ``--ablation`` adds ampere-qa without its documents' windows, and
with packed passages, whole-passage scores and windows all off (one passage a paragraph,
closest sentence only). ``--weights 0,0.25,0.5,1,2`` adds ampere-qa's ranking with each
``document_weight`` (same index; how the shipped weight was chosen, BENCHMARKS.md).
``--txtai PYTHON`` adds txtai's defaults in the same run (one row per file, dense, the bundled
model's converted folder with its e5 prefixes), run by a Python that has txtai, never installed
with ampere-qa: ``python3.11 -m venv /tmp/tx && /tmp/tx/bin/pip install torch==2.13.0 txtai``.
``--readme`` rewrites the table between the markers in README.md. ``--keep DIR`` keeps the
corpora and indexes in DIR instead of a temporary folder: a later run with the same DIR
re-embeds only texts that changed (the build's reuse), so a second look costs minutes, not a
build.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
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


def _tally(squad, rankings: Iterable[list[str]]) -> dict[str, dict]:
    """Document hit@1/@5 and MRR of each question's ranked files, overall and by language."""
    by = {"all": DocTally()}
    for q, ranked in zip(squad.questions, rankings, strict=True):
        for key in ("all", q.lang) if q.lang else ("all",):
            by.setdefault(key, DocTally()).add(ranked, q.file)
    return {key: t.metrics() for key, t in by.items()}


def _ranked(r: Retriever, squad) -> dict[str, dict]:
    """The scores of ``r``'s ranking of files."""
    system = AmpereFiles(r)
    return _tally(squad, (system.rank(q.question) for q in squad.questions))


# Run by --txtai's Python: reads {"model", "files", "questions"}, prints each question's ranked
# files. The e5 prefixes are the instructions its model card asks for.
TXTAI = """
import json, sys
from txtai import Embeddings
job = json.load(open(sys.argv[1], encoding="utf-8"))
emb = Embeddings(path=job["model"], instructions={"query": "query: ", "data": "passage: "})
emb.index(list(job["files"].items()))
print(json.dumps([[uid for uid, _ in emb.search(q, 10)] for q in job["questions"]]))
"""


def _txtai(python: str, squad, work: Path) -> dict[str, dict]:
    """txtai's ranking of the files, by ``python`` (a separate environment)."""
    from ampere_qa.embed.model import ensure_bundled_model

    job = work / "txtai.json"
    job.write_text(json.dumps({"model": str(ensure_bundled_model(progress=False)),
                               "files": squad.files,
                               "questions": [q.question for q in squad.questions]}), encoding="utf-8")
    out = subprocess.run([python, "-c", TXTAI, str(job)], capture_output=True, text=True, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return _tally(squad, json.loads(out.stdout.splitlines()[-1]))


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


def run(path: Path, ablation: bool, weights: list[float], txtai: str | None,
        root: Path, built: dict[str, Path]) -> tuple[str, dict[str, dict[str, dict]], float]:
    """One set's systems; sets with the same contexts (a set and its held-out questions) share
    one index in ``built``, under ``root``."""
    squad = load_squad(path)
    key = hashlib.sha256(json.dumps(squad.files, sort_keys=True).encode()).hexdigest()[:16]
    work = root / key
    seconds = 0.0
    if key not in built:
        if not (work / "corpus").is_dir():  # kept from an earlier run (--keep): the same files
            write_corpus(squad, work / "corpus")
        t0 = time.perf_counter()
        build_index(work / "corpus", work / "index", progress=False)
        seconds = time.perf_counter() - t0
        built[key] = work / "index"
    report = evaluate_squad(Retriever.load(work / "index"), squad)
    systems = report.systems
    if ablation:
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            systems = {**systems, **_ablated(squad, work / "corpus", Path(tmp), work / "index")}
    if txtai:
        systems = {**systems, "txtai": _txtai(txtai, squad, work)}
    if weights:
        r = Retriever.load(work / "index")
        for w in weights:
            settings = dataclasses.replace(r.settings, document_weight=w)
            weighed = Retriever(r.data, r.embedder, settings=settings)
            systems[f"ampere-qa, document_weight {w:g}"] = _ranked(weighed, squad)
    return path.name.removesuffix(".squad.json"), systems, seconds


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
    ap.add_argument("--txtai", metavar="PYTHON", help="a Python with txtai installed")
    ap.add_argument("--keep", metavar="DIR", type=Path, help="keep corpora and indexes in DIR")
    args = ap.parse_args(argv)
    results, built = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for path in args.sets or SETS:
            results.append(run(path, args.ablation, args.weights, args.txtai, root, built))
            name, _, seconds = results[-1]
            print(f"{name}: " + (f"built in {seconds:.0f} s" if seconds else "same corpus, same index"),
                  file=sys.stderr, flush=True)
    text = table(results)
    print(text)
    if args.readme:
        doc = (ROOT / "README.md").read_text(encoding="utf-8")
        a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        (ROOT / "README.md").write_text(f"{doc[:a]}\n{text}\n{doc[b:]}", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
