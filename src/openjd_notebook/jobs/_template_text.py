"""Template text: parse YAML or JSON, decode with openjd-model, and locate every error in the text.

Syntax errors keep the parser's line and column. A model error names a field path
(``steps -> step[0] -> script``); it is walked through the composed YAML nodes to give the field
path as the document spells it and the line it starts on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from openjd.model import (
    DecodeValidationError,
    EnvironmentTemplate,
    JobTemplate,
    decode_environment_template,
    decode_job_template,
)
from openjd.model.v2023_09 import ExtensionName

from .errors import TemplateError, TemplateProblem

__all__ = [
    "PathElement",
    "TextFormat",
    "decode_located",
    "format_of",
    "model_error",
    "parse_text",
    "problem_at",
    "yaml_dump",
]

TextFormat = Literal["yaml", "json"]
PathElement = str | int

_ALL_EXTENSIONS = tuple(name.value for name in ExtensionName)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ERROR_COUNT_LINE = re.compile(r"^\d+ validation errors? for \w+$")
_ROOT_ERROR_LINE = re.compile(r"^\w+: (?P<message>.*)$")
_PATH_PART = re.compile(r"^(?P<name>.*?)(?P<indices>(?:\[\d+\])*)$")


# ---- reading and writing text --------------------------------------------------------------


def format_of(path: Path) -> TextFormat:
    return "json" if path.suffix.lower() == ".json" else "yaml"


def yaml_dump(document: Any) -> str:
    try:
        return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    except yaml.YAMLError as exc:
        problem = TemplateProblem(f"The document holds a value YAML cannot represent: {exc}")
        raise TemplateError([problem]) from exc


def parse_text(text: str, text_format: TextFormat, source: Path | None) -> Any:
    try:
        if text_format == "json":
            return json.loads(text)
        return yaml.load(text, Loader=_YAML_LOADER)
    except json.JSONDecodeError as exc:
        problem = TemplateProblem(f"JSON syntax error: {exc.msg}", None, exc.lineno, exc.colno)
        raise TemplateError([problem], source) from exc
    except yaml.YAMLError as exc:
        raise TemplateError([_yaml_problem(exc)], source) from exc


def _yaml_problem(exc: yaml.YAMLError) -> TemplateProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    message = "; ".join(str(part) for part in parts if part) or str(exc)
    if mark is None:
        return TemplateProblem(f"YAML syntax error: {message}")
    return TemplateProblem(f"YAML syntax error: {message}", None, mark.line + 1, mark.column + 1)


# ---- decoding ------------------------------------------------------------------------------


def decode_located(
    document: Any, text: str, source: Path | None, *, with_lines: bool
) -> JobTemplate | EnvironmentTemplate:
    """The decoded template; a model error becomes a ``TemplateError`` located in ``text``."""
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        problem = TemplateProblem(
            f"A template must be a mapping of keys to values; this is {kind}."
        )
        raise TemplateError([problem], source)
    try:
        return _decode(document)
    except DecodeValidationError as exc:
        raise model_error(str(exc), text, source, with_lines) from exc


def _decode(document: dict[str, Any]) -> JobTemplate | EnvironmentTemplate:
    version = document.get("specificationVersion")
    if isinstance(version, str) and version.startswith("environment-"):
        return decode_environment_template(template=document, supported_extensions=_ALL_EXTENSIONS)
    return decode_job_template(template=document, supported_extensions=_ALL_EXTENSIONS)


# ---- locating model errors -----------------------------------------------------------------


def model_error(
    message: str, text: str, source: Path | None, with_lines: bool, *, lead: str = ""
) -> TemplateError:
    """openjd-model's error ``message`` as one located problem per error it reports."""
    root = _compose(text)
    problems = [
        _located(root, _path_elements(path), lead + said, with_lines)
        if path is not None
        else TemplateProblem(lead + said)
        for path, said in _split_model_message(message)
    ]
    # Document order reads best; the model reports in its own validation order.
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return TemplateError(problems, source)


def problem_at(
    text: str, elements: Sequence[PathElement], message: str, with_lines: bool
) -> TemplateProblem:
    """A problem at the field ``elements`` names, with its line when ``with_lines``."""
    return _located(_compose(text), elements, message, with_lines)


def _located(
    root: Any, elements: Sequence[PathElement], message: str, with_lines: bool
) -> TemplateProblem:
    field_path, line = _walk(root, elements)
    shown = line + 1 if with_lines and line is not None else None
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
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
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
