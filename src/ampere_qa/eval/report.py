"""The evaluation as text for the terminal, and the relevance histogram."""

from __future__ import annotations

from pathlib import Path

from ..errors import BadInputError
from .dialogues import DialogueReport
from .run import Report
from .sets import GROUPS
from .systems import NAME

ROWS = ("hit@1", "hit@3", "mrr@10", "answer_hit", "short_answer_em", "false_abstention",
        "abstention", "near-topic_not_found", "off-topic_not_found", "chitchat_not_found",
        "language_accuracy", "duplicate_citations")


def _cell(value: float | int | None) -> str:
    return "—" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def format_report(report: Report) -> str:
    """A plain-text table: one row per metric, one column per system and language."""
    cols = [(s, g) for s in report.systems for g in report.systems[s] if g != "all"]
    head = ["metric"] + [f"{s} {g}" for s, g in cols]
    rows = [head]
    for m in ROWS:
        rows.append([m] + [_cell(report.systems[s][g].get(m)) for s, g in cols])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    counts = report.systems[NAME]["all"]
    lines.append(f"\n{counts['answerable']} answerable ({counts['short_answers']} with a short "
                 f"answer expected) and {counts['unanswerable']} unanswerable questions; "
                 f"{len(report.failures)} answered wrongly (see --json).")
    lines.append(f"Standalone questions read differently after the one before them: "
                 f"{len(report.standalone_changed)}.")
    cal = report.calibration
    if cal is not None:
        cv = cal.cross_validated
        lines.append(f"Calibrated not-found cut-off: relevance < {cal.min_relevance} "
                     f"(5-fold cross-validated: false abstention {cv.false_abstention}, "
                     f"abstention {cv.abstention}).")
    return "\n".join(lines)


def format_dialogues(result: DialogueReport) -> str:
    rows = [("language", "dialogues", "answer hit", "short answer EM", "read as follow-up")]
    for g, m in result.systems[NAME].items():
        em = "—" if m["short_answer_em"] is None else f"{m['short_answer_em']:.3f}"
        rows.append((g, str(m["dialogues"]), f"{m['answer_hit']:.3f}", em,
                     f"{m['read_as_follow_up']:.3f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"\n{len(result.failures)} last turns answered wrongly (see --json).")
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
    groups = {g: [s.score for s in report.scores if s.group == g] for g in GROUPS[:3]}
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
