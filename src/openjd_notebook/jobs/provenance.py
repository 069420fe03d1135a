"""What makes a run repeatable beyond its template: the environment templates it ran with, the
path mapping rules, and the Python packages its actions used when they run this interpreter.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

from ..sessions import PathMappingRule

__all__ = [
    "action_commands",
    "environment_records",
    "path_mapping_records",
    "python_packages_if_used",
]

_PARAMETER_REFERENCE = re.compile(r"\{\{\s*(?:Raw)?Param\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def environment_records(environments: Sequence[Any]) -> list[dict[str, Any]]:
    """Name, digest, source and text of each environment template, in the order entered."""
    records = []
    for template in environments:
        text = str(template.text)
        records.append(
            {
                "name": str(template.name),
                "digest": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "source": str(template.source) if template.source is not None else None,
                "text": text,
            }
        )
    return records


def path_mapping_records(rules: Iterable[PathMappingRule]) -> list[dict[str, str]]:
    return [rule.to_dict() for rule in rules]


def python_packages_if_used(
    commands: Iterable[str], parameters: Mapping[str, str]
) -> dict[str, str] | None:
    """The installed distributions (name -> version) when an action runs this very Python
    (``sys.executable``, or ``python`` found on PATH as it), else None.

    A cheap ``importlib.metadata`` listing, not a ``pip freeze`` subprocess.
    """
    for command in commands:
        text = _PARAMETER_REFERENCE.sub(lambda m: parameters.get(m.group(1), m.group(0)), command)
        if "{{" in text:
            continue  # resolved only at run time; not knowable here
        found = shutil.which(text)
        if found is not None and _is_this_interpreter(found):
            return _distributions()
    return None


def action_commands(job: Any) -> list[str]:
    """The command of every action of the job (tasks' and environments' own)."""
    commands = []
    for environment in [*(job.jobEnvironments or [])]:
        commands += _environment_commands(environment)
    for step in job.steps:
        for environment in step.stepEnvironments or []:
            commands += _environment_commands(environment)
        commands.append(str(step.script.actions.onRun.command))
    return commands


def _environment_commands(environment: Any) -> list[str]:
    script = environment.script
    if script is None:
        return []
    actions = (getattr(script.actions, name, None) for name in ("onEnter", "onExit"))
    return [str(action.command) for action in actions if action is not None]


def _is_this_interpreter(path: str) -> bool:
    """The same file as ``sys.executable``, or a link beside it to the same binary (a venv's
    ``python3`` and ``python``); a venv's base interpreter has other packages, so it is not."""
    found, ours = os.path.abspath(path), os.path.abspath(sys.executable)
    if found == ours:
        return True
    same_folder = os.path.dirname(found) == os.path.dirname(ours)
    return same_folder and os.path.realpath(found) == os.path.realpath(ours)


def _distributions() -> dict[str, str]:
    found: dict[str, str] = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found.setdefault(str(name), str(distribution.version))
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))
