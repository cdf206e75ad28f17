"""Searching the index and answering questions: the :class:`Retriever` other apps embed."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import answer as answers
from . import language
from .corpus import read_corpus
from .embedding import Embedder, load_embedder
from .errors import AmpereError, BadInputError, IndexMismatchError
from .index import REBUILD_HINT, IndexData, load_index

MAX_QUESTION_CHARS = 1000
# Below this cosine between question and best passage, the article is taken not to answer
# it. First calibration for the bundled e5 model on a handful of on- and off-topic questions.
MIN_PASSAGE_SCORE = 0.80
# Passages this close to the best one also lend sentences to the answer.
TIE_MARGIN = 0.005
# A second sentence joins the answer when it contributes this share of the best one's effect.
SECOND_SENTENCE_SHARE = 0.8
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Hit:
    """One ranked passage for a question; ``score`` is the cosine similarity."""

    rank: int
    passage_id: str
    source: str
    start: int
    end: int
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(float(self.score), 6)
        return d


def clean_question(question: object) -> str:
    """The question as the model will read it, or a :class:`BadInputError` saying why not."""
    if not isinstance(question, str):
        raise BadInputError("the question must be text")
    # Lone surrogates cannot be encoded for the tokenizer; control characters carry no meaning.
    text = question.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text))
    text = " ".join(text.split())
    if not text:
        raise BadInputError("the question is empty: type a question about the article")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadInputError(
            f"the question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    return text


class Retriever:
    """Loads a checked index and its model once; answers many questions.

    >>> r = Retriever.load("index")
    >>> r.answer("Qui dirige Ampere ?").answer
    "D'après l'article : « Luca de Meo, directeur général du groupe, ... » [1]"
    """

    def __init__(self, data: IndexData, embedder: Embedder):
        self.data = data
        self.embedder = embedder
        self._row = {p.id: i for i, p in enumerate(data.passages)}

    @classmethod
    def load(
        cls,
        index_dir: str | Path = "index",
        model: str | None = None,
        *,
        embedder: Embedder | None = None,
    ) -> Retriever:
        """Open ``index_dir`` with the model it was built with (or ``model``, which must be the
        same weights, e.g. a local copy). Raises an :class:`AmpereError` subclass on mismatch."""
        data = load_index(index_dir)
        wanted = data.manifest["model"]
        if embedder is None:
            embedder = load_embedder(model or wanted["name"])
        hint = REBUILD_HINT.format(index=index_dir)
        if embedder.dimension != data.manifest["dimension"]:
            raise IndexMismatchError(
                f"model {embedder.name!r} makes {embedder.dimension}-dimensional vectors, the "
                f"index in {index_dir} holds {data.manifest['dimension']}: {hint}"
            )
        if embedder.fingerprint() != wanted.get("fingerprint"):
            raise IndexMismatchError(
                f"the index in {index_dir} was built with other model weights "
                f"({wanted['name']!r}) than {embedder.name!r}: {hint}"
            )
        return cls(data, embedder)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.data.manifest

    def is_stale(self) -> bool | None:
        """True when the corpus changed since the build; None when it cannot be found here."""
        return corpus_is_stale(self.data.path, self.manifest)

    def _hits(self, qv: np.ndarray, k: int) -> list[Hit]:
        k = max(1, min(int(k), len(self.data.passages)))
        scores, ids = self.data.faiss_index.search(qv.reshape(1, -1), k)
        hits = []
        for rank, (score, i) in enumerate(zip(scores[0], ids[0], strict=True), start=1):
            if i < 0:
                continue
            p = self.data.passages[i]
            hits.append(Hit(rank, p.id, p.source, p.start, p.end, p.text, float(score)))
        return hits

    def _embed(self, question: str) -> np.ndarray:
        return self.embedder.embed_queries([question])[0]

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The ``k`` passages closest to the question, best first."""
        return self._hits(self._embed(clean_question(question)), k)

    def answer(self, question: str, k: int = 3) -> answers.Answer:
        """The best sentence(s) of the top ``k`` passages, quoted with citations, or an explicit
        "not found" when no passage is close enough to the question."""
        text = clean_question(question)
        lang = language.detect(text)
        qv = self._embed(text)
        hits = self._hits(qv, k)
        if not hits or hits[0].score < MIN_PASSAGE_SCORE:
            return answers.not_found(text, lang.code, lang.reply)
        return answers.compose(text, lang.code, lang.reply, self._pick_sentences(qv, hits))

    def _pick_sentences(self, qv: np.ndarray, hits: list[Hit]) -> list[tuple[Hit, tuple[int, int]]]:
        """The sentence(s) that make the best passage relevant.

        A sentence's contribution is the passage's similarity minus that of the passage without
        it (vectors computed at build time). Sentences alone are poor evidence for e5-small
        (a sentence that merely names "Ampere" scores high); their effect inside their passage
        is what tells the answering one. Passages tied with the first (within
        ``TIE_MARGIN``) compete too; a second sentence joins when it contributes nearly as much.
        """
        candidates: list[tuple[float, Hit, tuple[int, int]]] = []
        for hit in hits:
            if hit.score < hits[0].score - TIE_MARGIN:
                break
            pi = self._row[hit.passage_id]
            passage = self.data.passages[pi]
            first = int(self.data.sentence_start[pi])
            without = self.data.leave_one_out[first:first + len(passage.sentences)] @ qv
            candidates += [(hit.score - float(w), hit, span)
                           for span, w in zip(passage.sentences, without, strict=True)]
        candidates.sort(key=lambda t: -t[0])
        best = candidates[0][0]
        picks = [(h, s) for c, h, s in candidates[:2]
                 if c == best or (best > 0 and c >= SECOND_SENTENCE_SHARE * best)]
        picks.sort(key=lambda t: (t[0].rank, t[1][0]))  # reading order
        return picks


def corpus_is_stale(index_dir: Path, manifest: dict[str, Any]) -> bool | None:
    """Compare the corpus fingerprint in the manifest with the corpus folder as it is now.

    The folder is looked for as recorded (relative to the working directory) and then next
    to the index folder, so a checkout works wherever it is run from.
    """
    recorded = manifest.get("corpus", {})
    given = Path(recorded.get("path", ""))
    for root in (given, Path(index_dir).resolve().parent / given.name):
        if given.name and root.exists():
            try:
                return read_corpus(root).fingerprint != recorded.get("fingerprint")
            except AmpereError:
                return True
    return None
