"""``ampere-qa eval``: answer quality on a labelled set, beside two plain baselines.

One module per step: :mod:`.sets` reads and checks a question set (the format is described
there), :mod:`.dialogues` does the same for dialogue sets and scores follow-ups,
:mod:`.systems` and :mod:`.baselines` are the systems compared (ampere-qa, BM25 and dense
retrieval over paragraphs) behind one interface, :mod:`.tallies` sums what they get right,
:mod:`.run` runs the comparison, :mod:`.calibrate` learns the "not found" cut-off and
:mod:`.report` prints and plots the result.
"""

from __future__ import annotations

from .baselines import Bm25Paragraphs, DenseParagraphs, paragraphs_of
from .calibrate import MAX_FALSE_ABSTENTION, Calibration, CrossValidated, Score, calibrate, threshold
from .dialogues import (
    Dialogue,
    DialogueFailure,
    DialogueReport,
    DialogueTally,
    evaluate_dialogues,
    is_dialogue_set,
    load_dialogues,
    standalone_changes,
)
from .report import format_dialogues, format_report, plot
from .run import Failure, Report, compare, evaluate, systems_of
from .sets import GROUPS, MAX_SET_BYTES, Question, load_questions
from .systems import DEPTH, AmpereQA, Response, System
from .tallies import Metrics, Tallies, Tally

__all__ = [
    "DEPTH",
    "GROUPS",
    "MAX_FALSE_ABSTENTION",
    "MAX_SET_BYTES",
    "AmpereQA",
    "Bm25Paragraphs",
    "Calibration",
    "CrossValidated",
    "DenseParagraphs",
    "Dialogue",
    "DialogueFailure",
    "DialogueReport",
    "DialogueTally",
    "Failure",
    "Metrics",
    "Question",
    "Report",
    "Response",
    "Score",
    "System",
    "Tallies",
    "Tally",
    "calibrate",
    "compare",
    "evaluate",
    "evaluate_dialogues",
    "format_dialogues",
    "format_report",
    "is_dialogue_set",
    "load_dialogues",
    "load_questions",
    "paragraphs_of",
    "plot",
    "standalone_changes",
    "systems_of",
    "threshold",
]
