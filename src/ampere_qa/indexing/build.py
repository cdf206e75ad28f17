"""Building the index: corpus → passages → deduplicated passages → vectors → index folder."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..embed.embedding import Embedder, load_embedder
from ..errors import AmpereError, BadInputError, IndexMismatchError, IndexNotFoundError
from ..ingest.corpus import Corpus, read_corpus, stat_signature
from ..ingest.passages import DedupReport, SplitSettings, deduplicate, split_documents, windows
from ..settings import AnswerSettings
from ..types import BuildReport, Passage
from . import folder, stores
from .index import Vectors, Windows, load_index, window_keys, write_index
from .manifest import MANIFEST, Manifest, corpus_entry, file_names, read_manifest, recorded_corpus


def background_texts(anchors: tuple[str, ...] = ()) -> list[str]:
    """The corpus's off-topic anchors (``[answer] anchors`` in ``ampere-qa.toml``), else the
    shipped ones (``data/background.txt``), comments and blanks dropped."""
    from importlib.resources import files

    if anchors:
        return list(anchors)
    text = files("ampere_qa").joinpath("data/background.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def leave_one_out_texts(passage: Passage) -> list[str]:
    """The passage's indexed text once per sentence, with that sentence removed (its context
    stays: what a sentence adds is measured against the passage vector, which has it)."""
    spans = passage.sentences
    rests = [
        " ".join(passage.text[a:b] for j, (a, b) in enumerate(spans) if j != i)
        for i in range(len(spans))
    ]
    return [f"{passage.context}\n{rest}" for rest in rests] if passage.context else rests


def _texts_sha256(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def previous_vectors(index_dir: Path, embedder: Embedder, window_texts: Sequence[str] = (),
                     window_hashes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Text -> vector from the index already in ``index_dir``, if the same model built it
    (of ``window_texts``, whose ``window_hashes`` are write.window_keys', those whose hash it
    holds: window texts are not kept).

    A vector depends only on the model and the text (every text goes through the same
    "passage" prompt), so a rebuild embeds only the texts it has not seen: a changed paragraph
    costs its own passage, sentences and leave-one-out texts, not the whole corpus. Anything
    unusable (no index, another model, a damaged file) means no reuse, never a failed build.
    """
    try:
        data = load_index(index_dir)
        manifest = data.manifest
        if (manifest.model_name != embedder.name or manifest.model_fingerprint != embedder.fingerprint()
                or manifest.dimension != embedder.dimension):
            return {}
        rows = np.arange(len(data.sentence_owner))
        sentences = data.store.get(rows) if len(rows) else np.zeros((0, embedder.dimension), np.float32)
        vectors = data.vectors
        out: dict[str, np.ndarray] = {}
        row = 0
        for i, p in enumerate(data.passages):
            out[p.indexed_text] = vectors.passage_vectors[i]
            for text, loo in zip(p.sentence_texts(), leave_one_out_texts(p), strict=True):
                out[text] = sentences[row]
                out[loo] = vectors.leave_one_out[row]
                row += 1
        recorded = manifest.answer.get("anchors", ())
        anchors = background_texts(tuple(recorded) if isinstance(recorded, list) else ())
        if manifest.background_sha256 == _texts_sha256(anchors):
            out.update(zip(anchors, vectors.background, strict=True))
        if vectors.windows is not None and window_texts:
            hashes = window_keys(list(window_texts)) if window_hashes is None else window_hashes
            row_of = {bytes(key): n for n, key in enumerate(np.asarray(vectors.windows.keys))}
            for text, key in zip(window_texts, hashes, strict=True):
                if (found := row_of.get(bytes(key))) is not None:
                    out[text] = np.asarray(vectors.windows.vectors[found])
        return out
    except (AmpereError, KeyError, TypeError, ValueError, RuntimeError):
        return {}
    except Exception:  # a store gone or unreachable (its client's own errors): no reuse, never a failed build
        return {}


def build_index(
    corpus_dir: str | Path | None = None,
    index_dir: str | Path = "index",
    model: str | None = None,
    *,
    settings: SplitSettings | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
    reuse: bool = True,
    faiss_kind: str | None = None,
    store: str | None = None,
    force: bool = False,
    **store_options: str | None,
) -> BuildReport:
    """Read, split, deduplicate and embed the corpus, then write the index atomically.

    ``corpus_dir`` defaults to the corpus the index in ``index_dir`` was built from, else
    ``corpus``. ``index_dir`` must be new, empty or hold an ampere-qa index: a folder holding
    other files is refused unless ``force`` (even then, nothing ampere-qa did not write there is
    removed). Builds into one folder wait for each other (a lock in the folder).

    ``progress`` shows a bar on stderr while embedding, the only long step. With ``reuse``,
    texts already embedded by the same model in the index being replaced are not re-embedded.
    ``faiss_kind`` forces ``IndexFlatIP`` or ``IndexIVFFlat`` (default: by size, see index.py).
    ``store`` names the backend that keeps the sentence vectors (``stores.KINDS``), and
    ``store_options`` are its build options (those of ``ampere-qa build``: ``uri=``,
    ``collection=``...); by default the backend those options imply, else the store of the index
    being replaced, else FAISS (stores.configure). The backend writes, then tidies what the
    replaced index alone used once the manifest is committed (stores/).
    """
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    # Refusals that need no write come first, so a refused build leaves no trace (not even a
    # folder or a lock file): someone else's folder, then an unreadable corpus.
    previous = _previous_manifest(index_dir, force) if index_dir.is_dir() else None
    if corpus_dir is None:
        corpus_dir = (previous and recorded_corpus(index_dir, previous)) or "corpus"
    signature = stat_signature(corpus_dir)  # before reading: an edit meanwhile shows later
    corpus = read_corpus(corpus_dir)  # what it skips is in the report; the callers print it
    _check_packs(corpus.answer)
    folder.check_target(index_dir)  # before any long work: a file, a read-only or full disk
    with folder.build_lock(index_dir):
        previous = _previous_manifest(index_dir, force)  # again: another build may have run
        folder.finish(index_dir, keep=file_names(previous))  # what a killed build left behind
        backend = stores.configure(store, store_options, previous.store if previous else None)
        backend.check_writable()  # someone else's data where it would write: before any work
        settings = settings or SplitSettings()
        passages, dedup = deduplicate(split_documents(corpus.documents, settings), settings)
        embedder = embedder or load_embedder(model)
        docs = [(j, t) for j, d in enumerate(corpus.documents)
                for t in windows(d.text, settings.window_chars)] if settings.window_chars > 0 else []
        groups = {**_texts(passages, corpus.answer.anchors), "windows": [t for _, t in docs]}
        hashes = window_keys(groups["windows"])  # once: reuse looks them up, the index keeps them
        known = previous_vectors(index_dir, embedder, groups["windows"], hashes) if reuse and previous else {}
        todo = _embed_new(embedder, groups, known, progress)
        described = _described(embedder, corpus, corpus_dir, index_dir, settings, dedup, groups)
        if signature is not None:
            described["corpus"]["stat_signature"] = signature
        vectors = _vectors(embedder, groups, known, np.array([j for j, _ in docs], np.int64), hashes)
        written = write_index(index_dir, passages, vectors, described,
                              file_names(previous), backend, {"faiss_kind": faiss_kind},
                              previous_store=dict(previous.store) if previous and previous.store else None)
    changes = written["store_changes"]
    texts = {t for group in groups.values() for t in group}
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
        reused=len(texts) - len(todo),
        store=backend.kind,
        details=changes,
    )


def _described(embedder: Embedder, corpus: Corpus, corpus_dir: str | Path, index_dir: Path,
               settings: SplitSettings, dedup: DedupReport, groups: dict[str, list[str]]) -> dict[str, Any]:
    """What the manifest records of this build, beyond what write_index adds (counts, files)."""
    return {
        "model": {
            "name": embedder.name,
            "fingerprint": embedder.fingerprint(),
            "location": embedder.location(),
        },
        "corpus": {
            **corpus_entry(corpus_dir, index_dir),
            "fingerprint": corpus.fingerprint,
            "files": [{"source": d.source, "sha256": d.sha256} for d in corpus.documents],
        },
        "split": settings.to_dict(),
        "duplicates": {"exact": dedup.exact, "near": dedup.near},
        "answer": corpus.answer.to_dict(),
        "background_sha256": _texts_sha256(groups["background"]),
        "page": corpus.page.to_dict(),
    }


def _previous_manifest(index_dir: Path, force: bool) -> Manifest | None:
    """The manifest of the ampere-qa index already in ``index_dir``; None when there is none.

    A folder holding anything else is refused unless ``force``: build writes a manifest and
    data files there, and it must never be mistaken for a place it may tidy up.
    """
    try:
        return read_manifest(index_dir)
    except IndexNotFoundError:
        others = folder.foreign_entries(index_dir, ())
        problem = f"{index_dir} is not empty and holds no ampere-qa index"
    except IndexMismatchError as exc:
        others = [MANIFEST]
        problem = f"{index_dir}/{MANIFEST} is not a readable ampere-qa manifest ({exc})"
    if others and not force:
        listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise BadInputError(
            f"{problem} (found: {listed}): choose a new or empty folder, or pass --force to build "
            f"there anyway (ampere-qa never removes files it did not write; --force does replace "
            f"an unreadable {MANIFEST})")
    return None


def _check_packs(answer: AnswerSettings) -> None:
    """The language and domain packs ``ampere-qa.toml`` names exist (PackError), before any
    long work."""
    from ..packs import domain, lang

    for code in answer.languages:
        lang.pack(code)
    domain.domain(answer.domains)


def _texts(passages: list[Passage], anchors: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Everything the retriever needs, by role, to go through the model in one stream (so the
    bar shows the whole job): the passages, their sentences, each passage with one sentence
    left out (see search: which sentence answers), and the off-topic anchors."""
    return {
        "passage_vectors": [p.indexed_text for p in passages],
        "sentences": [s for p in passages for s in p.sentence_texts()],
        "leave_one_out": [t for p in passages for t in leave_one_out_texts(p)],
        "background": background_texts(anchors),
    }


def _embed_new(embedder: Embedder, groups: dict[str, list[str]], known: dict[str, np.ndarray],
               progress: bool) -> list[str]:
    """Embed the distinct texts not in ``known`` (adding them to it); returns those texts."""
    todo = [t for t in dict.fromkeys(t for g in groups.values() for t in g) if t not in known]
    bar = None
    if progress and todo:
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
    return todo


def _vectors(embedder: Embedder, groups: dict[str, list[str]], known: dict[str, np.ndarray],
             window_docs: np.ndarray, window_hashes: np.ndarray) -> Vectors:
    out = {}
    for role, texts in groups.items():
        out[role] = np.empty((len(texts), embedder.dimension), np.float32)
        for row, text in enumerate(texts):
            out[role][row] = known[text]
    vectors = out.pop("windows")
    windows = Windows(vectors, window_docs, window_hashes) if groups["windows"] else None
    return Vectors(**out, windows=windows)
