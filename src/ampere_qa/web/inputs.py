"""The checks every event's inputs pass before Gradio processes them. No Gradio here: a refusal
is a :class:`~ampere_qa.errors.BadInputError`, which the page turns into a ``gr.Error``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import BadInputError


def fill_defaults(fn: Callable[..., Any] | None, wanted: int, inputs: list[Any]) -> None:
    """Append to ``inputs`` the defaults of ``fn``'s parameters a caller left out.

    Gradio wants one value per input and fails with a bare ValueError (a traceback in the log,
    ``{"error": null}`` for the caller) when a REST call such as ``{"data": ["question"]}``
    leaves ``k`` out. A parameter with a default may be left out, as in a Python call (the
    Python client does it from /info); a missing required one is a clear error.
    """
    if fn is None or len(inputs) >= wanted:
        return
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != wanted:  # not one parameter per input: leave it to Gradio
        return
    for param in params[len(inputs):]:
        if param.default is inspect.Parameter.empty:
            raise BadInputError(f"the {param.name} is missing")
        inputs.append(param.default)


def carries_file(value: Any) -> bool:
    """Whether ``value`` holds something Gradio takes for a file reference (a dict with a
    ``path`` and a ``meta``), at any depth."""
    stack = [value]
    while stack:  # not recursive: a 1 MiB body can nest deeper than Python's stack
        item = stack.pop()
        if isinstance(item, dict):
            if "path" in item and "meta" in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def check_inputs(fn: Callable[..., Any] | None, wanted: int, inputs: list[Any]) -> None:
    """Refuse any file reference (Gradio would copy a referenced file into its cache before the
    function could refuse it), then fill in the defaults a caller left out, in place."""
    if carries_file(inputs):
        raise BadInputError("files are not accepted")
    fill_defaults(fn, wanted, inputs)
