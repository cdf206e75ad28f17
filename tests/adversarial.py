"""Hostile text at the largest size ampere-qa accepts, run through the real reading, splitting,
dedup and question code; one JSON line of timing per case. Run by tests/test_adversarial.py in
a child process, so that a case that never ends is killed and named instead of hanging the run
(a regular expression does not yield to signals).

    python -m tests.adversarial corpus|questions
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Runs of one character, and of short units, that make a backtracking pattern or a loop that
# copies what it has seen so far go super-linear.
UNITS = [" ", "\t", "#", ".", "!", "…", "a", "A", "1", "<", "-", "=", "`", "*", "\n", "\r\n",
         "# ", "#\t", "1. ", "M. ", "a.", "A. ", "Ab ", "1 000 ", "12,5 ", "<a", "<!--", "</",
         "word\n", "x\n\n", "- x\n", "> ", "&amp;", "l'", "’", "Et où ? ", "qui ", "combien de ",
         "de ", "Jean-Marc ", "d'Ampere ", "2024 ", "1er janvier ", "€ ", "% "]
HEADED = ["# Titre", "## Titre", "Titre\n", "<h1>Titre", "<title>", "<p>"]


def _cases(size: int) -> Iterator[tuple[str, str]]:
    """(name, text) pairs of at most ``size`` characters and ``size`` bytes of UTF-8."""
    for unit in UNITS:
        yield repr(unit), unit * (size // len(unit.encode()))
    for head in HEADED:
        for unit in (" ", "\t", "#", "=", "<"):
            yield repr(head + unit), head + unit * (size - len(head) - 1) + "x"


def _timed(name: str, work: Callable[[], object]) -> None:
    print(json.dumps({"case": name, "started": True}), flush=True)
    t = time.perf_counter()
    work()
    print(json.dumps({"case": name, "seconds": round(time.perf_counter() - t, 3)}), flush=True)


def corpus() -> None:
    """Every case as a .md and a .html file, read, split, deduplicated and stemmed as build does."""
    from ampere_qa.indexing.lexical import LexicalIndex
    from ampere_qa.ingest.corpus import MAX_FILE_BYTES, read_document
    from ampere_qa.ingest.passages import SplitSettings, deduplicate, split_documents
    from ampere_qa.types import Skipped

    lexical = LexicalIndex(["mot"])
    settings = SplitSettings()
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in _cases(MAX_FILE_BYTES):
            for suffix in (".md", ".html"):
                path = Path(tmp) / f"case{suffix}"
                path.write_text(text, encoding="utf-8")

                def build(path: Path = path) -> None:
                    doc = read_document(path)
                    if isinstance(doc, Skipped):
                        return
                    kept, _ = deduplicate(split_documents([doc], settings), settings)
                    for p in kept:
                        lexical.analyze(p.text)

                _timed(f"{name}{suffix}", build)


def questions() -> None:
    """Every case as a question of the longest length allowed, alone and after a full history,
    answered over a corpus made of the same hostile text (fake embedder: the logic, not the
    model, is what is timed)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ampere_qa import Retriever
    from ampere_qa.indexing.build import build_index
    from ampere_qa.qa.question import MAX_QUESTION_CHARS
    from ampere_qa.settings import AnswerSettings
    from tests.conftest import FakeEmbedder

    embedder = FakeEmbedder()
    max_history = AnswerSettings().max_history
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        cases = list(_cases(MAX_QUESTION_CHARS))
        for i, (_, text) in enumerate(cases):
            (folder / f"{i:03}.txt").write_text(f"Ampere emploie 3 850 ingénieurs. {text}",
                                                encoding="utf-8")
        build_index(folder, Path(tmp) / "index", embedder=embedder, progress=False)
        retriever = Retriever.load(Path(tmp) / "index", embedder=embedder)
        for name, text in cases:
            question = " ".join(text.split()) or "?"
            _timed(f"{name} alone", lambda q=question: retriever.answer(q))
            _timed(f"{name} history",
                   lambda q=question: retriever.answer(q, history=[q] * max_history))


if __name__ == "__main__":
    {"corpus": corpus, "questions": questions}[sys.argv[1]]()
