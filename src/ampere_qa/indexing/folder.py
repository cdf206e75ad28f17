"""The index folder as a place ampere-qa shares with its user: what it may touch there.

ampere-qa deletes only what it can prove it wrote: data files named by a manifest it committed,
files listed in its build journal, and its own temporary files (``.ampere-qa-tmp.*``). Anything
else in the folder is left alone, whatever its name looks like. Builds into one folder take an
exclusive lock, so two of them never interleave their writes.

The journal (``.ampere-qa-journal.json``) is written before the first data file of a build: it
lists the files the build is about to create and the ones its manifest will supersede. After the
commit (the manifest replaced) those the manifest does not name are removed; a build killed at
any point leaves the journal behind, and the next build finishes the clean-up from it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..atomic import write_atomic
from ..errors import BadInputError, IndexBusyError

log = logging.getLogger(__name__)

LOCK = ".ampere-qa.lock"
JOURNAL = ".ampere-qa-journal.json"
TEMP_PREFIX = ".ampere-qa-tmp."
OWN = (LOCK, JOURNAL)
# How long a build waits for another build of the same index before giving up.
LOCK_TIMEOUT = 600.0
DATA_FILE = re.compile(r"^[a-z_]+\.[0-9a-f]{12}\.(?:jsonl|json|faiss|npy)$")
_TEMP_FILE = re.compile(r"^\.ampere-qa-tmp\..+\.tmp$")


def is_own_temp(name: str) -> bool:
    return bool(_TEMP_FILE.match(name))


def check_target(index_dir: Path) -> None:
    """Refuse, before any work, an index path that cannot take an index: a file, a read-only
    or full file system. Found after minutes of embedding, it would waste them."""
    if index_dir.exists() and not index_dir.is_dir():
        raise BadInputError(f"--index {index_dir} is a file, not a folder: choose a folder")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        probe = index_dir / f"{TEMP_PREFIX}probe.{os.getpid()}.tmp"
        try:
            with probe.open("wb") as fh:  # a few blocks: a full disk fails here, not later
                fh.write(b"\0" * 65536)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
    except OSError as exc:
        reason = {errno.EROFS: "it is on a read-only file system", errno.ENOSPC: "the disk is full",
                  errno.EACCES: "permission denied", errno.EDQUOT: "the disk quota is exhausted"}
        why = reason.get(exc.errno or 0, exc.strerror or str(exc))
        raise BadInputError(f"cannot write the index in {index_dir}: {why}") from None


def foreign_entries(index_dir: Path, own: Iterable[str]) -> list[str]:
    """Names in ``index_dir`` that ampere-qa did not write (``own``: the manifest's files)."""
    mine = set(own) | set(OWN)
    return sorted(os.fsdecode(e.name) for e in os.scandir(index_dir)
                  if e.name not in mine and not is_own_temp(e.name))


@contextlib.contextmanager
def build_lock(index_dir: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the folder's build lock; wait (saying so) while another build holds it."""
    with (index_dir / LOCK).open("a") as fh:
        deadline = time.monotonic() + timeout
        waiting = False
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log.warning("another build of %s is running: waiting for it to finish", index_dir)
                    waiting = True
                if time.monotonic() > deadline:
                    raise IndexBusyError(
                        f"another build of {index_dir} has held it for over {timeout:.0f} s: "
                        "wait for it, or stop it") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def begin(index_dir: Path, created: list[str], superseded: list[str]) -> None:
    """Record what this build will create and supersede, before it writes a data file."""
    entry = {"created": created, "superseded": superseded}
    write_atomic(index_dir / JOURNAL, json.dumps(entry).encode(), prefix=TEMP_PREFIX)


def finish(index_dir: Path, keep: set[str]) -> None:
    """Remove what the journal lists and the manifest ``keep`` does not name, the temporary
    files of killed writes, then the journal. Run after a commit, and before a build starts."""
    try:
        entry = json.loads((index_dir / JOURNAL).read_text(encoding="utf-8"))
        listed = [*entry.get("created", []), *entry.get("superseded", [])]
    except (OSError, ValueError, AttributeError, TypeError):
        listed = []
    for name in listed:
        if isinstance(name, str) and DATA_FILE.match(name) and name not in keep:
            _remove(index_dir / name)
    for e in os.scandir(index_dir):
        if is_own_temp(e.name) and e.is_file(follow_symlinks=False):
            _remove(Path(e.path))
    _remove(index_dir / JOURNAL)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or path.is_file():
            path.unlink()
