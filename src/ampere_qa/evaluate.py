"""Measuring answer quality on a labelled question set, beside two plain baselines.

A set is JSON Lines, one object a line::

    {"id": "fr-001", "lang": "fr", "question": "Qui dirige Ampere ?",
     "gold": ["Luca de Meo"], "short": ["Luca de Meo"], "answerable": true, "group": "answerable"}

``gold`` lists exact substrings of the article; a retrieved excerpt or an answer is correct when it
contains any one of them. ``short`` (optional) lists the acceptable short answers where one is
expected; the short answer must equal one of them (case and spacing aside). Unanswerable
questions have no gold and should get "not found"; their ``group`` says how far they are from
the article: ``near-topic`` (about it, not answered by it), ``off-topic`` or ``chitchat``
(greetings and requests). Without ``group``, an unanswerable question counts as off-topic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import NotRegularFile, open_regular
from .errors import BadInputError
from .qa.language import detect

if TYPE_CHECKING:
    from .search import Retriever

DEPTH = 10  # MRR@10
MAX_FALSE_ABSTENTION = 0.05


GROUPS = ("answerable", "near-topic", "off-topic", "chitchat")


@dataclass(frozen=True)
class Question:
    id: str
    lang: str
    question: str
    gold: tuple[str, ...]
    answerable: bool
    group: str = "answerable"
    short: tuple[str, ...] = ()

    def matches(self, text: str) -> bool:
        return any(g in text for g in self.gold)

    def short_matches(self, text: str | None) -> bool:
        return text is not None and _squeeze(text) in {_squeeze(s) for s in self.short}


def _squeeze(text: str) -> str:
    return " ".join(text.casefold().split())


# An evaluation set is a few hundred lines; a file far bigger than this is not one.
MAX_SET_BYTES = 16 * 2**20


def _question_schema() -> Any:
    """The pydantic model of one line: strict types, so ``"gold": "Luca"`` is not read as five
    one-letter strings and ``"answerable": "false"`` is not true."""
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

    class Line(BaseModel):
        model_config = ConfigDict(extra="allow", strict=True)
        id: StrictStr = Field(min_length=1)
        lang: StrictStr = Field(min_length=2)
        question: StrictStr = Field(min_length=1)
        gold: list[StrictStr]
        answerable: StrictBool
        group: Literal[GROUPS] | None = None  # type: ignore[valid-type]
        short: list[StrictStr] = []

    return Line


def _read_set(path: Path) -> list[str]:
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_SET_BYTES + 1)
        if len(raw) > MAX_SET_BYTES:
            raise BadInputError(f"evaluation set {path} is over {MAX_SET_BYTES // 2**20} MB")
        return raw.decode("utf-8").splitlines()
    except NotRegularFile:
        raise BadInputError(f"evaluation set {path} is not a regular file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read evaluation set {path}: {exc}") from None


def _validated(path: Path, schema: Any) -> Iterator[tuple[str, Any]]:
    """Each non-empty line of a set checked by ``schema``, with where it stands ("file:line");
    a malformed line is a :class:`BadInputError` naming it and its first wrong field."""
    from pydantic import ValidationError

    for n, line in enumerate(_read_set(path), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{n}", schema.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            field_name = ".".join(str(x) for x in first["loc"]) or "line"
            raise BadInputError(f"{path}:{n}: {field_name}: {first['msg']}") from None


def load_questions(path: str | Path) -> list[Question]:
    """Read and validate a set; a malformed line is a :class:`BadInputError` naming it."""
    path = Path(path)
    out: list[Question] = []
    seen: set[str] = set()
    for where, d in _validated(path, _question_schema()):
        if any(not g.strip() for g in d.gold):
            raise BadInputError(f"{where}: gold strings must not be empty (an empty one matches anything)")
        group = d.group or ("answerable" if d.answerable else "off-topic")
        q = Question(d.id, d.lang, d.question, tuple(d.gold), d.answerable, group, tuple(d.short))
        if q.answerable != bool(q.gold):
            raise BadInputError(f"{where}: answerable questions need gold strings, others none")
        if q.answerable != (group == "answerable"):
            raise BadInputError(f"{where}: group {group!r} does not fit answerable={q.answerable}")
        if (q.short and not q.answerable) or any(not x.strip() for x in q.short):
            raise BadInputError(f"{where}: short answers must be non-empty, on answerable questions")
        if q.id in seen:
            raise BadInputError(f"{where}: duplicate id {q.id!r}")
        seen.add(q.id)
        out.append(q)
    if not out:
        raise BadInputError(f"{path} holds no questions")
    return out


@dataclass(frozen=True)
class Dialogue:
    """A short conversation: ``turns`` are the user's questions, oldest first; ``gold`` and
    ``short`` are for the reply to the last one, which leans on the earlier ones."""

    id: str
    lang: str
    turns: tuple[str, ...]
    gold: tuple[str, ...]
    short: tuple[str, ...] = ()


def is_dialogue_set(path: str | Path) -> bool:
    """Whether a set holds dialogues (lines with ``turns``) rather than questions."""
    for line in _read_set(Path(path)):
        if line.strip():
            return '"turns"' in line
    return False


def load_dialogues(path: str | Path) -> list[Dialogue]:
    """Read and validate a dialogue set; a malformed line is a :class:`BadInputError`."""
    from pydantic import BaseModel, ConfigDict, Field, StrictStr

    class Line(BaseModel):
        model_config = ConfigDict(extra="allow", strict=True)
        id: StrictStr = Field(min_length=1)
        lang: StrictStr = Field(min_length=2)
        turns: list[StrictStr] = Field(min_length=2)
        gold: list[StrictStr] = Field(min_length=1)
        short: list[StrictStr] = []

    path = Path(path)
    out: list[Dialogue] = []
    seen: set[str] = set()
    for where, d in _validated(path, Line):
        if any(not x.strip() for x in (*d.turns, *d.gold, *d.short)) or d.id in seen:
            raise BadInputError(f"{where}: empty turn, gold or short, or duplicate id")
        seen.add(d.id)
        out.append(Dialogue(d.id, d.lang, tuple(d.turns), tuple(d.gold), tuple(d.short)))
    if not out:
        raise BadInputError(f"{path} holds no dialogues")
    return out


def evaluate_dialogues(retriever: Retriever, dialogues: Sequence[Dialogue]) -> dict[str, Any]:
    """Answer hit and short-answer exact match on the last turn of each dialogue, per language,
    and the dialogues whose last turn was answered wrongly."""
    tallies: dict[str, dict[str, int]] = {}
    failures = []
    for d in dialogues:
        mine = retriever.answer(d.turns[-1], history=d.turns[:-1])
        q = Question(d.id, d.lang, d.turns[-1], d.gold, True, "answerable", d.short)
        short = mine.short_answer.text if mine.short_answer else None
        hit = mine.answered and q.matches(mine.answer)
        for g in (d.lang, "all"):
            t = tallies.setdefault(g, {"dialogues": 0, "answer_hit": 0, "short": 0, "short_ok": 0,
                                       "understood": 0})
            t["dialogues"] += 1
            t["answer_hit"] += hit
            t["understood"] += mine.understood is not None
            if d.short:
                t["short"] += 1
                t["short_ok"] += hit and q.short_matches(short)
        if not hit:
            failures.append({"id": d.id, "turns": list(d.turns), "understood": mine.understood,
                             "answer": mine.answer})
    metrics = {g: {"dialogues": t["dialogues"],
                   "answer_hit": round(t["answer_hit"] / t["dialogues"], 4),
                   "short_answer_em": round(t["short_ok"] / t["short"], 4) if t["short"] else None,
                   "read_as_follow_up": round(t["understood"] / t["dialogues"], 4)}
               for g, t in tallies.items()}
    return {"systems": {"ampere-qa": metrics}, "failures": failures}


def standalone_changes(retriever: Retriever, questions: Sequence[Question]) -> list[str]:
    """The ids of questions that would be read differently when asked right after the one
    before them in the set: a standalone question must never be changed."""
    changed = []
    for before, q in pairwise(questions):
        understood = retriever.understood(q.question, [before.question])
        if understood is not None and understood != q.question:
            changed.append(q.id)
    return changed


def format_dialogues(result: dict[str, Any]) -> str:
    rows = [("language", "dialogues", "answer hit", "short answer EM", "read as follow-up")]
    for g, m in result["systems"]["ampere-qa"].items():
        em = "—" if m["short_answer_em"] is None else f"{m['short_answer_em']:.3f}"
        rows.append((g, str(m["dialogues"]), f"{m['answer_hit']:.3f}", em,
                     f"{m['read_as_follow_up']:.3f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"\n{len(result['failures'])} last turns answered wrongly (see --json).")
    return "\n".join(lines)


Ranker = Callable[[str], list[str]]  # question -> passage texts, best first


@dataclass
class Tally:
    """Running sums for one system and one group of questions."""

    answerable: int = 0
    unanswerable: int = 0
    hit1: int = 0
    hit3: int = 0
    rr: float = 0.0
    answer_hit: int = 0
    abstained_ok: int = 0
    abstained_wrong: int = 0
    language_ok: int = 0
    duplicate_citations: int = 0
    has_answers: bool = False
    short_expected: int = 0
    short_exact: int = 0
    # Unanswerable questions per group, and how many of them got "not found".
    asked: dict[str, int] = field(default_factory=dict)
    declined: dict[str, int] = field(default_factory=dict)

    def add_ranking(self, q: Question, texts: Sequence[str]) -> None:
        rank = next((i for i, t in enumerate(texts[:DEPTH], 1) if q.matches(t)), None)
        self.hit1 += rank == 1
        self.hit3 += rank is not None and rank <= 3
        self.rr += 1.0 / rank if rank else 0.0

    def metrics(self) -> dict[str, float | int | None]:
        a, u = self.answerable, self.unanswerable

        def ratio(x: float, n: int) -> float | None:
            return round(x / n, 4) if n else None

        out: dict[str, float | int | None] = {
            "answerable": a, "unanswerable": u,
            "hit@1": ratio(self.hit1, a), "hit@3": ratio(self.hit3, a), "mrr@10": ratio(self.rr, a),
        }
        if self.has_answers:
            out.update({
                "answer_hit": ratio(self.answer_hit, a),
                "abstention": ratio(self.abstained_ok, u),
                "false_abstention": ratio(self.abstained_wrong, a),
                "language_accuracy": ratio(self.language_ok, a + u),
                "duplicate_citations": self.duplicate_citations,
                "short_answers": self.short_expected,
                "short_answer_em": ratio(self.short_exact, self.short_expected),
            })
            for g in GROUPS[1:]:
                out[f"{g}_not_found"] = ratio(self.declined.get(g, 0), self.asked.get(g, 0))
        return out


@dataclass
class Report:
    """Metrics per system (ours and the baselines) and per question language."""

    systems: dict[str, dict[str, dict[str, Any]]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)  # relevance per question
    calibration: dict[str, Any] = field(default_factory=dict)
    # Questions read differently when asked after the one before them (follow-up reading).
    standalone_changed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"systems": self.systems, "calibration": self.calibration, "failures": self.failures,
                "standalone_changed": self.standalone_changed}


def bm25_ranker(passages: Sequence[str]) -> Ranker:
    """Plain BM25 (bm25s, lower-cased words, no stemming) over the given paragraphs."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(passages), stopwords=None, show_progress=False),
                    show_progress=False)

    def rank(question: str) -> list[str]:
        tokens = bm25s.tokenize([question], stopwords=None, show_progress=False)
        if not tokens.vocab:
            return []
        k = min(DEPTH, len(passages))
        docs, _ = retriever.retrieve(tokens, k=k, show_progress=False)
        return [passages[int(i)] for i in docs[0]]

    return rank


def dense_ranker(retriever: Retriever, passages: Sequence[str]) -> Ranker:
    """Plain dense retrieval: cosine between the question and each whole paragraph."""
    vectors = retriever.embedder.embed_passages(list(passages))

    def rank(question: str) -> list[str]:
        sims = vectors @ retriever.embedder.embed_queries([question])[0]
        return [passages[int(i)] for i in np.argsort(-sims)[:DEPTH]]

    return rank


def paragraphs_of(retriever: Retriever) -> list[str]:
    """The baselines' units: the distinct paragraphs of the indexed passages."""
    from .passages import paragraphs

    seen: dict[str, None] = {}
    for p in retriever.data.passages:
        for a, b in paragraphs(p.text):
            seen.setdefault(p.text[a:b])
    return list(seen)


def evaluate(retriever: Retriever, questions: Sequence[Question],
             progress: bool = False) -> Report:
    """Run every question through ampere-qa and both baselines; tally per language."""
    paras = paragraphs_of(retriever)
    rankers: dict[str, Ranker] = {
        "ampere-qa": lambda q: [h.text for h in retriever.search(q, k=DEPTH)],
        "bm25-paragraphs": bm25_ranker(paras),
        "dense-paragraphs": dense_ranker(retriever, paras),
    }
    groups = sorted({q.lang for q in questions} | {"all"})
    tallies = {name: {g: Tally() for g in groups} for name in rankers}
    report = Report(systems={})
    items: Sequence[Question] = questions
    if progress:
        from tqdm import tqdm

        items = tqdm(questions, desc="evaluating", unit="question", leave=False)
    for q in items:
        mine = retriever.answer(q.question)
        texts = [c.text for c in mine.citations]
        for name, ranker in rankers.items():
            ranking = ranker(q.question)
            for g in (q.lang, "all"):
                t = tallies[name][g]
                if q.answerable:
                    t.answerable += 1
                    t.add_ranking(q, ranking)
                else:
                    t.unanswerable += 1
                if name != "ampere-qa":
                    continue
                t.has_answers = True
                t.language_ok += detect(q.question).code == q.lang
                t.duplicate_citations += len(texts) != len(set(texts))
                short = mine.short_answer.text if mine.short_answer else None
                if q.answerable:
                    t.answer_hit += mine.answered and q.matches(mine.answer)
                    t.abstained_wrong += not mine.answered
                    if q.short:
                        t.short_expected += 1
                        t.short_exact += mine.answered and q.short_matches(short)
                else:
                    t.abstained_ok += not mine.answered
                    t.asked[q.group] = t.asked.get(q.group, 0) + 1
                    t.declined[q.group] = t.declined.get(q.group, 0) + (not mine.answered)
        right = mine.answered and q.matches(mine.answer) if q.answerable else not mine.answered
        short = mine.short_answer.text if mine.short_answer else None
        if not right or (q.short and not q.short_matches(short)):
            report.failures.append({"id": q.id, "question": q.question, "answered": mine.answered,
                                    "answer": mine.answer, "reason": mine.reason,
                                    "short_answer": short, "expected_short": list(q.short) or None})
        if mine.relevance is not None:  # greetings and requests are told apart before retrieval
            report.scores.append({"id": q.id, "answerable": q.answerable, "group": q.group,
                                  "score": mine.relevance})
    report.systems = {name: {g: t.metrics() for g, t in by.items()} for name, by in tallies.items()}
    report.calibration = calibrate(report.scores)
    report.standalone_changed = standalone_changes(retriever, questions)
    return report


def threshold(answerable: Sequence[float], max_false_abstention: float) -> float:
    """The highest cut-off that turns away at most that share of answerable questions."""
    ordered = sorted(answerable)
    return ordered[int(max_false_abstention * len(ordered))] if ordered else 0.0


def calibrate(scores: Sequence[dict[str, Any]], max_false_abstention: float = MAX_FALSE_ABSTENTION,
              folds: int = 5) -> dict[str, Any]:
    """Learn the "not found" cut-off on relevance, and estimate how it generalises.

    The cut-off is fitted on all but one fold and measured on the held-out fold, for each fold
    (stratified by answerability, deterministic); the value to ship is fitted on everything.
    """
    yes = [s for s in scores if s["answerable"]]
    no = [s for s in scores if not s["answerable"]]
    held = {"false_abstention": 0, "abstention": 0}
    for f in range(folds):
        train = [s["score"] for i, s in enumerate(yes) if i % folds != f]
        cut = threshold(train, max_false_abstention)
        held["false_abstention"] += sum(s["score"] < cut for i, s in enumerate(yes) if i % folds == f)
        held["abstention"] += sum(s["score"] < cut for i, s in enumerate(no) if i % folds == f)
    return {
        "min_relevance": round(threshold([s["score"] for s in yes], max_false_abstention), 4),
        "target_false_abstention": max_false_abstention,
        "cross_validated": {
            "false_abstention": round(held["false_abstention"] / len(yes), 4) if yes else None,
            "abstention": round(held["abstention"] / len(no), 4) if no else None,
        },
    }


ROWS = ("hit@1", "hit@3", "mrr@10", "answer_hit", "short_answer_em", "false_abstention",
        "abstention", "near-topic_not_found", "off-topic_not_found", "chitchat_not_found",
        "language_accuracy", "duplicate_citations")


def format_report(report: Report) -> str:
    """A plain-text table: one row per metric, one column per system and language."""
    cols = [(s, g) for s in report.systems for g in report.systems[s] if g != "all"]
    head = ["metric"] + [f"{s} {g}" for s, g in cols]
    rows = [head]
    for m in ROWS:
        cells = [report.systems[s][g].get(m) for s, g in cols]
        rows.append([m] + ["—" if c is None else (f"{c:.3f}" if isinstance(c, float) else str(c))
                           for c in cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    counts = report.systems["ampere-qa"]["all"]
    lines.append(f"\n{counts['answerable']} answerable ({counts['short_answers']} with a short "
                 f"answer expected) and {counts['unanswerable']} unanswerable questions; "
                 f"{len(report.failures)} answered wrongly (see --json).")
    lines.append(f"Standalone questions read differently after the one before them: "
                 f"{len(report.standalone_changed)}.")
    cal = report.calibration
    if cal:
        cv = cal["cross_validated"]
        lines.append(f"Calibrated not-found cut-off: relevance < {cal['min_relevance']} "
                     f"(5-fold cross-validated: false abstention {cv['false_abstention']}, "
                     f"abstention {cv['abstention']}).")
    return "\n".join(lines)


def plot(report: Report, cutoff: float, path: str | Path) -> None:
    """Histogram of the relevance score, answerable vs near-topic vs off-topic, with the cut-off
    (greetings and requests are told apart before retrieval and have no score)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BadInputError("--plot needs matplotlib: pip install 'ampere-qa[eval]'") from None
    groups = {g: [s["score"] for s in report.scores if s.get("group", "answerable"
                                                              if s["answerable"] else "off-topic") == g]
              for g in GROUPS[:3]}
    every = [x for xs in groups.values() for x in xs]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    lo, hi = min([*every, cutoff]) - 0.01, max([*every, cutoff]) + 0.01
    bins = [lo + (hi - lo) * i / 40 for i in range(41)]
    for (g, xs), color in zip(groups.items(), ("#2563eb", "#d97706", "#dc2626"), strict=True):
        ax.hist(xs, bins=bins, alpha=0.6, label=f"{g} ({len(xs)})", color=color)
    ax.axvline(cutoff, color="black", linestyle="--", label=f"not-found cut-off ({cutoff:.3f})")
    ax.set_xlabel("relevance: similarity to the article minus similarity to unrelated text")
    ax.set_ylabel("questions")
    ax.set_title("Relevance: near-topic questions need more than it (see answerability)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
