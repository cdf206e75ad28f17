"""Reading the corpus: a folder (or a single file) of UTF-8 ``.txt``, ``.md`` and ``.html``
documents, and the optional ``ampere-qa.toml`` beside them (see page.py).

Offsets everywhere in ampere_qa are code-point offsets into a document's text exactly as decoded
here: UTF-8, a leading byte-order mark removed, line endings and Unicode form left untouched,
so that ``Document.text[start:end]`` is what the file says. For ``.html``/``.htm`` files the
text is the one extracted from the markup (markup.html_text: what a reader of the page sees),
so their offsets are into that text, not into the file's bytes.

A document's ``source`` is the corpus folder's own name and the path inside it
(``mydocs/notes/a.md`` for ``--corpus /home/u/mydocs``; the file's name for a single file): the
answer shows it to whoever asks, so it never tells where the server keeps the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import NotRegularFile, open_regular
from ..errors import CorpusError
from ..settings import AnswerSettings
from ..types import PageInfo, Skipped
from .markup import SUFFIXES, Heading, has_body, structure
from .page import MAX_SETTINGS_BYTES, SETTINGS_FILE, page_of, parse_settings

READABLE = ".txt, .md or .html"
# One article is a few kB. Build embeds every passage, sentence and passage-minus-a-sentence
# (~30 texts per kB of prose) at ~10-50 texts/s on a laptop CPU, so 2 MiB (a long book) already
# means hours of embedding: a file past this is almost certainly not prose meant for the index,
# and refusing it up front (from its size, before reading a byte) keeps memory bounded too.
MAX_FILE_BYTES = 2 * 1024 * 1024
# The same reasoning for the whole folder: many files just under the limit add up.
MAX_CORPUS_BYTES = 8 * 1024 * 1024
# Byte-order marks of encodings that hold NUL bytes, so they are named rather than called binary.
_UTF16_32_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32",
                  b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


@dataclass(frozen=True)
class Document:
    """One corpus file: ``source`` is its name for display (``corpus/x.txt``, see above),
    ``path`` where it was read from (None for a document made in memory). ``headings`` are
    spans of ``text`` that are not body text (Markdown and HTML headings, see markup.py)."""

    source: str
    text: str
    sha256: str
    path: Path | None = None
    headings: tuple[Heading, ...] = ()

    @property
    def title(self) -> str:
        """Its first level-1 heading (or an HTML page's ``<title>``), "" if it has none."""
        return next((h.title for h in self.headings if h.level <= 1), "")


def display_name(path: Path | str) -> str:
    """``path`` as text that can always be printed and written as JSON.

    POSIX file names are bytes; Python decodes the non-UTF-8 ones into lone surrogates, which
    no UTF-8 stream can encode. Those bytes are shown as U+FFFD instead.
    """
    return os.fsencode(path).decode("utf-8", "replace")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def corpus_name(corpus: Path) -> str:
    """The corpus folder's own name: ``mydocs`` for ``/home/u/mydocs/``, the current folder's
    for ``.`` (links are not resolved: the name is the one the user gave the folder)."""
    return Path(os.path.abspath(corpus)).name


def source_name(path: Path, corpus: Path) -> str:
    """How ``path``, found under ``corpus``, is named in the index and in answers."""
    if path == corpus:  # a single file
        return display_name(path.name)
    name = corpus_name(corpus)
    relative = path.relative_to(corpus).as_posix()
    return display_name(f"{name}/{relative}" if name else relative)


def _unreadable_type(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        return None
    if not suffix:
        return f"cannot read files without a suffix: convert it to {READABLE}"
    return f"cannot read {display_name(suffix)} files: convert it to {READABLE}"


def corpus_files(corpus: Path) -> tuple[list[Path], list[Skipped]]:
    """The readable files under ``corpus`` (or ``corpus`` itself), in a stable order, and every
    other file left out with the reason: nothing is left out in silence but hidden files and
    the corpus's own ``ampere-qa.toml``.

    Only regular files whose real location is inside the corpus folder are read: a link to
    ``/etc/passwd`` or ``/proc/...`` would otherwise be indexed and quoted to anyone who asks,
    and a FIFO would block the build forever. Links to folders are not followed. A file whose
    name is not valid UTF-8 cannot be recorded or shown, so it is skipped too. A PDF or a Word
    file is reported (not read): the user learns it is not in the index, and how to get it in.
    """
    if corpus.is_file():
        reason = _unreadable_type(corpus)
        return ([], [Skipped(source_name(corpus, corpus), reason)]) if reason else ([corpus], [])
    if not corpus.is_dir():
        raise CorpusError(f"corpus folder not found: {display_name(corpus)}")
    root = corpus.resolve()
    files: list[Path] = []
    skipped: list[Skipped] = []
    for folder, dirs, names in os.walk(corpus):  # followlinks=False: linked folders stay out
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if name.startswith(".") or (name == SETTINGS_FILE and folder == os.fspath(corpus)):
                continue
            reason = _refusal(path, root) or _unreadable_type(path)
            if reason:
                skipped.append(Skipped(source_name(path, corpus), reason))
            else:
                files.append(path)
    if not files and not skipped:
        raise CorpusError(f"no {READABLE} files in {display_name(corpus)}: put the documents "
                          "there first")
    return sorted(files), skipped


def _refusal(path: Path, root: Path) -> str | None:
    """Why ``path`` must not be read as a corpus file, or None."""
    if display_name(path) != str(path):
        return "its name is not valid UTF-8: rename it"
    try:
        real = path.resolve(strict=True)
        st = real.stat()
    except (OSError, RuntimeError):  # a dangling or looping link
        return "it is a broken link"
    if not _inside(real, root):
        return "it links outside the corpus folder"
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    return None


def _too_big(source: str, size: int | None = None) -> CorpusError:
    what = f"is {size / 2**20:.1f} MB, over" if size is not None else "is over"
    return CorpusError(
        f"{source} {what} the {MAX_FILE_BYTES // 2**20} MB limit for one corpus file "
        "(embedding it would take hours): remove it from the corpus, or split it into smaller "
        "files if it really is text to index"
    )


def _read_bounded(path: Path) -> bytes:
    """The file's bytes, refusing it once more than ``MAX_FILE_BYTES`` arrive.

    The size on disk is checked first (no byte read for a file known to be too big), and the
    read itself is bounded too: some files report a size of 0 and yield megabytes.
    """
    source = display_name(path)
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise _too_big(source, size)
            raw = fh.read(MAX_FILE_BYTES + 1)
    except NotRegularFile:
        raise CorpusError(f"{source} is not a regular file: remove it from the corpus") from None
    except OSError as exc:
        raise CorpusError(f"cannot read {source}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise _too_big(source)
    return raw


def read_document(path: Path, name: str | None = None) -> Document | Skipped:
    """Decode one file (named ``name`` in the index, its path by default) and find its
    headings; empty files are skipped, unreadable or non-text files are errors.

    An empty file is harmless, so it is skipped with a reason. A binary or non-UTF-8 file most
    likely means the wrong file was copied in: indexing around it would silently lose content,
    so it stops the build with a message naming the file (by its path: the one reading the
    message is the one who built).
    """
    source = display_name(path)
    raw = _read_bounded(path)
    if b"\x00" in raw:
        for bom, name in _UTF16_32_BOMS.items():
            if raw.startswith(bom):
                raise CorpusError(f"{source} is {name}, not UTF-8: convert it, "
                                  f"e.g. iconv -f {name} -t UTF-8 {source}")
        raise CorpusError(f"{source} looks binary (it contains NUL bytes): remove it from the corpus")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{source} is not UTF-8 (byte {exc.start}): convert it, "
            f"e.g. iconv -f latin1 -t utf-8 {source}"
        ) from None
    name = name or source
    if not text.strip():
        return Skipped(name, "empty file")
    text, headings = structure(path.suffix, text)
    if not has_body(text, headings):
        return Skipped(name, "no text in it but markup and headings")
    return Document(source=name, text=text, sha256=hashlib.sha256(raw).hexdigest(), path=path,
                    headings=headings)


@dataclass(frozen=True)
class Corpus:
    """What build reads: the documents, the files skipped, a fingerprint of the documents and
    of ``ampere-qa.toml``, and the page (from that file, else derived)."""

    root: str
    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...]
    fingerprint: str
    page: PageInfo
    answer: AnswerSettings = field(default_factory=AnswerSettings)


def read_corpus(corpus: Path | str) -> Corpus:
    """All documents under ``corpus``, the files skipped with their reasons, and the page."""
    root = Path(corpus)
    docs: list[Document] = []
    files, skipped = corpus_files(root)
    settings, settings_sha256 = read_settings(root) if root.is_dir() else ({}, None)
    # Sizes first, before reading a byte: a huge file is named on its own, then the total counts.
    total = 0
    for path in files:
        with contextlib.suppress(OSError):  # an unreadable file is reported by read_document
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise _too_big(display_name(path), size)
            total += size
    _check_total(corpus, total)
    total = 0
    for path in files:
        got = read_document(path, source_name(path, root))
        if isinstance(got, Document):
            total += len(got.text.encode())  # what was actually read, whatever stat said
            _check_total(corpus, total)
            docs.append(got)
        else:
            skipped.append(got)
    skipped.sort(key=lambda s: s.source)  # one list in reading order, whatever found them
    if not docs:
        shown = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        raise CorpusError(f"no readable, non-empty {READABLE} file in {display_name(corpus)}: "
                          "nothing to index" + (f" (skipped {shown}{more})" if skipped else ""))
    name = root.stem if root.is_file() else corpus_name(root)
    page = page_of(settings, name, docs[0].title)
    return Corpus(display_name(corpus), tuple(docs), tuple(skipped),
                  fingerprint(root, docs, settings_sha256), page,
                  AnswerSettings(**settings.get("answer", {})))


def read_settings(root: Path) -> tuple[dict[str, Any], str | None]:
    """What the corpus folder's ``ampere-qa.toml`` sets, checked, and its sha256 (None and
    nothing set when there is no such file). Held to the corpus files' rules: a link out of
    the folder or a FIFO is refused, not read."""
    path = root / SETTINGS_FILE
    if not os.path.lexists(path):
        return {}, None
    where = display_name(path)
    reason = _refusal(path, root.resolve())
    if reason:
        raise CorpusError(f"{where} cannot be read: {reason}")
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_SETTINGS_BYTES + 1)
    except NotRegularFile:
        raise CorpusError(f"{where} is not a regular file: remove it") from None
    except OSError as exc:
        raise CorpusError(f"cannot read {where}: {exc.strerror or exc}") from exc
    return parse_settings(raw, where), hashlib.sha256(raw).hexdigest()


def _check_total(corpus: Path | str, total: int) -> None:
    if total > MAX_CORPUS_BYTES:
        raise CorpusError(
            f"the corpus in {display_name(corpus)} holds {total / 2**20:.1f} MB of text, "
            f"over the {MAX_CORPUS_BYTES // 2**20} MB limit (embedding it would take hours): "
            "keep only the articles to index there"
        )


def fingerprint(root: Path, docs: list[Document], settings_sha256: str | None = None) -> str:
    """Hash of file names (relative to the corpus root) and contents, and of ``ampere-qa.toml``
    when there is one: the staleness check.

    Relative names keep it independent of how the folder was spelled (``corpus`` or ``./corpus``)
    and of where the checkout lives. The settings file counts only when it exists, so a corpus
    without one keeps the fingerprint it always had.
    """
    h = hashlib.sha256()
    base = root if root.is_dir() else root.parent
    names = sorted((Path(d.path or d.source).relative_to(base).as_posix(), d.sha256) for d in docs)
    for name, sha256 in names:
        h.update(f"{name}\0{sha256}\n".encode())
    if settings_sha256 is not None:
        h.update(f"{SETTINGS_FILE}\0{settings_sha256}\n".encode())
    return h.hexdigest()


def stat_signature(corpus: Path | str) -> str | None:
    """A hash of the corpus's file names, sizes and modification times (and its settings
    file's), from directory metadata alone: equal signatures mean nothing was edited since,
    so the staleness check need not read a byte (50,000 files took 9-11 s to read). None when
    the folder cannot be listed."""
    root = Path(corpus)
    h = hashlib.sha256()
    try:
        files, _ = corpus_files(root)
        base = root if root.is_dir() else root.parent
        settings = [root / SETTINGS_FILE] if root.is_dir() and (root / SETTINGS_FILE).exists() else []
        for path in [*files, *settings]:
            st = path.stat()
            h.update(f"{path.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except (OSError, CorpusError):
        return None
    return h.hexdigest()
