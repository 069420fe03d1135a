"""Template text: parse YAML or JSON, decode with openjd-model, and locate every error in the text.

Syntax errors keep the parser's marks: where the construct it was reading starts (an unclosed
``[``) and where it gave up, each with its line quoted under a caret. A model error names a field
path: the ``loc`` tuple of the pydantic error openjd-model was handling when it raised (its text,
``steps -> step[0] -> script``, only when that error is out of reach). The path is walked
through the composed YAML nodes to give the field path as the document spells it and the line
it starts on. An unknown field gets the closest
name the model allows at that place. Line numbers count from ``first_line``: 1 for a file, 2 for
the body of a ``%%openjd_template`` cell, whose first line is the magic.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from openjd.model import (
    DecodeValidationError,
    EnvironmentTemplate,
    JobTemplate,
    decode_environment_template,
    decode_job_template,
)
from openjd.model.v2023_09 import ExtensionName

from ._yaml_load import YAML_LOADER, AliasExpansionError, load_yaml
from .errors import TemplateError, TemplateProblem

__all__ = [
    "PathElement",
    "TextFormat",
    "decode_located",
    "format_of",
    "model_error",
    "model_failure",
    "parse_text",
    "problem_at",
    "yaml_dump",
]

TextFormat = Literal["yaml", "json"]
PathElement = str | int

_ALL_EXTENSIONS = tuple(name.value for name in ExtensionName)
_ERROR_COUNT_LINE = re.compile(r"^\d+ validation errors? for \w+$")
_ROOT_ERROR_LINE = re.compile(r"^\w+: (?P<message>.*)$")
_PATH_PART = re.compile(r"^(?P<name>.*?)(?P<indices>(?:\[\d+\])*)$")
_YAML_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_EXCERPT_WIDTH = 100
_REPARSE_LIMIT = 1024 * 1024
"""Text up to this many characters is parsed again by pure-Python PyYAML after a libyaml error,
for its fuller messages ("expected ',' or ']', but got ':'" instead of "did not find ...")."""
_EXTRA_FIELD = "Extra inputs are not permitted"


# ---- reading and writing text --------------------------------------------------------------


def format_of(path: Path) -> TextFormat:
    return "json" if path.suffix.lower() == ".json" else "yaml"


def yaml_dump(document: Any) -> str:
    try:
        return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    except yaml.YAMLError as exc:
        problem = TemplateProblem(f"The document holds a value YAML cannot represent: {exc}")
        raise TemplateError([problem]) from exc


def parse_text(
    text: str, text_format: TextFormat, source: Path | None, *, first_line: int = 1
) -> Any:
    """The parsed document; a syntax error is a ``TemplateError`` at its line and column."""
    try:
        if text_format == "json":
            return json.loads(text)
        return load_yaml(text)
    except json.JSONDecodeError as exc:
        line = exc.lineno + first_line - 1
        problem = TemplateProblem(f"JSON syntax error: {exc.msg}", None, line, exc.colno)
        raise TemplateError([problem], source) from exc
    except yaml.YAMLError as exc:
        raise TemplateError([_yaml_problem(_fuller(exc, text), text, first_line)], source) from exc
    except RecursionError as exc:
        message = f"The {text_format.upper()} text nests too deeply to read."
        raise TemplateError([TemplateProblem(message)], source) from exc


def _fuller(exc: yaml.YAMLError, text: str) -> yaml.YAMLError:
    """The pure-Python parser's error for the same text, when libyaml reported it."""
    from_libyaml = YAML_LOADER is not yaml.SafeLoader and not isinstance(exc, AliasExpansionError)
    if not from_libyaml or len(text) > _REPARSE_LIMIT:
        return exc
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as fuller:
        return fuller
    except RecursionError:
        pass
    return exc


def _yaml_problem(exc: yaml.YAMLError, text: str, first_line: int) -> TemplateProblem:
    """Both marks of a PyYAML error, in the order they come in the text."""
    heading = "YAML refused" if isinstance(exc, AliasExpansionError) else "YAML syntax error"
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + first_line
        return TemplateProblem(f"{heading}: {_reader_message(exc)}", None, line)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    problem, problem_mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem is None or problem_mark is None:  # one part only: say it at the mark it has
        said, mark = problem or context or exc, problem_mark or context_mark
        found = None if mark is None else _at_mark(str(said), mark, text, first_line)
        return _headed(found or TemplateProblem(str(said)), heading)
    found = _at_mark(str(problem), problem_mark, text, first_line)
    if context is None:
        return _headed(found, heading)
    if context_mark is None or _position(context_mark) >= _position(problem_mark):
        return _headed(found, f"{heading}: {context}")
    started = _at_mark(f"{context} started here", context_mark, text, first_line)
    return dataclasses.replace(_headed(started, heading), detail=found)


def _headed(problem: TemplateProblem, heading: str) -> TemplateProblem:
    return dataclasses.replace(problem, message=f"{heading}: {problem.message}")


def _position(mark: Any) -> tuple[int, int]:
    return mark.line, mark.column


def _reader_message(exc: yaml.reader.ReaderError) -> str:
    character = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
    return f"the character {character!r} is not allowed in YAML text ({exc.reason})"


def _at_mark(message: str, mark: Any, text: str, first_line: int) -> TemplateProblem:
    """A problem at a PyYAML mark, with the line it is on and a caret under its column."""
    lines = _YAML_LINE_BREAK.split(text)
    if text.endswith(("\n", "\r", "\x85", "\u2028", "\u2029")):
        lines.pop()  # the empty "line" after the last line break
    at_end = mark.line >= len(lines) or (
        mark.line == len(lines) - 1 and mark.column >= len(lines[-1])
    )
    excerpt = None if mark.line >= len(lines) else _excerpt(lines[mark.line], mark.column)
    said = f"{message} (at the end of the text)" if at_end else message
    return TemplateProblem(said, None, mark.line + first_line, mark.column + 1, excerpt)


def _excerpt(line: str, column: int) -> str:
    """``line`` (a window of it when long) and a caret under ``column``."""
    start = max(0, min(column - _EXCERPT_WIDTH // 2, len(line) - _EXCERPT_WIDTH))
    shown = line[start : start + _EXCERPT_WIDTH]
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + _EXCERPT_WIDTH < len(line) else ""
    # Tabs stay tabs under the text, so the caret lines up however wide a tab is shown.
    padding = "".join("\t" if c == "\t" else " " for c in prefix + line[start:column])
    return f"{prefix}{shown}{suffix}\n{padding}^"


# ---- decoding ------------------------------------------------------------------------------


def decode_located(
    document: Any, text: str, source: Path | None, *, first_line: int | None
) -> JobTemplate | EnvironmentTemplate:
    """The decoded template; a model error becomes a ``TemplateError`` located in ``text``.

    ``first_line`` is the number of the text's first line as the user sees it; None when the
    text is not what the user wrote (a dict dumped to YAML), so lines would mean nothing.
    """
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        problem = TemplateProblem(
            f"A template must be a mapping of keys to values; this is {kind}."
        )
        raise TemplateError([problem], source)
    try:
        return _decode(document)
    except DecodeValidationError as exc:
        raise model_error(exc, text, source, first_line) from exc
    except IndexError as exc:
        cycle = step_cycle(document)
        if cycle is None:
            raise model_failure(exc, source) from exc
        index, names = cycle
        message = f"Step dependencies form a cycle: {' -> '.join(names)}"
        problem = problem_at(text, ["steps", index], message, first_line)
        raise TemplateError([problem], source) from exc


def _decode(document: dict[str, Any]) -> JobTemplate | EnvironmentTemplate:
    version = document.get("specificationVersion")
    if isinstance(version, str) and version.startswith("environment-"):
        return decode_environment_template(template=document, supported_extensions=_ALL_EXTENSIONS)
    return decode_job_template(template=document, supported_extensions=_ALL_EXTENSIONS)


def step_cycle(document: Mapping[str, Any]) -> tuple[int, list[str]] | None:
    """The first step (by index) of a dependency cycle, and the cycle's names from it.

    The names read in dependency order: ``S -> T -> S`` says S depends on T and T on S.
    """
    steps = document.get("steps")
    if not isinstance(steps, list):
        return None
    first_index: dict[str, int] = {}
    graph: dict[str, set[str]] = {}
    for index, step in enumerate(steps):
        if isinstance(step, Mapping) and isinstance(step.get("name"), str):
            first_index.setdefault(step["name"], index)
            graph.setdefault(step["name"], set()).update(_depends_on(step))
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        # graphlib lists each step before the steps that depend on it: reversed, a step comes
        # before the step it depends on.
        names = list(reversed(exc.args[1][1:]))
        start = min(range(len(names)), key=lambda i: first_index.get(names[i], len(steps)))
        names = names[start:] + names[:start]
        return first_index[names[0]], [*names, names[0]]
    return None


def _depends_on(step: Mapping[str, Any]) -> set[str]:
    dependencies = step.get("dependencies")
    if not isinstance(dependencies, list):
        return set()
    return {
        d["dependsOn"]
        for d in dependencies
        if isinstance(d, Mapping) and isinstance(d.get("dependsOn"), str)
    }


def model_failure(exc: IndexError, source: Path | None, *, lead: str = "") -> TemplateError:
    """A ``TemplateError`` for the ``IndexError`` openjd-model 0.14 raises instead of a message.

    The model cannot word an error about the template as a whole (a validation error with no
    field location); pydantic's own error, which it was handling, still holds the text.
    """
    context = exc.__context__
    if isinstance(context, pydantic.ValidationError) and context.errors():
        messages = [_pydantic_text(error) for error in context.errors()]
    else:
        messages = [f"openjd-model failed without saying why (IndexError: {exc})."]
    return TemplateError([TemplateProblem(lead + message) for message in messages], source)


def _pydantic_text(error: Any) -> str:
    cause = error.get("ctx", {}).get("error") if error["type"] == "value_error" else None
    return str(cause if cause is not None else error["msg"])


# ---- locating model errors -----------------------------------------------------------------


def model_error(
    error: BaseException | str,
    text: str,
    source: Path | None,
    first_line: int | None,
    *,
    lead: str = "",
) -> TemplateError:
    """openjd-model's error (or its message) as one located problem per error it reports."""
    from ._model_fields import unknown_field_hint  # only errors need it (and difflib)

    root = _compose(text)
    model, reported = _reported_errors(error)
    problems: list[TemplateProblem] = []
    for elements, said in reported:
        if elements is None:
            problems.append(TemplateProblem(lead + said))
            continue
        said = unknown_field_hint(model, elements) if said == _EXTRA_FIELD else said
        problems.append(_located(root, elements, lead + said, first_line))
    # Document order reads best; the model reports in its own validation order.
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return TemplateError(problems, source)


ReportedError = tuple[list[PathElement] | None, str]
"""Where in the document (None: the template as a whole) and what."""


def _reported_errors(
    error: BaseException | str,
) -> tuple[type[pydantic.BaseModel] | None, list[ReportedError]]:
    """The model the errors are about and each error, from pydantic's own errors when
    openjd-model's exception carries them, else parsed from its message."""
    from ._model_fields import model_named

    validation = None if isinstance(error, str) else _pydantic_error(error)
    if validation is None:
        message = str(error)
        parsed = _split_model_message(message)
        found = [(None if path is None else _path_elements(path), said) for path, said in parsed]
        return model_named(message.partition("\n")[0]), found
    details = validation.errors()
    # The heading openjd-model writes names the model, as pydantic's title does.
    model = model_named(f"{len(details)} validation errors for {validation.title}")
    return model, [(_loc_elements(model, d["loc"]), _pydantic_text(d)) for d in details]


def _pydantic_error(error: BaseException) -> pydantic.ValidationError | None:
    """The pydantic error openjd-model was handling when it raised ``error``, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, pydantic.ValidationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _loc_elements(
    model: type[pydantic.BaseModel] | None, loc: tuple[str | int, ...]
) -> list[PathElement] | None:
    """A pydantic ``loc`` as a field path, without the union member names pydantic puts in it
    (the names of model classes, which openjd-model's message leaves out too)."""
    if loc and loc[-1] == "__root__":
        loc = loc[:-1]
    if not loc:
        return None
    classes = vars(sys.modules[model.__module__]) if model is not None else {}
    return [item for item in loc if isinstance(item, int) or item not in classes]


def problem_at(
    text: str, elements: Sequence[PathElement], message: str, first_line: int | None
) -> TemplateProblem:
    """A problem at the field ``elements`` names, with its line unless ``first_line`` is None."""
    return _located(_compose(text), elements, message, first_line)


def _located(
    root: Any, elements: Sequence[PathElement], message: str, first_line: int | None
) -> TemplateProblem:
    field_path, line = _walk(root, elements)
    shown = line + first_line if first_line is not None and line is not None else None
    return TemplateProblem(message, field_path or None, shown)


def _split_model_message(message: str) -> list[tuple[str | None, str]]:
    """openjd-model's ``N validation errors`` text as (``a -> b[0]`` path or None, message)."""
    lines = message.splitlines()
    if not lines or not _ERROR_COUNT_LINE.match(lines[0]):
        return [(None, message)]
    found: list[tuple[str | None, str]] = []
    body = lines[1:]
    for index, line in enumerate(body):
        following = body[index + 1] if index + 1 < len(body) else ""
        root = _ROOT_ERROR_LINE.match(line)
        if line.endswith(":") and following.startswith("\t"):
            found.append((line[:-1], ""))
        elif found and (line.startswith("\t") or root is None):
            path, text = found[-1]
            found[-1] = (path, f"{text}\n{line.strip()}".strip())
        else:
            found.append((None, root.group("message") if root else line))
    return found


def _path_elements(arrow_path: str) -> list[PathElement]:
    elements: list[PathElement] = []
    for part in arrow_path.split(" -> "):
        match = _PATH_PART.match(part)
        name, indices = (match.group("name"), match.group("indices")) if match else (part, "")
        if name:
            elements.append(name)
        elements.extend(int(i) for i in re.findall(r"\[(\d+)\]", indices))
    return elements


def _compose(text: str) -> Any:
    try:
        return yaml.compose(text, Loader=YAML_LOADER)
    except (yaml.YAMLError, RecursionError):
        return None  # JSON that PyYAML cannot read (tabs); errors keep their path, lose the line


def _walk(root: Any, elements: Sequence[PathElement]) -> tuple[str, int | None]:
    """The dotted field path as the document spells it, and the 0-based line it starts on."""
    node, line, labels = root, None, []
    for index, element in enumerate(elements):
        child, mark = _child(node, element)
        is_last = index == len(elements) - 1
        if mark is None and isinstance(node, yaml.MappingNode) and not is_last:
            continue  # a union member name the model puts in its paths; not a document key
        labels.append(_label(element, mark))
        node = child
        if mark is not None:
            line = mark.start_mark.line
    return "".join(labels).lstrip("."), line


def _child(node: Any, element: PathElement) -> tuple[Any, Any]:
    """The node under ``element`` and the node whose line locates it; (None, None) if absent."""
    if isinstance(element, int):
        if isinstance(node, yaml.SequenceNode) and element < len(node.value):
            return node.value[element], node.value[element]
        return None, None
    if not isinstance(node, yaml.MappingNode):
        return None, None
    # The model names some list fields in the singular in its paths (``step[0]`` for ``steps``).
    for wanted in (element, f"{element}s"):
        for key, value in node.value:
            if key.value == wanted:
                return value, key
    return None, None


def _label(element: PathElement, mark: Any) -> str:
    if isinstance(element, int):
        return f"[{element}]"
    return f".{mark.value if mark is not None else element}"
