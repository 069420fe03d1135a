"""When creating a job fails in a field made from a job parameter, the parameter is to blame.

``-p Frames=abc`` for ``range: "{{Param.Frames}}"`` makes openjd-model report the task
parameter's range at its template line. The user typed the value, not the range: the error
names the parameter, the value and what the field expects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ExpectedParameter, ParameterError, TemplateError

__all__ = ["blame_parameter"]

_REFERENCE = re.compile(r"\{\{\s*(?:Raw)?Param\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_EXPECTS = {
    "range": (
        "an integer range such as '1-10', '1-10:2' (every 2nd), '10-1:-1' (descending) "
        "or '1,3,5-7', or a list"
    ),
    "chunks": "a positive integer",
}


def blame_parameter(
    error: TemplateError,
    template: Any,
    values: Mapping[str, Any],
    expected: Sequence[ExpectedParameter],
) -> ParameterError | None:
    """A ``ParameterError`` for the first problem whose field is a job parameter reference,
    or None when the template itself is at fault."""
    for problem in error.problems:
        if problem.field_path is None:
            continue
        text = _field_text(template, problem.field_path)
        names = _REFERENCE.findall(text) if text else []
        given = [name for name in names if name in values]
        if not given:
            continue
        name = given[0]
        field = problem.field_path.rsplit(".", 1)[-1]
        expects = _EXPECTS.get(re.sub(r"\[\d+\]$", "", field))
        wanted = f" It must make {expects}." if expects else ""
        reason = problem.message.removeprefix("Creating the job failed: ")
        where = f"line {problem.line}: " if problem.line is not None else ""
        return ParameterError(
            f"Job parameter {name} = {_shown(values[name])} does not fit where the template uses "
            f"it ({where}{problem.field_path} = {text!r}): {reason}.{wanted}",
            expected,
        )
    return None


def _shown(value: Any) -> str:
    return repr(getattr(value, "value", value))


def _field_text(template: Any, field_path: str) -> str | None:
    """The template's text at a dotted field path (``steps[0].parameterSpace...range``)."""
    node = template
    for name, index in _FIELD_PART.findall(field_path):
        try:
            node = node[int(index)] if index else _child(node, name)
        except (AttributeError, IndexError, KeyError, TypeError):
            return None
    return None if node is None else str(node)


def _child(node: Any, name: str) -> Any:
    if isinstance(node, Mapping):
        return node[name]
    return getattr(node, name)
