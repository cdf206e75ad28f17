"""The index manifest: what was built, from what, with which model — read, type-checked,
summarised, compared with the corpus as it is now, and turned into the command that rebuilds.

``manifest.json`` is the index's single commit point (write.py replaces it last, atomically);
nothing else in the folder is trusted before it has been read and checked here.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import open_regular
from ..errors import IndexMismatchError, IndexNotFoundError
from ..ingest.page import from_manifest
from ..settings import ANSWER_SCHEMA, DEFAULT_LANGUAGES
from ..types import PageInfo
from . import stores

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# The manifest records the corpus folder relative to the index folder: resolving it against the
# current folder instead once rebuilt an index from whatever `corpus/` happened to be there.
CORPUS_BASE = "index"
# A manifest is a few kB (plus a line per corpus file): anything far bigger is not ours.
MAX_MANIFEST_BYTES = 16 * 2**20


# What a manifest must hold, and of which type, before anything else reads it: a damaged or
# crafted field is refused with the rebuild hint instead of failing somewhere deep inside.
_SCHEMA: dict[str, Any] = {
    "format_version": int,
    "model": {"name": str, "fingerprint": str},
    "corpus": {"path": str, "fingerprint": str, "files": list},
    "files": dict,
    "passage_count": int,
    "sentence_count": int,
    "dimension": int,
}
_OPTIONAL: dict[str, Any] = {
    "answer": ANSWER_SCHEMA,
    "faiss_index": str,
    "faiss_params": {"nlist": int, "nprobe": int},
    "store": stores.schema(),  # each backend's fields
    "split": dict,
    "background_sha256": str,
    "lexical": {"analyzer_version": int},
    "page": {"title": str, "description": str, "examples": list},
}
_STRINGS = (("page", "examples"), ("answer", "languages"), ("answer", "domains"),
            ("answer", "anchors"), ("answer", "noun"))
_FILE_ENTRY = {"name": str, "sha256": str, "bytes": int}


def _schema_problem(value: Any, schema: Any, where: str, required: bool = True) -> str | None:
    """The first place where ``value`` does not fit ``schema`` (a type or a dict of them)."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where} is not an object"
        for key, sub in schema.items():
            if key not in value:
                if required:
                    return f"{where}.{key} is missing"
                continue
            problem = _schema_problem(value[key], sub, f"{where}.{key}")
            if problem:
                return problem
        return None
    ok = isinstance(value, schema) and not (isinstance(value, bool) and schema is not bool)
    if schema is int and ok and value < 0:
        return f"{where} is negative"
    return None if ok else f"{where} has the wrong type ({type(value).__name__})"


def validate_manifest(manifest: Any) -> str | None:
    """What is wrong with a parsed manifest, or None when every field has the expected type."""
    problem = _schema_problem(manifest, _SCHEMA, "manifest")
    if problem:
        return problem
    for key, sub in _OPTIONAL.items():
        if key in manifest:
            problem = _schema_problem(manifest[key], sub, f"manifest.{key}",
                                      required=key not in ("answer", "faiss_params", "store", "lexical"))
            if problem:
                return problem
    for role, entry in manifest["files"].items():
        problem = _schema_problem(entry, _FILE_ENTRY, f"manifest.files.{role}")
        if problem:
            return problem
    for key, sub in _STRINGS:  # lists of strings, and the noun's values
        value = manifest.get(key, {}).get(sub, [])
        if not all(isinstance(e, str) for e in (value.values() if isinstance(value, dict) else value)):
            return f"manifest.{key}.{sub} holds something other than strings"
    return None


@dataclass(frozen=True)
class FileEntry:
    """One data file as the manifest names it: checked by name, size and hash before use."""

    name: str
    sha256: str
    bytes: int
    sample_sha256: str | None = None  # the hash of a big file's ends (checks.py)

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> FileEntry:
        sample = entry.get("sample_sha256")
        return cls(str(entry["name"]), str(entry["sha256"]), int(entry["bytes"]),
                   sample if isinstance(sample, str) else None)


@dataclass(frozen=True)
class CorpusRecord:
    """Where the corpus was and what it held when the index was built."""

    path: str
    fingerprint: str
    files: tuple[Mapping[str, Any], ...]  # one entry a corpus file (its source, its hash)
    relative_to: str | None = None  # CORPUS_BASE: ``path`` is relative to the index folder
    stat_signature: str | None = None  # names, sizes and times: the cheap staleness check

    @classmethod
    def from_dict(cls, corpus: Mapping[str, Any]) -> CorpusRecord:
        def text(key: str) -> str | None:
            value = corpus.get(key)
            return value if isinstance(value, str) else None

        files = tuple(f for f in corpus.get("files", []) if isinstance(f, Mapping))
        return cls(str(corpus.get("path", "")), str(corpus.get("fingerprint", "")), files,
                   text("relative_to"), text("stat_signature"))


@dataclass(frozen=True)
class Manifest:
    """A checked ``manifest.json``, typed: what every reader of an index uses instead of the
    parsed JSON. ``to_dict()`` gives the JSON back as written (the API's fingerprint hashes it)."""

    format_version: int
    model_name: str
    model_fingerprint: str
    corpus: CorpusRecord
    files: Mapping[str, FileEntry]
    passage_count: int
    sentence_count: int
    dimension: int
    answer: Mapping[str, Any]  # AnswerSettings' fields as recorded (empty: an older index)
    store: Mapping[str, Any] | None = None  # None: the default store (FAISS files here)
    page: Mapping[str, Any] | None = None
    faiss_index: str = "IndexFlatIP"
    nprobe: int | None = None
    analyzer_version: int | None = None  # of the saved BM25; None: none saved
    built_at: str | None = None
    package_version: str | None = None
    duplicates: Mapping[str, Any] | None = None  # what dedup collapsed: exact, near
    background_sha256: str | None = None  # of the anchor texts whose vectors the index holds
    split: Mapping[str, Any] | None = None  # the SplitSettings the passages were cut with
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Manifest:
        """The typed manifest of a parsed one; ``raw`` must have passed :func:`validate_manifest`."""
        def optional(key: str, kind: type) -> Any:
            value = raw.get(key)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        return cls(
            format_version=raw["format_version"],
            model_name=raw["model"]["name"],
            model_fingerprint=raw["model"]["fingerprint"],
            corpus=CorpusRecord.from_dict(raw["corpus"]),
            files={role: FileEntry.from_dict(entry) for role, entry in raw["files"].items()},
            passage_count=raw["passage_count"],
            sentence_count=raw["sentence_count"],
            dimension=raw["dimension"],
            answer=raw.get("answer") or {},
            store=raw.get("store"),
            page=raw.get("page"),
            faiss_index=raw.get("faiss_index", "IndexFlatIP"),
            nprobe=raw.get("faiss_params", {}).get("nprobe"),
            analyzer_version=raw.get("lexical", {}).get("analyzer_version"),
            built_at=optional("built_at", str),
            package_version=optional("package_version", str),
            duplicates=optional("duplicates", dict),
            background_sha256=optional("background_sha256", str),
            split=raw.get("split"),
            raw=raw,
        )

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.raw))

    @property
    def store_kind(self) -> str:
        return stores.kind_of(self.store)


def read_manifest(index_dir: Path) -> Manifest:
    hint = rebuild_hint(index_dir)
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(f"no index in {index_dir} (no {MANIFEST}): {hint}")
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ValueError(f"over {MAX_MANIFEST_BYTES // 2**20} MB")
        manifest = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise IndexMismatchError(f"{path} is unreadable or corrupted ({detail}): {hint}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexMismatchError(
            f"{path} has format version {found!r}, this ampere-qa reads {FORMAT_VERSION}: {hint}"
        )
    problem = validate_manifest(manifest)
    if problem:
        raise IndexMismatchError(f"{path} is damaged ({problem}): {hint}")
    return Manifest.from_dict(manifest)


def summary(index_dir: Path, manifest: Manifest) -> dict[str, Any]:
    """What ``ampere-qa info`` shows of an index (its ``--json``), without opening its data."""
    from ..embed.embedding import model_location

    corpus = recorded_corpus(index_dir, manifest)
    return {
        "index": str(index_dir),
        "format_version": manifest.format_version,
        "package_version": manifest.package_version,
        "built_at": manifest.built_at,
        "passages": manifest.passage_count,
        "sentences": manifest.sentence_count,
        "dimension": manifest.dimension,
        "duplicates": manifest.duplicates,
        "model": manifest.model_name,
        "model_fingerprint": manifest.model_fingerprint,
        "model_location": model_location(manifest.model_name),
        "corpus": str(corpus) if corpus else manifest.corpus.path,
        "corpus_files": len(manifest.corpus.files),
        "title": page_info(index_dir, manifest).title,
        "store": stores.shown(manifest.store),
        "stale": corpus_is_stale(index_dir, manifest),
    }


def page_info(index_dir: Path, manifest: Manifest) -> PageInfo:
    """The page the index records, or, for an index built before pages were recorded, the one
    derived from its corpus folder's name."""
    corpus = recorded_corpus(index_dir, manifest)
    if corpus is None and manifest.corpus.path:
        corpus = Path(os.path.normpath(manifest.corpus.path))
    return from_manifest(manifest.page, corpus)


def corpus_entry(corpus_root: str | Path, index_dir: Path) -> dict[str, str]:
    """How the manifest records where the corpus is: relative to the index folder, so that it
    means the same folder wherever ampere-qa is run from and wherever a checkout is moved;
    absolute when the two share no folder but the root (``/tmp/idx`` for ``/work/corpus``)."""
    corpus, index = Path(corpus_root).absolute(), index_dir.absolute()
    if os.path.commonpath([corpus, index]) == corpus.anchor:  # nothing shared but the root
        return {"path": str(corpus), "relative_to": CORPUS_BASE}
    return {"path": Path(os.path.relpath(corpus, index)).as_posix(), "relative_to": CORPUS_BASE}


def recorded_corpus(index_dir: Path, manifest: Manifest) -> Path | None:
    """The corpus folder (or file) the index was built from, if it can be told without guessing.

    Manifests written before the location was recorded relative to the index folder hold a path
    relative to wherever build ran: only an absolute one, or the index's sibling folder of that
    name (the layout of a checkout), is trusted then; never the current folder.
    """
    path = manifest.corpus.path
    if not path:
        return None
    if manifest.corpus.relative_to == CORPUS_BASE or Path(path).is_absolute():
        return Path(os.path.normpath(Path(index_dir).absolute() / path))
    sibling = Path(index_dir).absolute().parent / Path(path).name
    return sibling if sibling.exists() else None


def shown(path: Path) -> str:
    """A path as the user should type it here: relative when under the current folder, quoted
    for the shell when it needs to be."""
    import shlex

    absolute = Path(os.path.normpath(path.absolute()))
    try:
        text = str(absolute.relative_to(Path.cwd()))
    except ValueError:
        text = str(absolute)
    return shlex.quote(text)


def rebuild_hint(index_dir: Path, manifest: Manifest | None = None) -> str:
    """The command that rebuilds ``index_dir`` from the corpus and into the store it records
    (which the backend words, secrets masked: the hint goes into messages)."""
    corpus = recorded_corpus(index_dir, manifest) if manifest else None
    hint = (f"rebuild it with: ampere-qa build --corpus {shown(corpus) if corpus else 'CORPUS_DIR'} "
            f"--index {shown(Path(index_dir))}")
    return hint + stores.rebuild_options(manifest.store if manifest else None)


def stale_warning(index_dir: Path, manifest: Manifest) -> str:
    """The one-line warning shown when the corpus changed since the build."""
    return f"the corpus changed since {index_dir} was built; {rebuild_hint(index_dir, manifest)}"


def corpus_is_stale(index_dir: Path, manifest: Manifest) -> bool | None:
    """Compare the corpus fingerprint in the manifest with the recorded corpus as it is now;
    None when that corpus is not there (a copied index) or cannot be looked at."""
    from ..errors import AmpereError
    from ..ingest.corpus import read_corpus, stat_signature

    root = recorded_corpus(index_dir, manifest)
    if root is None or not root.exists():
        return None
    recorded = manifest.corpus.stat_signature
    if recorded is not None and stat_signature(root) == recorded:
        return False  # no file named, resized or modified since the build: nothing to read
    try:
        return read_corpus(root).fingerprint != manifest.corpus.fingerprint
    except AmpereError:
        return True  # files became unreadable, empty or too big: not what was indexed
    except OSError:
        return None


# Seconds a staleness answer is served before one background check refreshes it: a rebuilt
# corpus shows within this, and requests never pay for the check (with 50,000 files, reading
# them on each /api/health took 9-11 s, twelve at once 106 s).
STALE_REFRESH_S = 30.0


class StaleWatch:
    """``check()`` at O(1) a call: computed on the first call, then refreshed by one
    background thread at most every ``every_s`` seconds while callers get the last answer."""

    def __init__(self, check: Callable[[], bool | None], every_s: float = STALE_REFRESH_S):
        self._check, self._every = check, every_s
        self._first = threading.Lock()  # one first check, however many callers wait for it
        self._lock = threading.Lock()
        self._value: bool | None = None
        self._known, self._at, self._running = False, 0.0, False
        self.checks = 0  # how many times the corpus was looked at (for tests)

    def __call__(self) -> bool | None:
        if not self._known:
            with self._first:
                if not self._known:
                    self._refresh()
            return self._value
        with self._lock:
            due = not self._running and time.monotonic() - self._at >= self._every
            self._running = self._running or due
        if due:
            threading.Thread(target=self._refresh, name="ampere-qa-stale", daemon=True).start()
        return self._value

    def _refresh(self) -> None:
        try:
            self.checks += 1
            value = self._check()
        except Exception:  # a failed look keeps the last answer
            value = self._value
        with self._lock:
            self._value, self._at, self._known, self._running = value, time.monotonic(), True, False


def file_names(manifest: Manifest | None) -> set[str]:
    """The data files a manifest names (none without a manifest): what a build may replace."""
    return {entry.name for entry in manifest.files.values()} if manifest else set()


def analyzer_languages(answer: Mapping[str, Any]) -> tuple[str, ...]:
    """The languages whose stemmer and stop words the index's BM25 uses (from its answer
    settings, as recorded or about to be)."""
    languages = answer.get("languages") if isinstance(answer, Mapping) else None
    return tuple(languages) if isinstance(languages, list) and languages else DEFAULT_LANGUAGES
