"""The package version, read once from the installed package's metadata (pyproject.toml is the
one place it is written)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ampere-qa")
except PackageNotFoundError:  # run from a plain checkout (app.py puts src/ on the path)
    __version__ = "0+unknown"
