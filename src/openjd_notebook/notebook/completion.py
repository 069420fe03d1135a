"""Tab completion on a ``%openjd_run`` line, as a pure function of the text before the cursor.

What completes where: the template (``Template`` variables in the namespace, template files
and bundle directories), option names, step names after ``--step``, the template's parameter
names after ``-p``, dict variables after ``--params`` and ``--path-mapping``, environment
templates after ``--env``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..jobs import Template

__all__ = ["complete_run_line", "last_word"]

_MAGIC = re.compile(r"%openjd_run(?:\s+(?P<rest>.*))?$", re.DOTALL)
_TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json")
_BUNDLE_FILE = "template.yaml"


def complete_run_line(
    text: str,
    namespace: Mapping[str, Any],
    value_options: Collection[str],
    flags: Sequence[str],
    cwd: Path | None = None,
) -> list[str]:
    """Completions for the word at the end of ``text`` (the line up to the cursor); each one
    replaces that whole word."""
    match = _MAGIC.search(text)
    if match is None:
        return []
    words = _split(match.group("rest") or "")
    current = words[-1] if words else ""
    before = words[:-1]
    previous = before[-1] if before else None
    here = cwd or Path.cwd()
    if previous is not None and previous in value_options:
        return _option_value(previous, current, before, namespace, value_options, here)
    if current.startswith("-"):
        return [flag for flag in flags if flag.startswith(current)]
    if _template_word(before, value_options) is None:
        return _templates(current, namespace, here)
    return [flag for flag in flags if flag.startswith("--")] if not current else []


def last_word(text: str) -> str:
    """The word the completions of ``complete_run_line`` replace: the last one of ``text``."""
    match = _MAGIC.search(text)
    words = _split(match.group("rest") or "") if match else []
    return words[-1] if words else ""


def _split(rest: str) -> list[str]:
    """The words of the line, the last one "" when the line ends in a space."""
    try:
        words = shlex.split(rest)
    except ValueError:  # an open quote: complete inside it
        words = rest.split()
    if not rest or rest[-1].isspace():
        words.append("")
    return words


def _template_word(words: Sequence[str], value_options: Collection[str]) -> str | None:
    """The first word that is neither an option nor an option's value: the template."""
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in value_options
        else:
            return word
    return None


def _option_value(
    option: str,
    current: str,
    before: Sequence[str],
    namespace: Mapping[str, Any],
    value_options: Collection[str],
    here: Path,
) -> list[str]:
    if option == "--step":
        template = _template(_template_word(before[:-1], value_options), namespace, here)
        return _starting(template.steps if template else [], current)
    if option in ("-p", "--param"):
        if "=" in current:
            return []
        template = _template(_template_word(before[:-1], value_options), namespace, here)
        return [f"{name}=" for name in _starting(_parameter_names(template), current)]
    if option == "--params":
        return _starting(_variables(namespace, dict), current)
    if option == "--path-mapping":
        files = _files(current, here, (".json", ".yaml", ".yml"))
        return _starting(_variables(namespace, dict), current) + files
    if option == "--env":
        environments = [
            name
            for name, value in namespace.items()
            if isinstance(value, Template) and value.kind == "environment"
        ]
        return _starting(sorted(environments), current) + _files(current, here, _TEMPLATE_SUFFIXES)
    return []


def _templates(current: str, namespace: Mapping[str, Any], here: Path) -> list[str]:
    jobs = [
        name
        for name, value in namespace.items()
        if isinstance(value, Template) and value.kind == "job" and not name.startswith("_")
    ]
    return _starting(sorted(jobs), current) + _files(current, here, _TEMPLATE_SUFFIXES, True)


def _template(word: str | None, namespace: Mapping[str, Any], here: Path) -> Template | None:
    if word is None:
        value = namespace.get("job_template")
        return value if isinstance(value, Template) else None
    value = namespace.get(word)
    if isinstance(value, Template):
        return value
    path = Path(os.fspath(value) if isinstance(value, (str, os.PathLike)) else word).expanduser()
    path = path if path.is_absolute() else here / path
    with contextlib.suppress(Exception):  # an unreadable or invalid file completes nothing
        if path.exists():
            return Template.load(path)
    return None


def _parameter_names(template: Template | None) -> list[str]:
    if template is None:
        return []
    definitions = getattr(template.model, "parameterDefinitions", None) or ()
    return [str(definition.name) for definition in definitions]


def _variables(namespace: Mapping[str, Any], kind: type) -> list[str]:
    return sorted(
        name for name, value in namespace.items() if isinstance(value, kind) and _public(name)
    )


def _public(name: str) -> bool:
    return not name.startswith("_") and name not in ("In", "Out")


def _files(current: str, here: Path, suffixes: tuple[str, ...], bundles: bool = False) -> list[str]:
    """Files with these suffixes and directories (bundles, or folders to go into) whose
    path starts with ``current``, relative as typed."""
    folder, _, prefix = current.rpartition("/")
    directory = Path(folder).expanduser() if folder else Path()
    directory = directory if directory.is_absolute() else here / directory
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return []
    lead = f"{folder}/" if folder else ""
    found = []
    for entry in entries:
        if not entry.name.startswith(prefix) or entry.name.startswith("."):
            continue
        if entry.is_dir():
            is_bundle = bundles and (entry / _BUNDLE_FILE).is_file()
            found.append(f"{lead}{entry.name}" + ("" if is_bundle else "/"))
        elif entry.suffix.lower() in suffixes:
            found.append(f"{lead}{entry.name}")
    return found


def _starting(names: Iterable[str], prefix: str) -> list[str]:
    return [name for name in names if name.startswith(prefix)]
