"""Reading the corpus: a folder (or a single file) of UTF-8 ``.txt`` and ``.md`` documents.

Offsets everywhere in ampere_qa are code-point offsets into a file's text exactly as decoded
here: UTF-8, a leading byte-order mark removed, line endings and Unicode form left untouched,
so that ``Document.text[start:end]`` is what the file says.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .atomic import NotRegularFile, open_regular
from .errors import CorpusError
from .types import Skipped

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")
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
    """One corpus file: ``source`` is its path as given to build (``corpus/x.txt``)."""

    source: str
    text: str
    sha256: str


def display_name(path: Path | str) -> str:
    """``path`` as text that can always be printed and written as JSON.

    POSIX file names are bytes; Python decodes the non-UTF-8 ones into lone surrogates, which
    no UTF-8 stream can encode. Those bytes are shown as U+FFFD instead.
    """
    return os.fsencode(path).decode("utf-8", "replace")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def corpus_files(corpus: Path) -> tuple[list[Path], list[Skipped]]:
    """The ``.txt``/``.md`` files under ``corpus`` (or ``corpus`` itself), in a stable order,
    and the candidates left out with the reason.

    Only regular files whose real location is inside the corpus folder are read: a link to
    ``/etc/passwd`` or ``/proc/...`` would otherwise be indexed and quoted to anyone who asks,
    and a FIFO would block the build forever. Links to folders are not followed. A file whose
    name is not valid UTF-8 cannot be recorded or shown, so it is skipped too.
    """
    if corpus.is_file():
        return [corpus], []
    if not corpus.is_dir():
        raise CorpusError(f"corpus folder not found: {display_name(corpus)}")
    root = corpus.resolve()
    files: list[Path] = []
    skipped: list[Skipped] = []
    for folder, dirs, names in os.walk(corpus):  # followlinks=False: linked folders stay out
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if name.startswith(".") or path.suffix.lower() not in SUFFIXES:
                continue
            reason = _refusal(path, root)
            if reason:
                skipped.append(Skipped(display_name(path), reason))
            else:
                files.append(path)
    if not files and not skipped:
        raise CorpusError(f"no .txt or .md files in {display_name(corpus)}: put the article(s) there first")
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


def read_document(path: Path) -> Document | Skipped:
    """Decode one file; empty files are skipped, unreadable or non-text files are errors.

    An empty file is harmless, so it is skipped with a reason. A binary or non-UTF-8 file most
    likely means the wrong file was copied in: indexing around it would silently lose content,
    so it stops the build with a message naming the file.
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
    if not text.strip():
        return Skipped(source, "empty file")
    return Document(source=source, text=text, sha256=hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class Corpus:
    """What build reads: the documents, the files skipped, and a fingerprint of both."""

    root: str
    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...]
    fingerprint: str


def read_corpus(corpus: Path | str) -> Corpus:
    """All documents under ``corpus``, and the files skipped with their reasons."""
    root = Path(corpus)
    docs: list[Document] = []
    files, skipped = corpus_files(root)
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
        got = read_document(path)
        if isinstance(got, Document):
            total += len(got.text.encode())  # what was actually read, whatever stat said
            _check_total(corpus, total)
            docs.append(got)
        else:
            skipped.append(got)
    for s in skipped:
        log.warning("skipped %s: %s", s.source, s.reason)
    if not docs:
        raise CorpusError(f"no readable, non-empty .txt or .md file in {display_name(corpus)}: "
                          "nothing to index")
    return Corpus(display_name(corpus), tuple(docs), tuple(skipped), fingerprint(root, docs))


def _check_total(corpus: Path | str, total: int) -> None:
    if total > MAX_CORPUS_BYTES:
        raise CorpusError(
            f"the corpus in {display_name(corpus)} holds {total / 2**20:.1f} MB of .txt/.md files, "
            f"over the {MAX_CORPUS_BYTES // 2**20} MB limit (embedding it would take hours): "
            "keep only the articles to index there"
        )


def fingerprint(root: Path, docs: list[Document]) -> str:
    """Hash of file names (relative to the corpus root) and contents: the staleness check.

    Relative names keep it independent of how the folder was spelled (``corpus`` or ``./corpus``)
    and of where the checkout lives.
    """
    h = hashlib.sha256()
    base = root if root.is_dir() else root.parent
    for d in sorted(docs, key=lambda d: d.source):
        h.update(f"{Path(d.source).relative_to(base).as_posix()}\0{d.sha256}\n".encode())
    return h.hexdigest()
