"""An index's data files against its manifest: their names, sizes and hashes.

A manifest entry records a file's name (``{role}.{12 hex digits}.{ext}``, the hash's start),
its size and its sha256. Files up to ``FULL_HASH_MAX_BYTES`` are hashed whole on every load;
larger ones are checked by size and by a hash of their first and last blocks
(``sample_sha256``): hashing gigabytes would add seconds to every start, and the failures seen in
practice, a truncated copy or a file from another build, change the size or the ends. A big file
is left for the caller to memory-map. A name is refused unless it is a plain data-file name of
its role in the index folder, before a byte is read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from ..atomic import NotRegularFile, open_regular
from ..errors import IndexMismatchError
from . import folder, stores
from .lexical import SAVED_ARRAYS
from .manifest import MANIFEST, FileEntry, Manifest, rebuild_hint

# Files larger than this are verified by size and a hash of their ends, not hashed whole, on load.
FULL_HASH_MAX_BYTES = 64 * 2**20
SAMPLE_BYTES = 2**20
ARRAYS = ("passage_vectors", "leave_one_out", "background")
# The documents' windows (write.Windows): written together, read when all three are listed.
WINDOW_ARRAYS = ("window_vectors", "window_docs", "window_keys")
# Extension of each data file; a manifest may name only ``{role}.{12 hex digits}.{ext}``.
# The stores' own files are theirs to name (extension asks the backends).
EXTENSIONS = {"passages": "jsonl", "lexical_vocab": "json",
              **{role: "npy" for role in (*ARRAYS, *WINDOW_ARRAYS, "passage_index", *SAVED_ARRAYS)}}


def extension(role: str) -> str | None:
    """The extension of ``role``'s data file: this module's, or a backend's (Backend.files)."""
    return EXTENSIONS.get(role) or stores.extensions().get(role)


def sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def ends_sha256(size: int, head: bytes | memoryview, tail: bytes | memoryview) -> str:
    """Hash of a file's size, first and last ``SAMPLE_BYTES``: the cheap check for big files."""
    h = hashlib.sha256(str(size).encode())
    h.update(head)
    h.update(tail)
    return h.hexdigest()


def file_entry(role: str, digest: str, size: int, path: str) -> dict[str, Any]:
    """The manifest entry of ``role``'s file, written at ``path`` with that sha256 and size."""
    entry: dict[str, Any] = {"name": f"{role}.{digest[:12]}.{extension(role)}", "sha256": digest,
                             "bytes": size}
    if size > FULL_HASH_MAX_BYTES:
        with open(path, "rb") as fh:
            head = fh.read(SAMPLE_BYTES)
            fh.seek(size - SAMPLE_BYTES)
            entry["sample_sha256"] = ends_sha256(size, head, fh.read(SAMPLE_BYTES))
    return entry


def data_path(index_dir: Path, role: str, entry: FileEntry, hint: str) -> Path:
    """Where the manifest's file for ``role`` is, refused unless it is a plain data-file name
    of that role (no folder, no link out): a manifest must not make ampere-qa read ``/dev/zero``
    or a file outside the index folder."""
    name = entry.name
    ok = (isinstance(name, str) and folder.DATA_FILE.match(name) and name.startswith(f"{role}.")
          and name.endswith(f".{extension(role)}"))
    path = index_dir / str(name)
    if ok and path.is_symlink():
        ok = path.resolve().parent == index_dir.resolve()
    if not ok:
        raise IndexMismatchError(f"{index_dir / MANIFEST} names {name!r} for its {role} file, "
                                 f"not a data file of this index folder: {hint}")
    return path


def check_file(index_dir: Path, role: str, entry: FileEntry, hint: str) -> tuple[Path, bytes | None]:
    """The file's path, and its bytes when it was small enough to read and hash whole.

    Its name and size are checked before a byte is read. A big file is checked by its size and
    the hash of its ends (see the module docstring) and left for the caller to memory-map.
    """
    path = data_path(index_dir, role, entry, hint)
    mismatch = IndexMismatchError(f"index file {path} does not match its manifest (corrupted or "
                                  f"changed since the build): {hint}")
    try:
        with open_regular(path) as fh:
            st = os.fstat(fh.fileno())
            if st.st_size != entry.bytes:
                raise mismatch
            if st.st_size > FULL_HASH_MAX_BYTES and entry.sample_sha256 is not None:
                head = fh.read(SAMPLE_BYTES)
                fh.seek(st.st_size - SAMPLE_BYTES)
                if ends_sha256(st.st_size, head, fh.read()) != entry.sample_sha256:
                    raise mismatch
                return path, None
            data = fh.read(st.st_size + 1)
    except NotRegularFile:
        raise mismatch from None
    except OSError:
        raise IndexMismatchError(f"index file {path} is missing or unreadable: {hint}") from None
    if sha256(data) != entry.sha256:
        raise mismatch
    return path, data


def intact(index_dir: Path, entry: FileEntry) -> bool:
    """Whether the file of ``entry`` is there and matches it."""
    role = entry.name.split(".", 1)[0]
    try:
        check_file(index_dir, role, entry, "")
    except IndexMismatchError:
        return False
    return True


def check_files(index_dir: Path, manifest: Manifest) -> None:
    """Every data file the manifest names is there, a plain file of the recorded size (cheap:
    no hashing). ``info`` uses it; loading checks the hashes as well."""
    hint = rebuild_hint(index_dir, manifest)
    for role, entry in manifest.files.items():
        path = data_path(index_dir, role, entry, hint)
        try:
            st = path.stat()
        except OSError:
            raise IndexMismatchError(f"index file {path} is missing or unreadable: {hint}") from None
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.bytes:
            raise IndexMismatchError(f"index file {path} does not match its manifest (size "
                                     f"{st.st_size}, manifest says {entry.bytes}): {hint}")
