"""How questions are answered: one recorded object, :class:`AnswerSettings`.

A corpus sets its languages, domain packs, noun and off-topic anchors in ``ampere-qa.toml``
(``[answer]``); the build records every field in the manifest (``"answer"``), and the retriever
answers with what the index records. The weights' comments give the measurement that set them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# The corpus's languages when its settings name none.
DEFAULT_LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class AnswerSettings:
    # The corpus's languages: a question is read with their packs and its own; the first one's
    # stemmer and every one's stop words make the BM25 analyzer.
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    # Domain packs (qa/domain/): the kinds of fact readers ask for.
    domains: tuple[str, ...] = ("general",)
    # What the replies call the corpus, by language ("l'article", "the documents"); a language
    # not listed uses its pack's default.
    noun: dict[str, str] = field(default_factory=dict)
    # Off-topic anchor sentences; empty: the shipped ones (data/background.txt).
    anchors: tuple[str, ...] = ()
    # "Not found" when the question is not this much closer to the corpus than to the anchors.
    # Zero is the natural point; `ampere-qa eval` calibrates it on a labelled set (5-fold
    # cross-validated: 0.0024 for the bundled model on eval/questions.jsonl, within noise of zero).
    min_relevance: float = 0.0
    # A question this much closer to the corpus than to the anchors is answered with its best
    # sentence even when that sentence holds no name, number or date of the kind asked ("quand
    # informer les personnes ?" is answered by a moment, "qui peut consulter" by a kind of
    # people): the type is evidence weighed against retrieval confidence, not a veto.
    confident_relevance: float = 0.07
    # Sentences fetched from the vector store per passage wanted, before grouping by passage.
    sentences_per_hit: int = 16
    # Most a word match adds to a passage's score (the best BM25 passage gets all of it).
    lexical_weight: float = 0.03
    # A passage scores the better of its closest sentence's and its whole vector's similarity
    # (False: its closest sentence's alone, as before packed passages).
    whole_passages: bool = True
    # How much the closest window of a passage's document (ingest.passages.windows) counts, as
    # its similarity less the best candidate document's: a document that answers as a whole
    # lifts its passages over a stray fragment of another. 0.5 measured best of 0.25/0.5/1/2 on
    # a FAQ and a documentation corpus; one document alone is never moved.
    document_weight: float = 0.5
    # Passages this close to the best one lend a second sentence to the answer...
    tie_margin: float = 0.005
    # ... when it contributes this share of the best one's effect.
    second_sentence_share: float = 0.8
    # Passages of the top k this close to the best one are cited as "see also".
    see_also_margin: float = 0.02
    # Passages this close to the best one are searched for the answering sentence.
    candidate_margin: float = 0.015
    # How the answering sentence is chosen in its passage (qa/select.py): its contribution to
    # the passage's similarity, plus these for the share of the question's words it holds, for
    # holding an answer of the expected type, and for its own similarity.
    overlap_weight: float = 0.02
    type_weight: float = 0.04
    sim_weight: float = 0.25
    # A name in at least this share of the passages is what the corpus is about, seldom an answer.
    topic_share: float = 0.5
    # In a longer question the question word may sit in a clause: its type is not read.
    typed_words: int = 20
    # Earlier questions a follow-up is read against, newest last.
    max_history: int = 8

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["languages"], out["domains"] = list(self.languages), list(self.domains)
        out["anchors"] = list(self.anchors)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerSettings:
        """The settings a manifest records; fields it lacks (an older index) take the defaults."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("languages", "domains", "anchors"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _json_type(default: object) -> type | tuple[type, ...]:
    """The JSON type a manifest holds for a field with this default."""
    if isinstance(default, tuple):
        return list
    return (int, float) if isinstance(default, float) else type(default)


# What a manifest's "answer" holds: every field optional (an older index records fewer).
ANSWER_SCHEMA: dict[str, Any] = {f.name: _json_type(getattr(AnswerSettings(), f.name))
                                 for f in fields(AnswerSettings)}

