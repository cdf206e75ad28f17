"""Hybrid ranking: a passage scores the cosine of its closest sentence (for a passage of several
lines, the better of that and its whole vector's), plus a BM25 bonus.
A question usually matches one sentence, and the rest of a paragraph dilutes the paragraph's
vector; a question about what a whole FAQ answer or section says matches the passage that packs
its lines. Word matching (BM25, scaled so the best passage gets ``lexical_weight``) breaks
near-ties. Measured on eval/questions.jsonl, hit@1 French/English: whole paragraphs 0.79/0.71,
best sentence 0.86/0.86, plus BM25 0.88/0.87 (reciprocal-rank fusion instead: 0.79/0.56).
On a FAQ and a documentation corpus (BENCHMARKS.md), blending sentence and whole-passage
scores by any fixed weight or by rank fusion lost on one set what it won on another; the
better of the two, for packed passages only, won on every one.
Across documents, each passage also gets its document's evidence: the similarity of the
document's closest ~1,000-character window, less the best candidate document's (weighted by
``document_weight``). A passage found in several documents is cited from the one whose windows
are closest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..indexing.index import IndexData, Windows
from ..indexing.lexical import LexicalIndex
from ..types import Hit, Location


@dataclass(frozen=True)
class Ranking:
    """The top passages, best first; the row of each in the index (by passage id); and the
    similarity of the closest sentence of all (-1 when the store returned none)."""

    hits: list[Hit]
    rows: dict[str, int]
    best_sentence: float


# Up to this many passages every passage's whole vector is compared with the question (a few ms
# at 13k); above, only those its sentences or words found, so that a question never reads every
# passage vector of a million-passage archive.
WHOLE_SCAN_MAX = 100_000
# Of the passages found, the best this many times k are weighed by their documents' evidence,
# which only lowers a score: each is parsed to know its documents. Weighing every one found
# ranked the files of both external corpora the same (BENCHMARKS.md).
DOCUMENT_POOL = 4


class HybridRanker:
    """Ranks an index's passages for a question's text and vector."""

    def __init__(self, data: IndexData, lexical: LexicalIndex, *, sentences_per_hit: int = 16,
                 lexical_weight: float = 0.03, whole_passages: bool = True,
                 document_weight: float = 0.5):
        self.data, self.lexical = data, lexical
        self.sentences_per_hit, self.lexical_weight = sentences_per_hit, lexical_weight
        self.whole_passages = whole_passages
        self.documents = Documents.of(data) if document_weight > 0 else None
        self.document_weight = document_weight

    def rank(self, text: str, qv: np.ndarray, k: int) -> Ranking:
        data = self.data
        k = max(1, min(int(k), len(data.passages)))
        store = data.store
        sims, rows = store.search(qv, min(len(data.sentence_owner), k * self.sentences_per_hit))
        dense: dict[int, float] = {}
        for sim, row in zip(sims, rows, strict=True):
            if row >= 0:
                dense.setdefault(int(data.sentence_owner[row]), float(sim))  # best comes first
        lexical = self.lexical.scores(text)
        top = float(lexical.max(initial=0.0))
        bonus = self.lexical_weight * lexical / top if top > 0 else lexical
        for i in top_k(lexical, k):
            if lexical[i] > 0 and int(i) not in dense:  # found by words only: score it exactly
                dense[int(i)] = self._closest_sentence(int(i), qv)
        if self.whole_passages:
            dense = self._with_passages(dense, qv, k)
        fused = sorted(((score + float(bonus[i]), i) for i, score in dense.items()), reverse=True)
        cited: dict[int, Location] = {}
        if self.documents is not None:
            pool, cited = self.documents.weigh({i: s for s, i in fused[:DOCUMENT_POOL * k]},
                                               qv, self.document_weight)
            fused = sorted(((s, i) for i, s in pool.items()), reverse=True)
        fused = fused[:k]
        hits = [
            Hit(rank, p.id, loc.source, loc.start, loc.end, p.text, score, context=p.context)
            for rank, (score, i) in enumerate(fused, start=1)
            for p in (data.passages[i],)
            for loc in (cited.get(i, p.locations[0]),)
        ]
        best = float(sims[0]) if len(rows) and rows[0] >= 0 else -1.0
        return Ranking(hits, {data.passages[i].id: i for _, i in fused}, best)

    def _closest_sentence(self, i: int, qv: np.ndarray) -> float:
        """The similarity of passage ``i``'s closest sentence, read from the store by row (for
        a passage the sentence search did not return)."""
        a = int(self.data.sentence_start[i])
        ids = np.arange(a, a + len(self.data.passages[i].sentences))
        return float((self.data.store.get(ids) @ qv).max())

    def _with_passages(self, dense: dict[int, float], qv: np.ndarray, k: int) -> dict[int, float]:
        """A passage of several lines (paragraphs packed together, a FAQ answer written a line
        per sentence) scores the better of its closest sentence's and its whole vector's
        similarity: a question about one fact is closest to the sentence that gives it, one
        about what a whole answer or section says ("comment supprimer mon compte ?") to the
        passage. A one-paragraph passage keeps its closest sentence's: its vector only dilutes
        its sentences' (measured: paragraph vectors rank the article's paragraphs worse).
        Passages found by whole vector alone are scored too, up to WHOLE_SCAN_MAX passages."""
        data, vectors = self.data, self.data.vectors.passage_vectors
        found = dict(dense)
        if len(vectors) <= WHOLE_SCAN_MAX:
            whole_all = np.asarray(vectors @ qv, dtype=np.float32)
            for i in top_k(whole_all, k):
                if int(i) not in found:
                    found[int(i)] = self._closest_sentence(int(i), qv)
            whole = {i: float(whole_all[i]) for i in found}
        else:
            rows = np.fromiter(found, dtype=np.int64, count=len(found))
            sims = (np.asarray(vectors[rows]) @ qv).tolist() if len(rows) else []
            whole = dict(zip(found, sims, strict=True))
        # Only a passage whose whole vector is the closer is parsed to see if it has lines.
        return {i: whole[i] if whole[i] > score and "\n" in data.passages[i].text else score
                for i, score in found.items()}


class Documents:
    """Each document's windows (indexing.Windows), found by document as one run of rows."""

    def __init__(self, data: IndexData, windows: Windows) -> None:
        self.data, self.vectors = data, windows.vectors
        files = data.manifest.corpus.files
        self.number = {str(f.get("source")): j for j, f in enumerate(files)}
        self.starts = np.searchsorted(np.asarray(windows.docs), np.arange(len(files) + 1))

    @classmethod
    def of(cls, data: IndexData) -> Documents | None:
        """None when there is nothing to weigh: no windows (an older index), one document."""
        windows = data.vectors.windows
        return cls(data, windows) if windows is not None and len(data.manifest.corpus.files) > 1 else None

    def weigh(self, scores: dict[int, float], qv: np.ndarray,
              weight: float) -> tuple[dict[int, float], dict[int, Location]]:
        """``scores`` with each passage's document evidence added (0 for the best document),
        and, for a passage found in several documents, the location to cite."""
        located = {i: self.data.passages[i].locations for i in scores}
        numbers = {i: [self.number.get(loc.source) for loc in locs] for i, locs in located.items()}
        runs = [(j, a, b) for j in sorted({j for js in numbers.values() for j in js if j is not None})
                if (a := int(self.starts[j])) < (b := int(self.starts[j + 1]))]
        if not runs:
            return scores, {}
        rows = np.concatenate([np.arange(a, b) for _, a, b in runs])
        sims = np.asarray(self.vectors[rows], dtype=np.float32) @ qv
        offsets = np.cumsum([0] + [b - a for _, a, b in runs[:-1]])
        closest = np.maximum.reduceat(sims, offsets).tolist()
        evidence = dict(zip((j for j, _, _ in runs), closest, strict=True))
        top = max(evidence.values())
        out, cited = dict(scores), {}
        for i, js in numbers.items():
            known = [(evidence[j], n) for n, j in enumerate(js) if j in evidence]
            if not known:
                continue
            best, n = max(known, key=lambda e: (e[0], -e[1]))  # ties: the first location
            out[i] = scores[i] + weight * (best - top)
            if n:
                cited[i] = located[i][n]
        return out, cited


def relevance(data: IndexData, qv: np.ndarray, best_sentence: float) -> float:
    """How much closer the question is to the corpus than to unrelated everyday text.

    Raw similarities cannot tell off-topic questions apart: to this model any two French
    sentences look alike (cosine ~0.75-0.85), so "how to make crêpes" scores as high as real
    questions. Measured against generic anchor sentences instead, a question about the corpus
    comes out closer to it, an unrelated one closer to the anchors."""
    return best_sentence - float((data.vectors.background @ qv).max(initial=-1.0))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, ties going to the lower index (as a stable sort
    would), in O(n) rather than a full sort: it matters at a million passages."""
    if k >= len(scores):
        return np.arange(len(scores))
    kth = -np.partition(-scores, k - 1)[k - 1]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - len(above)]
    return np.concatenate([above, tied])
