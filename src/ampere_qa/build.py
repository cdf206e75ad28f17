"""Building the index: corpus → passages → deduplicated passages → vectors → index folder."""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .corpus import Skipped, read_corpus
from .embedding import Embedder, load_embedder
from .errors import AmpereError, BadInputError
from .index import MANIFEST, Vectors, load_index, write_index
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
    embedded: int = 0  # texts run through the model
    reused: int = 0  # texts whose vectors came from the previous index (same model, same text)
    store: str = "faiss"  # where the sentence vectors went (see stores.py)
    upserted: int = 0  # Milvus only: sentence rows written (new or changed passages)
    deleted: int = 0  # Milvus only: sentence rows removed (passages gone)

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


def _texts_sha256(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def previous_vectors(index_dir: Path, embedder: Embedder) -> dict[str, np.ndarray]:
    """Text -> vector from the index already in ``index_dir``, if the same model built it.

    A vector depends only on the model and the text (every text goes through the same
    "passage" prompt), so a rebuild embeds only the texts it has not seen: a changed paragraph
    costs its own passage, sentences and leave-one-out texts, not the whole corpus. Anything
    unusable (no index, another model, a damaged file) means no reuse, never a failed build.
    """
    if not (index_dir / MANIFEST).exists():
        return {}
    try:
        data = load_index(index_dir)
        model = data.manifest["model"]
        if (model.get("name") != embedder.name or model.get("fingerprint") != embedder.fingerprint()
                or data.manifest["dimension"] != embedder.dimension):
            return {}
        rows = np.arange(len(data.sentence_owner))
        sentences = (data.store.get(rows if data.sentence_keys is None else data.sentence_keys)
                     if len(rows) else np.zeros((0, embedder.dimension), np.float32))
        vectors = data.vectors
        out: dict[str, np.ndarray] = {}
        row = 0
        for i, p in enumerate(data.passages):
            out[p.text] = vectors.passage_vectors[i]
            for text, loo in zip(p.sentence_texts(), leave_one_out_texts(p), strict=True):
                out[text] = sentences[row]
                out[loo] = vectors.leave_one_out[row]
                row += 1
        anchors = background_texts()
        if data.manifest.get("background_sha256") == _texts_sha256(anchors):
            out.update(zip(anchors, vectors.background, strict=True))
        return out
    except (AmpereError, KeyError, TypeError, ValueError, RuntimeError):
        return {}
    except Exception:  # a Milvus collection gone or unreachable: no reuse, never a failed build
        return {}


def build_index(
    corpus_dir: str | Path = "corpus",
    index_dir: str | Path = "index",
    model: str | None = None,
    *,
    settings: SplitSettings | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
    reuse: bool = True,
    faiss_kind: str | None = None,
    store: str | None = None,
    uri: str | None = None,
    collection: str | None = None,
) -> BuildReport:
    """Read, split, deduplicate and embed the corpus, then write the index atomically.

    ``progress`` shows a bar on stderr while embedding, the only long step. With ``reuse``,
    texts already embedded by the same model in the index being replaced are not re-embedded.
    ``faiss_kind`` forces ``IndexFlatIP`` or ``IndexIVFFlat`` (default: by size, see index.py).
    ``store`` is ``faiss`` (files in the index folder) or ``milvus`` (the collection
    ``collection`` at ``uri``: a local ``.db`` path runs Milvus Lite, ``http://...`` a server);
    by default the store of the index being replaced, else FAISS. A Milvus rebuild upserts the
    sentence rows of new passages and deletes those of passages gone; nothing else is written.
    """
    t0 = time.perf_counter()
    store_config = _store_config(Path(index_dir), store, uri, collection)
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
    known = previous_vectors(Path(index_dir), embedder) if reuse else {}
    # Each distinct text is embedded once (a one-sentence passage is also its own sentence).
    todo = [t for t in dict.fromkeys(texts) if t not in known]
    bar = None
    if progress:
        from tqdm import tqdm

        embedder.dimension  # noqa: B018 - load the model before the bar starts
        bar = tqdm(total=len(todo), desc="embedding", unit="text", leave=False)
    try:
        fresh = embedder.embed_passages(todo, progress=bar.update if bar else None) if todo else None
    finally:
        if bar:
            bar.close()
    if fresh is not None:
        known.update(zip(todo, np.asarray(fresh, dtype=np.float32), strict=True))
    flat = np.empty((len(texts), embedder.dimension), np.float32)
    for row, text in enumerate(texts):
        flat[row] = known[text]
    bounds = np.cumsum([0] + [len(g) for g in groups.values()])
    vectors = Vectors(**{role: flat[a:b] for role, a, b in zip(groups, bounds, bounds[1:], strict=False)})

    written = write_index(
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
            "background_sha256": _texts_sha256(groups["background"]),
        },
        faiss_kind,
        store_config,
    )
    changes = written["store_changes"]
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
        embedded=len(todo),
        reused=len(set(texts)) - len(todo),
        store=store_config["kind"] if store_config else "faiss",
        upserted=changes["upserted"],
        deleted=changes["deleted"],
    )


def _store_config(index_dir: Path, store: str | None, uri: str | None,
                  collection: str | None) -> dict[str, Any] | None:
    """The manifest's ``store`` entry for this build; None for FAISS (the manifest stays as before)."""
    from . import stores
    from .index import read_manifest, store_kind

    previous: dict[str, Any] = {}
    if (index_dir / MANIFEST).exists():
        with contextlib.suppress(AmpereError, OSError, ValueError):
            manifest = read_manifest(index_dir)
            previous = manifest.get("store", {}) if store_kind(manifest) == "milvus" else {}
    kind = store or ("milvus" if previous or uri else "faiss")
    if kind == "faiss":
        if uri or collection:
            raise BadInputError("--uri and --collection only apply to --store milvus")
        return None
    if kind != "milvus":
        raise BadInputError(f"unknown vector store {kind!r}: use faiss or milvus")
    uri = uri or previous.get("uri")
    if not uri:
        raise BadInputError("--store milvus needs --uri: a local file (x.db, Milvus Lite) or "
                            "http://host:19530 (a Milvus server)")
    return {"kind": "milvus", "uri": stores.normalize_uri(uri),
            "collection": collection or previous.get("collection") or stores.DEFAULT_COLLECTION}
