"""Files written so that a crash never leaves a half-written one where a reader looks, and
files opened for reading only when they are what they claim to be."""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes | memoryview, prefix: str = ".") -> None:
    """Write through a temporary file in the same folder, fsync, then rename into place.

    The temporary file is named ``{prefix}{name}.XXXX.tmp``: a folder shared with the user
    gets a prefix that marks it as ours, so a killed write can be cleaned up by name.
    """
    with temp_file(path.parent, f"{prefix}{path.name}") as (fh, tmp):
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
        os.replace(tmp, path)


@contextlib.contextmanager
def temp_file(folder: Path, stem: str) -> Iterator[tuple[BinaryIO, str]]:
    """A new file ``{stem}.XXXX.tmp`` in ``folder``, open for writing, readable by others as
    the umask allows (mkstemp's 0600 would hide it); removed if the block fails, and left for
    the block to rename otherwise."""
    fd, tmp = tempfile.mkstemp(prefix=f"{stem}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            yield fh, tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading, refusing anything but a regular file with ``NotRegularFile``.

    ``O_NONBLOCK`` keeps a FIFO from blocking the open itself (a plain ``open`` would wait
    forever for a writer); regular files ignore the flag.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def map_regular(path: Path) -> mmap.mmap:
    """``path`` memory-mapped read-only (pages are read as they are touched), refused like
    :func:`open_regular` unless it is a regular file."""
    with open_regular(path) as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


class NotRegularFile(OSError):
    """A path that should be a plain file is a FIFO, a device, a folder…"""


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
