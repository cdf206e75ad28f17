"""Learning the "not found" cut-off on relevance from a set's scores, cross-validated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MAX_FALSE_ABSTENTION = 0.05
FOLDS = 5


@dataclass(frozen=True)
class Score:
    """The relevance of one question's best passage (greetings and requests are told apart
    before retrieval and have none)."""

    id: str
    answerable: bool
    group: str
    score: float


@dataclass(frozen=True)
class CrossValidated:
    """The cut-off measured on held-out folds: shares of questions turned away."""

    false_abstention: float | None  # of answerable questions (none in the set: None)
    abstention: float | None  # of unanswerable ones


@dataclass(frozen=True)
class Calibration:
    min_relevance: float
    target_false_abstention: float
    cross_validated: CrossValidated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def threshold(answerable: Sequence[float], max_false_abstention: float) -> float:
    """The highest cut-off that turns away at most that share of answerable questions."""
    ordered = sorted(answerable)
    return ordered[int(max_false_abstention * len(ordered))] if ordered else 0.0


def calibrate(scores: Sequence[Score], max_false_abstention: float = MAX_FALSE_ABSTENTION,
              folds: int = FOLDS) -> Calibration:
    """Learn the "not found" cut-off on relevance, and estimate how it generalises.

    The cut-off is fitted on all but one fold and measured on the held-out fold, for each fold
    (stratified by answerability, deterministic); the value to ship is fitted on everything.
    """
    yes = [s for s in scores if s.answerable]
    no = [s for s in scores if not s.answerable]
    false_abstention = abstention = 0
    for f in range(folds):
        train = [s.score for i, s in enumerate(yes) if i % folds != f]
        cut = threshold(train, max_false_abstention)
        false_abstention += sum(s.score < cut for i, s in enumerate(yes) if i % folds == f)
        abstention += sum(s.score < cut for i, s in enumerate(no) if i % folds == f)
    return Calibration(
        min_relevance=round(threshold([s.score for s in yes], max_false_abstention), 4),
        target_false_abstention=max_false_abstention,
        cross_validated=CrossValidated(
            false_abstention=round(false_abstention / len(yes), 4) if yes else None,
            abstention=round(abstention / len(no), 4) if no else None,
        ),
    )
