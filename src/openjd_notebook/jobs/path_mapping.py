"""Path mapping rules given as objects, dicts, a ``pathmapping-1.0`` document, or a file.

A rules file is read with ``input_files.read_document``: a regular file only, at most
``MAX_INPUT_BYTES``, UTF-8, and YAML aliases within their expansion budget.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..sessions import PathMappingRule
from .errors import InputFileError, JobsError
from .input_files import read_document

__all__ = ["PathMappingError", "PathMappingInput", "load_path_mapping_rules"]

PathMappingInput = (
    Sequence[PathMappingRule | Mapping[str, Any]]
    | Mapping[str, Any]
    | str
    | os.PathLike[str]
    | None
)


class PathMappingError(JobsError, ValueError):
    """Path mapping rules that cannot be read."""


def load_path_mapping_rules(value: PathMappingInput) -> list[PathMappingRule]:
    """Rules from any accepted form; raises PathMappingError saying what is wrong."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return _from_document(_read(value), str(value))
    if isinstance(value, Mapping):
        return _from_document(value, "path_mapping_rules")
    return [_rule(rule, f"path_mapping_rules[{index}]") for index, rule in enumerate(value)]


def _read(value: str | os.PathLike[str]) -> Any:
    text = str(value)
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)  # inline JSON, as `openjd run` accepts
        except json.JSONDecodeError as error:
            raise PathMappingError(f"Path mapping rules are not valid JSON: {error}") from None
    path = Path(text.removeprefix("file://"))
    try:
        return read_document(path, what="path mapping rules file")
    except OSError as error:
        raise PathMappingError(f"Cannot read path mapping rules from {path}: {error}") from None
    except InputFileError as error:
        raise PathMappingError(str(error)) from None


def _from_document(document: Any, where: str) -> list[PathMappingRule]:
    if isinstance(document, list):
        return [_rule(rule, f"{where}[{index}]") for index, rule in enumerate(document)]
    if not isinstance(document, Mapping):
        raise PathMappingError(f"{where}: expected a pathmapping-1.0 object or a list of rules.")
    version = document.get("version")
    if version is not None and version != "pathmapping-1.0":
        raise PathMappingError(
            f"{where}: unsupported version {version!r}; expected 'pathmapping-1.0'."
        )
    rules = document.get("path_mapping_rules")
    if not isinstance(rules, list):
        raise PathMappingError(f"{where}: 'path_mapping_rules' must be a list of rules.")
    return [_rule(rule, f"{where}.path_mapping_rules[{index}]") for index, rule in enumerate(rules)]


def _rule(rule: PathMappingRule | Mapping[str, Any], where: str) -> PathMappingRule:
    if isinstance(rule, PathMappingRule):
        return rule
    if not isinstance(rule, Mapping):
        raise PathMappingError(f"{where}: a rule must be a PathMappingRule or a dict.")
    destination = rule.get("destination_path")
    if isinstance(destination, str) and not destination.strip():
        # PathMappingRule reads "" as "." (the session's working directory), as openjd does.
        raise PathMappingError(
            f"{where}: destination_path is empty; the rule for source_path "
            f"{rule.get('source_path')!r} must name the directory those paths map to here."
        )
    try:
        return PathMappingRule.from_dict(dict(rule))
    except ValueError as error:
        raise PathMappingError(f"{where}: {error}") from None
