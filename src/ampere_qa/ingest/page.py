"""What the page says about a corpus: its title, description and example questions.

They come from the optional ``ampere-qa.toml`` at the corpus root, validated strictly, or are
derived from the corpus itself. Build records them in the manifest (``"page"``), so the page
needs nothing but the index.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

from ..errors import CorpusError
from ..packs.lang import pack
from ..settings import DEFAULT_LANGUAGES
from ..types import PageInfo
from .markup import SUFFIXES

SETTINGS_FILE = "ampere-qa.toml"
# Three short strings and a few examples: anything past this is not a settings file.
MAX_SETTINGS_BYTES = 64 * 1024
MAX_TITLE = 100
MAX_DESCRIPTION = 1000
MAX_EXAMPLES = 8
MAX_EXAMPLE = 200
# [answer]: list keys with how many items and how long each may be; a noun's longest.
_ANSWER_LISTS = {"languages": (8, 8), "domains": (16, 40), "anchors": (200, 300)}
MAX_NOUN = 60
# The description of a corpus whose settings give none: each default language pack's, joined.
DEFAULT_DESCRIPTION = " · ".join(pack(code).ui["description"] for code in DEFAULT_LANGUAGES)
_KEYS = ("title", "description", "examples", "answer")


def parse_settings(raw: bytes, where: str) -> dict[str, Any]:
    """The page fields ``ampere-qa.toml`` sets (a subset of title, description, examples),
    checked; ``where`` names the file in errors."""
    if len(raw) > MAX_SETTINGS_BYTES:
        raise CorpusError(f"{where} is over {MAX_SETTINGS_BYTES // 1024} kB: it only holds the "
                          "page's title, description and examples")
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{where} is not UTF-8 (byte {exc.start}): convert it") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise CorpusError(f"{where} is not valid TOML for ampere-qa: its arrays or tables are "
                          "nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        raise _invalid(exc, raw, where) from None
    except ValueError:  # an integer past Python's 4,300-digit limit for int()
        raise CorpusError(f"{where} is not valid TOML for ampere-qa: a number in it is too "
                          "long") from None
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise CorpusError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(_KEYS)})")
    out: dict[str, Any] = {}
    if "title" in data:
        out["title"] = _text(data["title"], f"{where}: title", MAX_TITLE)
    if "description" in data:
        out["description"] = _text(data["description"], f"{where}: description", MAX_DESCRIPTION,
                                   newlines=True)
    if "answer" in data:
        out["answer"] = parse_answer(data["answer"], where)
    if "examples" in data:
        examples = data["examples"]
        if not isinstance(examples, list):
            raise CorpusError(f"{where}: examples must be a list of questions, "
                              f"not {_toml_type(examples)}")
        if len(examples) > MAX_EXAMPLES:
            raise CorpusError(f"{where}: {len(examples)} examples, at most {MAX_EXAMPLES}")
        out["examples"] = tuple(_text(e, f"{where}: examples[{i}]", MAX_EXAMPLE)
                                for i, e in enumerate(examples))
    return out


def parse_answer(table: object, where: str) -> dict[str, Any]:
    """The ``[answer]`` table, checked like the page's texts: languages, domains and anchors
    lists of strings, a noun by language. Whether the packs named exist the build checks."""
    if not isinstance(table, dict):
        raise CorpusError(f"{where}: answer must be a table ([answer]), not {_toml_type(table)}")
    allowed = (*_ANSWER_LISTS, "noun")
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise CorpusError(f"{where}: unknown key answer.{unknown[0]} (allowed: {', '.join(allowed)})")
    out: dict[str, Any] = {}
    for key, (most, longest) in _ANSWER_LISTS.items():
        if key in table:
            value = table[key]
            if not isinstance(value, list) or not 1 <= len(value) <= most:
                raise CorpusError(f"{where}: answer.{key} must be a list of 1 to {most} strings")
            out[key] = tuple(_text(v, f"{where}: answer.{key}[{i}]", longest)
                             for i, v in enumerate(value))
    if "noun" in table:
        noun = table["noun"]
        if not isinstance(noun, dict):
            raise CorpusError(f"{where}: answer.noun must be a table of language code = noun, "
                              f"e.g. noun = {{ fr = \"le guide\" }}, not {_toml_type(noun)}")
        out["noun"] = {code: _text(v, f"{where}: answer.noun.{code}", MAX_NOUN)
                       for code, v in noun.items()}
    return out


def _invalid(exc: tomllib.TOMLDecodeError, raw: bytes, where: str) -> CorpusError:
    message = str(exc)  # it gives the line and column...
    if message.endswith("(at end of document)"):  # ... except at the end
        last = max(1, len(raw.decode("utf-8-sig").splitlines()))
        message = message.replace("(at end of document)", f"(at the end, line {last})")
    return CorpusError(f"{where} is not valid TOML: {message}")


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list",
             dict: "a table", str: "a string"}
    return names.get(type(value), "a date")


# Embedding and override controls (U+202A-U+202E) and isolates (U+2066-U+2069).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _text(value: object, what: str, limit: int, newlines: bool = False) -> str:
    if not isinstance(value, str):
        raise CorpusError(f"{what} must be a string, not {_toml_type(value)}")
    value = value.strip()
    if not value:
        raise CorpusError(f"{what} is empty")
    if len(value) > limit:
        raise CorpusError(f"{what} is {len(value)} characters, at most {limit}")
    allowed = "\n" if newlines else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
        raise CorpusError(f"{what} holds a control character")
    if any(c in _BIDI_CONTROLS for c in value):  # would reorder the page text around it
        raise CorpusError(f"{what} holds a bidirectional control character")
    if all(unicodedata.category(c)[0] in "ZC" for c in value):  # zero-width and the like
        raise CorpusError(f"{what} holds nothing visible")
    return value


def words_of(name: str) -> str:
    """A folder or file name as words: ``my-docs`` -> ``my docs``."""
    return " ".join(re.sub(r"[-_.]+", " ", name).split())


def derived(name: str, first_title: str = "") -> PageInfo:
    """The page of a corpus without ``ampere-qa.toml``: its first document's title (first
    ``<h1>``, Markdown ``#`` or ``<title>``), else the corpus folder's name, as "… — Q&A"."""
    subject = first_title or words_of(name) or "Documents"
    suffix = " — Q&A"
    if len(subject) + len(suffix) > MAX_TITLE:
        subject = subject[:MAX_TITLE - len(suffix) - 1].rstrip() + "…"
    # No examples: which questions a corpus answers well cannot be derived reliably.
    return PageInfo(title=subject + suffix, description=DEFAULT_DESCRIPTION, examples=())


def page_of(settings: dict[str, Any], name: str, first_title: str = "") -> PageInfo:
    """The page: what ``ampere-qa.toml`` sets, the rest derived."""
    base = derived(name, first_title)
    return PageInfo(title=settings.get("title", base.title),
                    description=settings.get("description", base.description),
                    examples=tuple(settings.get("examples", base.examples)))


def from_manifest(entry: object, corpus: Path | None) -> PageInfo:
    """The page an index records; derived from the corpus folder's name for an index built
    before pages were recorded (such an index has no headings to take a title from)."""
    if isinstance(entry, dict):
        return PageInfo(title=entry["title"], description=entry["description"],
                        examples=tuple(entry["examples"]))
    name = "" if corpus is None else (corpus.stem if corpus.suffix.lower() in SUFFIXES else corpus.name)
    return derived(name)
