"""Reading the corpus: a folder (or a single file) of UTF-8 ``.txt`` and ``.md`` documents.

Offsets everywhere in ampere_qa are code-point offsets into a file's text exactly as decoded
here: UTF-8, a leading byte-order mark removed, line endings and Unicode form left untouched,
so that ``Document.text[start:end]`` is what the file says.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError

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


@dataclass(frozen=True)
class Skipped:
    """A corpus file left out of the index, and why (reported by ``build``)."""

    source: str
    reason: str


def corpus_files(corpus: Path) -> list[Path]:
    """The ``.txt``/``.md`` files under ``corpus`` (or ``corpus`` itself), in a stable order."""
    if corpus.is_file():
        return [corpus]
    if not corpus.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus}")
    files = sorted(
        p for p in corpus.rglob("*")
        if p.suffix.lower() in SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(corpus).parts)
    )
    if not files:
        raise CorpusError(f"no .txt or .md files in {corpus}: put the article(s) there first")
    return files


def read_document(path: Path) -> Document | Skipped:
    """Decode one file; empty files are skipped, unreadable or non-text files are errors.

    An empty file is harmless, so it is skipped with a reason. A binary or non-UTF-8 file most
    likely means the wrong file was copied in: indexing around it would silently lose content,
    so it stops the build with a message naming the file.
    """
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CorpusError(
                f"{source} is {size / 2**20:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit "
                "for one corpus file (embedding it would take hours): remove it from the corpus, "
                "or split it into smaller files if it really is text to index"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {source}: {exc.strerror or exc}") from exc
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
    skipped: list[Skipped] = []
    files = corpus_files(root)
    # Sizes first, before reading a byte: a huge file is named on its own, then the total counts.
    total = 0
    for path in files:
        with contextlib.suppress(OSError):  # an unreadable file is reported by read_document
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                read_document(path)  # raises the per-file message
            total += size
    if total > MAX_CORPUS_BYTES:
        raise CorpusError(
            f"the corpus in {corpus} holds {total / 2**20:.1f} MB of .txt/.md files, over the "
            f"{MAX_CORPUS_BYTES // 2**20} MB limit (embedding it would take hours): "
            "keep only the articles to index there"
        )
    for path in files:
        got = read_document(path)
        if isinstance(got, Skipped):
            log.warning("skipped %s: %s", got.source, got.reason)
            skipped.append(got)
        else:
            docs.append(got)
    if not docs:
        raise CorpusError(f"every file in {corpus} is empty: nothing to index")
    return Corpus(str(corpus), tuple(docs), tuple(skipped), fingerprint(root, docs))


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
