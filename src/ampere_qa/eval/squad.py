"""SQuAD-format sets (PIAF, FQuAD, SQuAD, XQuAD): a corpus from their contexts, document-level
retrieval scores, beside plain chunk-and-embed and chunk BM25 over the same files.

Every distinct context becomes one ``.txt`` file (``0001.txt``...: numbered, so that no title
gives the answer away); a question is right at rank ``r`` when the ``r``-th distinct file its
system ranks is the one its context is in. Scored: document hit@1 and hit@5, MRR@10, and for
ampere-qa the share answered (every SQuAD v1 question is answerable) and how much of the gold
answer its reply quotes (word recall).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..atomic import NotRegularFile, open_regular
from ..errors import BadInputError
from ..ingest.passages import windows
from .baselines import Bm25, Dense
from .sets import MAX_SET_BYTES

if TYPE_CHECKING:
    from ..embed.embedding import Embedder
    from ..search import Retriever
    from ..types import Answer

DEPTH = 10  # files ranked per question: MRR@10
CHUNK_CHARS = 1000  # the baselines' chunks: what chunk-and-embed pipelines use by default
MAX_SQUAD_BYTES = 4 * MAX_SET_BYTES  # SQuAD dev sets with their contexts run to tens of MB
_WORD = re.compile(r"\w+")
# A context this short ("." or a stray word, as real sets hold) answers no question.
MIN_CONTEXT_CHARS = 20


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    file: str  # the corpus file holding its context
    answers: tuple[str, ...]
    lang: str = ""  # the question's language when the set says it (a "lang" field)


@dataclass(frozen=True)
class SquadSet:
    files: dict[str, str]  # file name -> context, in set order
    questions: tuple[SquadQuestion, ...]


def load_squad(path: str | Path, limit: int | None = None) -> SquadSet:
    """The contexts (one file name each, identical contexts sharing one) and questions of a
    SQuAD v1/v2 file; unanswerable v2 questions are left out (nothing to retrieve)."""
    path = Path(path)
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_SQUAD_BYTES + 1)
    except (OSError, NotRegularFile) as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from None
    if len(raw) > MAX_SQUAD_BYTES:
        raise BadInputError(f"{path} is over {MAX_SQUAD_BYTES // 2**20} MB: not a SQuAD set")
    try:
        data = json.loads(raw.decode("utf-8"))["data"]
        files: dict[str, str] = {}
        by_context: dict[str, str] = {}
        questions: list[SquadQuestion] = []
        for article in data:
            for paragraph in article["paragraphs"]:
                context = str(paragraph["context"]).strip()
                if len(context) < MIN_CONTEXT_CHARS:
                    continue
                name = by_context.setdefault(context, f"{len(by_context) + 1:04d}.txt")
                files[name] = context
                for qa in paragraph["qas"]:
                    if qa.get("is_impossible") or not str(qa["question"]).strip():
                        continue
                    answers = tuple(str(a["text"]) for a in qa.get("answers", []))
                    questions.append(SquadQuestion(str(qa.get("id", len(questions))),
                                                   str(qa["question"]).strip(), name, answers,
                                                   str(qa.get("lang", ""))))
    except RecursionError:
        raise BadInputError(f"{path} is not a SQuAD-format file (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"{path} is not a SQuAD-format file ({type(exc).__name__}: {exc})") \
            from None
    if not questions:
        raise BadInputError(f"{path} holds no answerable question with a context")
    return SquadSet(files, tuple(questions[:limit] if limit else questions))


def write_corpus(squad: SquadSet, folder: Path) -> None:
    """The contexts as files in ``folder``, which must be new or empty (nothing is replaced)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BadInputError(f"{folder} is not an empty folder: the corpus is written only into a "
                            "new or empty one")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in squad.files.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")


class _Chunked:
    """The chunks of every file, and which file each came from."""

    def __init__(self, files: dict[str, str]) -> None:
        self.texts: list[str] = []
        self.owner: list[str] = []
        for name, text in files.items():
            for chunk in windows(text, CHUNK_CHARS):
                self.texts.append(chunk)
                self.owner.append(name)

    def files_of(self, order: Iterable[int]) -> list[str]:
        return list(dict.fromkeys(self.owner[int(i)] for i in order))[:DEPTH]


class ChunkDense(_Chunked):
    """Plain dense retrieval over ~1,000-character chunks, best chunk per file."""

    name = "chunk-dense"

    def __init__(self, files: dict[str, str], embedder: Embedder) -> None:
        super().__init__(files)
        self.dense = Dense(embedder, self.texts)

    def rank(self, question: str) -> list[str]:
        return self.files_of(self.dense.order(question))


class ChunkBm25(_Chunked):
    """bm25s over the same chunks, with the stemmer and stop words of ``language``."""

    name = "chunk-bm25"

    def __init__(self, files: dict[str, str], language: str = "french") -> None:
        super().__init__(files)
        self.bm25 = Bm25(self.texts, language)

    def rank(self, question: str) -> list[str]:
        # several chunks of one file may come first
        return self.files_of(self.bm25.order(question, DEPTH * 8))


class AmpereFiles:
    """ampere-qa's ranking of files (each hit's source, in order) and its reply."""

    name = "ampere-qa"

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever

    def rank(self, question: str) -> list[str]:
        hits = self.retriever.search(question, k=DEPTH * 3)
        return list(dict.fromkeys(Path(h.source).name for h in hits))[:DEPTH]


class Ranker(Protocol):
    """A system compared: the files it ranks for a question, best first."""

    @property
    def name(self) -> str: ...

    def rank(self, question: str) -> list[str]: ...


@dataclass
class DocTally:
    questions: int = 0
    hit1: int = 0
    hit5: int = 0
    rr: float = 0.0
    answered: int = 0
    replies: int = 0
    answer_recall: float = 0.0

    def add(self, ranked: Sequence[str], right: str) -> int | None:
        self.questions += 1
        rank = ranked.index(right) + 1 if right in ranked else None
        if rank is not None:
            self.hit1 += rank == 1
            self.hit5 += rank <= 5
            self.rr += 1 / rank
        return rank

    def reply(self, q: SquadQuestion, reply: Answer) -> None:
        self.replies += 1
        self.answered += reply.answered
        self.answer_recall += word_recall(q.answers, reply.answer) if reply.answered else 0.0

    def metrics(self) -> dict[str, float | int]:
        n = max(self.questions, 1)
        out: dict[str, float | int] = {"questions": self.questions, "hit@1": round(self.hit1 / n, 3),
                                       "hit@5": round(self.hit5 / n, 3), "mrr": round(self.rr / n, 3)}
        if self.replies:
            out["answered"] = round(self.answered / self.replies, 3)
            out["answer_recall"] = round(self.answer_recall / self.replies, 3)
        return out


def word_recall(gold: Sequence[str], text: str) -> float:
    """The best share of a gold answer's words that ``text`` holds (case aside)."""
    words = set(_WORD.findall(text.casefold()))
    best = 0.0
    for g in gold:
        wanted = _WORD.findall(g.casefold())
        if wanted:
            best = max(best, sum(w in words for w in wanted) / len(wanted))
    return best


@dataclass
class SquadReport:
    systems: dict[str, dict[str, dict[str, float | int]]]  # system -> "all" or language -> metrics
    misses: list[dict[str, Any]] = field(default_factory=list)  # ampere-qa's, for reading

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_squad(retriever: Retriever, squad: SquadSet, *, replies: bool = True,
                   progress: bool = False) -> SquadReport:
    """ampere-qa (ranking and, with ``replies``, answers) beside chunk-dense and chunk-BM25
    (with the stemmer of the index's first language)."""
    from ..packs.lang import pack

    stemmer = pack(retriever.settings.languages[0]).stemmer or "english"
    systems: list[Ranker] = [AmpereFiles(retriever), ChunkDense(squad.files, retriever.embedder),
               ChunkBm25(squad.files, stemmer)]
    langs = sorted({q.lang for q in squad.questions if q.lang})
    tallies = {s.name: {key: DocTally() for key in ["all", *langs]} for s in systems}
    report = SquadReport({})
    items: Iterable[SquadQuestion] = squad.questions
    if progress:
        from tqdm import tqdm

        items = tqdm(squad.questions, desc="evaluating", unit="question", leave=False)
    for q in items:
        reply = retriever.answer(q.question) if replies else None
        for system in systems:
            ranked = system.rank(q.question)
            for key in ("all", q.lang) if q.lang else ("all",):
                rank = tallies[system.name][key].add(ranked, q.file)
                if system.name == AmpereFiles.name and reply is not None:
                    tallies[system.name][key].reply(q, reply)
            if system.name == AmpereFiles.name and (rank != 1 or (reply is not None and not reply.answered)):
                report.misses.append({"id": q.id, "question": q.question, "file": q.file,
                                      "rank": rank, "ranked": ranked[:3],
                                      "reply": reply.answer if reply else None})
    report.systems = {name: {key: t.metrics() for key, t in by.items()} for name, by in tallies.items()}
    return report

def format_squad(report: SquadReport) -> str:
    """The systems' scores as a table, overall and by question language."""
    keys = ["hit@1", "hit@5", "mrr", "answered", "answer_recall"]
    lines = [f"{'system':<12}{'questions':>12}" + "".join(f"{k:>15}" for k in keys)]
    for name, by in report.systems.items():
        for key, m in by.items():
            label = name if key == "all" else f"  {key}"
            lines.append(f"{label:<12}{m['questions']:>12}"
                         + "".join(f"{m[k]:>15}" if k in m else f"{'-':>15}" for k in keys))
    lines.append(f"ampere-qa missed or refused {len(report.misses)} (see --json)")
    return "\n".join(lines)
