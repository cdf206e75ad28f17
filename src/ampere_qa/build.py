"""Building the index: corpus → passages → deduplicated passages → vectors → index folder."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .corpus import Skipped, read_corpus
from .embedding import Embedder, load_embedder
from .index import Vectors, write_index
from .passages import Passage, SplitSettings, deduplicate, split_documents
from .search import MIN_RELEVANCE


@dataclass(frozen=True)
class BuildReport:
    """What ``build`` did; ``to_dict()`` is what ``ampere-qa build --json`` prints."""

    index: str
    files: int
    passages: int
    sentences: int
    duplicates_collapsed: int
    exact_duplicates: int
    near_duplicates: int
    skipped: tuple[Skipped, ...]
    seconds: float
    model: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped"] = [asdict(s) for s in self.skipped]
        d["seconds"] = round(self.seconds, 3)
        return d


def background_texts() -> list[str]:
    """The shipped off-topic anchors (``data/background.txt``), comments and blanks dropped."""
    from importlib.resources import files

    text = files("ampere_qa").joinpath("data/background.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def leave_one_out_texts(passage: Passage) -> list[str]:
    """The passage's text once per sentence, with that sentence removed."""
    spans = passage.sentences
    return [
        " ".join(passage.text[a:b] for j, (a, b) in enumerate(spans) if j != i)
        for i in range(len(spans))
    ]


def build_index(
    corpus_dir: str | Path = "corpus",
    index_dir: str | Path = "index",
    model: str | None = None,
    *,
    settings: SplitSettings | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
) -> BuildReport:
    """Read, split, deduplicate and embed the corpus, then write the index atomically.

    ``progress`` shows a bar on stderr while embedding, the only long step.
    """
    t0 = time.perf_counter()
    settings = settings or SplitSettings()
    corpus = read_corpus(corpus_dir)
    passages, dedup = deduplicate(split_documents(corpus.documents, settings), settings)
    embedder = embedder or load_embedder(model)

    # Everything the retriever needs goes through the model in one stream, so the bar shows
    # the whole job: the passages, their sentences, each passage with one sentence left out
    # (see search: which sentence answers), and the off-topic anchors.
    groups = {
        "passage_vectors": [p.text for p in passages],
        "sentences": [s for p in passages for s in p.sentence_texts()],
        "leave_one_out": [t for p in passages for t in leave_one_out_texts(p)],
        "background": background_texts(),
    }
    texts = [t for group in groups.values() for t in group]
    bar = None
    if progress:
        from tqdm import tqdm

        embedder.dimension  # noqa: B018 - load the model before the bar starts
        bar = tqdm(total=len(texts), desc="embedding", unit="text", leave=False)
    try:
        flat = embedder.embed_passages(texts, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    flat = np.ascontiguousarray(flat, dtype=np.float32)
    bounds = np.cumsum([0] + [len(g) for g in groups.values()])
    vectors = Vectors(**{role: flat[a:b] for role, a, b in zip(groups, bounds, bounds[1:], strict=False)})

    write_index(
        Path(index_dir),
        passages,
        vectors,
        {
            "model": {
                "name": embedder.name,
                "fingerprint": embedder.fingerprint(),
                "location": embedder.location(),
            },
            "corpus": {
                "path": corpus.root,
                "fingerprint": corpus.fingerprint,
                "files": [{"source": d.source, "sha256": d.sha256} for d in corpus.documents],
            },
            "split": settings.to_dict(),
            "duplicates": {"exact": dedup.exact, "near": dedup.near},
            "answer": {"min_relevance": MIN_RELEVANCE},
        },
    )
    return BuildReport(
        index=str(index_dir),
        files=len(corpus.documents),
        passages=len(passages),
        sentences=len(groups["sentences"]),
        duplicates_collapsed=dedup.collapsed,
        exact_duplicates=dedup.exact,
        near_duplicates=dedup.near,
        skipped=corpus.skipped,
        seconds=time.perf_counter() - t0,
        model=embedder.name,
    )
