"""Checking the model cache's files against the sha256 recorded when they were written.

The converted model's marker and the ONNX export's ``export.json`` record the full sha256 of
every file they wrote. Hashing the two 470 MB weights files costs ~0.35 s each, so a file is
hashed once and the result kept in a small stamp file beside it (``.verified.json``), tied to the
file's identity: device, inode, size, modification and change times. Any of them differing
(the file was replaced, rewritten, truncated, touched, copied) means hashing it again. A cache
that cannot be written is hashed every time rather than refused; within a process a file is
hashed once per identity.

Anything wrong on disk raises :class:`CacheDamagedError`, naming the file and the command that
repairs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...atomic import NotRegularFile, open_regular, write_atomic
from ...errors import ModelError

STAMP_FILE = ".verified.json"
STAMP_VERSION = 1
INSTALL = "ampere-qa model install"
_IDENTITY = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
# (path, identity) -> sha256 verified in this process
_VERIFIED: dict[tuple[str, tuple[int, ...]], str] = {}


class CacheDamagedError(ModelError):
    """A file of the model cache is damaged, missing or not ampere-qa's: the message names it
    (``problem``) and what repairs it (``fix``). Never worked around by falling back to another
    engine: the cache must be repaired."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem}: {fix}")
        self.problem, self.fix = problem, fix


def read_record(path: Path, fix: str, limit: int = 1 << 22) -> dict[str, Any] | None:
    """A JSON object the cache keeps (the conversion's marker, the export's record); None
    when there is none. One that cannot be read or is not an object raises
    :class:`CacheDamagedError` naming it."""
    if not os.path.lexists(path):
        return None
    try:
        with open_regular(path) as fh:
            record = json.loads(fh.read(limit).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise CacheDamagedError(f"{path} is damaged (unreadable: {' '.join(str(exc).split())})",
                                fix) from exc
    if not isinstance(record, dict):
        raise CacheDamagedError(f"{path} is damaged (a JSON {type(record).__name__}, not an "
                                "object)", fix)
    return record


def identity(path: Path) -> tuple[int, ...]:
    """What changes whenever a file's content can have changed (ctime cannot be set back)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(f"{path} is not a regular file")
    return tuple(int(getattr(st, k)) for k in _IDENTITY)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular(path) as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_mode() -> int:
    """The mode a new file gets from the umask (what ``open`` gives): 0644 under umask 022."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _read_stamp(folder: Path) -> dict[str, Any]:
    try:
        with open_regular(folder / STAMP_FILE) as fh:
            stamp = json.loads(fh.read(1 << 20))
    except (OSError, ValueError):
        return {}
    files = stamp.get("files") if isinstance(stamp, dict) else None
    if stamp.get("version") != STAMP_VERSION or not isinstance(files, dict):
        return {}
    return files


def _valid_entry(e: Any) -> bool:
    return (isinstance(e, dict) and isinstance(e.get("sha256"), str)
            and all(isinstance(e.get(k), int) for k in _IDENTITY))


def _entry(ident: tuple[int, ...], digest: str) -> dict[str, Any]:
    return {**dict(zip(_IDENTITY, ident, strict=True)), "sha256": digest}


def write_stamp(folder: Path, verified: Mapping[str, tuple[tuple[int, ...], str]]) -> bool:
    """Record ``{name: (identity, sha256)}`` as verified; False when the folder is read-only."""
    files = {name: _entry(ident, digest) for name, (ident, digest) in sorted(verified.items())}
    body = json.dumps({"version": STAMP_VERSION, "files": files}, indent=1).encode()
    try:
        write_atomic(folder / STAMP_FILE, body)
    except OSError:
        return False
    return True


def hash_files(folder: Path, names: list[str]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Identity and sha256 of freshly written files (to record, and to stamp as verified)."""
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    for name in names:
        ident = identity(folder / name)
        digest = sha256_file(folder / name)
        if identity(folder / name) != ident:
            raise ModelError(f"{folder / name} changed while it was being written")
        _VERIFIED[(str(folder / name), ident)] = digest
        out[name] = (ident, digest)
    return out


def verify_files(folder: Path, expected: Mapping[str, str], record: Path, fix: str,
                 rehash: bool = False) -> dict[str, tuple[int, ...]]:
    """Check that each ``folder / name`` has the sha256 ``expected[name]`` (recorded in
    ``record``); returns each file's identity as verified, for the caller to compare after
    opening the files. ``rehash`` ignores the stamp and this process's memory of it."""
    stamp = {} if rehash else _read_stamp(folder)
    identities: dict[str, tuple[int, ...]] = {}
    fresh: dict[str, tuple[tuple[int, ...], str]] = {}
    for name, want in expected.items():
        path = folder / name
        try:
            ident = identity(path)
            known = stamp.get(name)
            if not rehash and (_VERIFIED.get((str(path), ident)) == want
                               or known == _entry(ident, want)):
                identities[name] = ident
                continue
            got = sha256_file(path)
            after = identity(path)
        except FileNotFoundError:
            raise CacheDamagedError(f"{path} is missing", fix) from None
        except OSError as exc:
            raise CacheDamagedError(f"{path} cannot be read ({exc})", fix) from exc
        if got != want:
            _VERIFIED.pop((str(path), ident), None)
            with contextlib.suppress(OSError):  # a stamp must never vouch for it again
                (folder / STAMP_FILE).unlink()
            raise CacheDamagedError(f"{path} is damaged (its sha256 is not the one {record.name} "
                                    "records)", fix)
        if after != ident:
            raise CacheDamagedError(f"{path} changed while it was being checked", f"try again, "
                                    f"or {fix}")
        _VERIFIED[(str(path), ident)] = want
        identities[name] = ident
        fresh[name] = (ident, want)
    if fresh:  # best effort: a read-only cache means hashing again next time
        others = {n: e for n, e in stamp.items() if n not in expected and _valid_entry(e)}
        write_stamp(folder, {**{n: (tuple(int(e[k]) for k in _IDENTITY), str(e["sha256"]))
                                for n, e in others.items()},
                             **{n: (identities[n], expected[n]) for n in expected}})
    return identities


def same_identities(folder: Path, identities: Mapping[str, tuple[int, ...]], fix: str) -> None:
    """Refuse files that changed since they were verified (replaced while being opened)."""
    for name, ident in identities.items():
        try:
            now = identity(folder / name)
        except OSError:
            now = None
        if now != ident:
            raise CacheDamagedError(f"{folder / name} changed after it was checked (replaced "
                                    "while being opened)", f"try again, or {fix}")
