"""What each part of answering contributes: the evaluation with one part switched off at a time.

    .venv/bin/python scripts/ablation.py [eval/questions.jsonl ...]

Each row switches off one part (in-process, on the committed index and the bundled model) and
prints the main metrics over both languages; "all parts" is ampere-qa as shipped.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ampere_qa.eval import evaluate, load_questions  # noqa: E402
from ampere_qa.indexing import bilingual  # noqa: E402
from ampere_qa.qa import answerability, understand  # noqa: E402
from ampere_qa.search import Retriever  # noqa: E402

METRICS = ("hit@1", "answer_hit", "short_answer_em", "false_abstention", "near-topic_not_found",
           "off-topic_not_found", "chitchat_not_found")


@contextmanager
def patched(*changes):
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in changes]
    try:
        for obj, name, value in changes:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


def no_lexicon(retriever):
    empty = bilingual.Lexicon([])
    retriever.lexical._reduced.clear()
    return (bilingual, "lexicon", lambda: empty)


# Each row: the functions switched off (module, name, stand-in) and the answer settings changed.
ABLATIONS = {
    "all parts": lambda r: ([], {}),
    "no English→French lexicon": lambda r: ([no_lexicon(r)], {}),
    "no expected answer type": lambda r: ([(understand, "answer_type", lambda text, rules: None)], {}),
    "no kinds of fact (price, revenue…)": lambda r: ([
        (answerability, "asked_concepts", lambda *a, **k: [])], {}),
    "no unknown-name check": lambda r: ([(answerability, "missing_name", lambda *a: None)], {}),
    "no greeting/request reading": lambda r: ([
        (understand, "kind_of", lambda text, rules: understand.QUESTION)], {}),
    "sentence choice: contribution only": lambda r: (
        [], {"sim_weight": 0.0, "overlap_weight": 0.0, "type_weight": 0.0}),
    "BM25 bonus as before (0.015)": lambda r: ([], {"lexical_weight": 0.015}),
}


def main() -> None:
    sets = [Path(p) for p in sys.argv[1:]] or [ROOT / "eval" / "questions.jsonl"]
    retriever = Retriever.load(ROOT / "index")
    for path in sets:
        questions = load_questions(path)
        print(f"\n{path.name} ({len(questions)} questions)")
        print("| switched off | " + " | ".join(METRICS) + " |")
        print("|---|" + "---|" * len(METRICS))
        for name, ablation in ABLATIONS.items():
            changes, settings = ablation(retriever)
            ablated = retriever if not settings else Retriever(
                retriever.data, retriever.embedder,
                settings=dataclasses.replace(retriever.settings, **settings))
            with patched(*changes):
                retriever.lexical._reduced.clear()
                m = evaluate(ablated, questions).systems["ampere-qa"]["all"]
            retriever.lexical._reduced.clear()
            cells = ["—" if m.get(k) is None else f"{m[k]:.3f}" for k in METRICS]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
