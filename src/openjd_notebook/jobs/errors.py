"""Errors of the jobs layer, one tree::

    Exception
     +-- JobsError                              anything the jobs layer raises on purpose
          +-- TemplateError (ValueError)        a template cannot be read, decoded or instantiated
          +-- InputFileError (ValueError)       a file a user named is unsafe or unreadable as text
          +-- ParameterError (ValueError)       job parameter values do not fit the template
          +-- RunError (RuntimeError)           a run was used in a way its state does not allow
          +-- SelectionError (ValueError)       step=/tasks=/max_tasks do not fit the job
          +-- PathMappingError (ValueError)     path mapping rules that cannot be read
          +-- RunRecordError (ValueError)       a run record is missing or malformed
          +-- TaskNotFoundError (KeyError)      no task with that step and index in a result
          +-- LogNotAvailableError (LookupError) a task that has no log to read
          +-- JobFailedError (RuntimeError)     JobResult.raise_for_state() on a run that failed

The first five live here; the others live beside the concept they describe (``selection``,
``path_mapping``, ``records``, ``results``). openjd-model exceptions are translated at the
boundary with ``raise ... from``, so the model's own exception stays reachable as ``__cause__``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "ExpectedParameter",
    "InputFileError",
    "JobsError",
    "ParameterError",
    "RunError",
    "TemplateError",
    "TemplateProblem",
]


class JobsError(Exception):
    """Base class of every error the jobs layer raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback: the message is the whole story.
        first, *rest = str(self).splitlines() or [""]
        return [f"{type(self).__name__}: {first}", *rest]


@dataclass(frozen=True)
class TemplateProblem:
    """One thing wrong with a template, and where it is."""

    message: str
    field_path: str | None = None
    """Dotted path into the document, e.g. ``steps[0].script.actions.onRun.args[0]``."""
    line: int | None = None
    """1-based line in the template text; None for dict input or when unknown."""
    column: int | None = None
    """1-based column, when the position is that precise (YAML and JSON syntax errors)."""
    excerpt: str | None = None
    """The text of ``line`` and a caret under ``column``, shown under the message."""
    detail: TemplateProblem | None = None
    """A later place in the text that belongs to the same problem: where a YAML parser gave up
    after the construct (an unclosed ``[``, a quoted scalar) that starts at ``line``."""

    def location(self) -> str:
        """``line 12, column 3 (steps[0] -> script)``: the parts that are known."""
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        where = ", ".join(parts)
        if self.field_path:
            arrows = self.field_path.replace(".", " -> ")
            where = f"{where} ({arrows})" if where else arrows
        return where

    def describe(self, lead: str | None = None) -> str:
        """The location (after ``lead``, e.g. a file name), the message, excerpt and detail."""
        where = ", ".join(part for part in (lead, self.location()) if part)
        text = f"{where}: {self.message}" if where else self.message
        if self.excerpt is not None:
            text += "\n" + textwrap.indent(self.excerpt, "    ")
        if self.detail is not None:
            text += "\n" + self.detail.describe()
        return text


class TemplateError(JobsError, ValueError):
    """A template that cannot be read, decoded, validated or instantiated.

    ``line``, ``column`` and ``field_path`` locate the first problem; ``problems`` holds all of
    them when the model reported several at once.
    """

    def __init__(
        self, problems: Sequence[TemplateProblem] | str, source: Path | None = None
    ) -> None:
        if isinstance(problems, str):
            problems = [TemplateProblem(problems)]
        if not problems:
            raise ValueError("a TemplateError needs at least one problem")
        self.problems: tuple[TemplateProblem, ...] = tuple(problems)
        self.source = source
        super().__init__(self._render())

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the location when the error crosses a process boundary (workers, Dask).
        return (type(self), (self.problems, self.source))

    @property
    def line(self) -> int | None:
        return self.problems[0].line

    @property
    def column(self) -> int | None:
        return self.problems[0].column

    @property
    def field_path(self) -> str | None:
        return self.problems[0].field_path

    def _render(self) -> str:
        name = self.source.name if self.source is not None else None
        if len(self.problems) == 1:
            return self.problems[0].describe(name)
        lines = [f"{name or 'The template'} has {len(self.problems)} problems:"]
        lines.extend(textwrap.indent(p.describe(), "  ") for p in self.problems)
        return "\n".join(lines)


class InputFileError(JobsError, ValueError):
    """A file a user named that is not a regular file, is too large, or is not UTF-8 text."""

    def __init__(self, message: str, path: Path) -> None:
        self.path = path
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.path))


class ExpectedParameter(NamedTuple):
    """A job parameter as the template declares it, for error messages."""

    name: str
    type: str
    default: str | None
    """The default as text; None when the parameter is required."""

    def describe(self) -> str:
        if self.default is None:
            return f"{self.name} ({self.type}, required)"
        return f"{self.name} ({self.type}, default {self.default!r})"


class ParameterError(JobsError, ValueError):
    """Job parameter values that are unknown, missing or rejected by the template."""

    def __init__(
        self,
        problem: str,
        expected: Sequence[ExpectedParameter] = (),
        *,
        missing: Sequence[str] = (),
    ) -> None:
        self.problem = problem
        self.expected: tuple[ExpectedParameter, ...] = tuple(expected)
        self.missing: tuple[str, ...] = tuple(missing)
        """Required parameters that got no value, when that is the whole problem."""
        super().__init__(self._render())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_parameter_error, (self.problem, self.expected, self.missing))

    def _render(self) -> str:
        if not self.expected:
            return f"{self.problem} The template takes no job parameters."
        listing = "\n".join(f"  {p.describe()}" for p in self.expected)
        return f"{self.problem} The template expects:\n{listing}"


def _rebuild_parameter_error(
    problem: str, expected: Sequence[ExpectedParameter], missing: Sequence[str]
) -> ParameterError:
    return ParameterError(problem, expected, missing=missing)


class RunError(JobsError, RuntimeError):
    """A run was asked to do something its state does not allow (e.g. start twice)."""
