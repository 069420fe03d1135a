"""Task and environment outcomes as JSON objects and back: the one converter.

run.json, tasks.jsonl, ``openjd-notebook run --output json`` and the events a Dask node sends
all write a row with :func:`task_json` / :func:`environment_json` and read it back with
:func:`task_from_json` / :func:`environment_from_json`, so they cannot disagree.

A row holds every field of the outcome, in field order, with datetimes as ISO text, plus the
derived ``duration_s`` right after ``ended`` (ignored on the way back). Reading checks the JSON
type of every field: a record is a file anyone may edit, and a dataclass takes whatever it is
given. The small checked-reading helpers below are shared with the rest of a record's reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from .outcomes import ENVIRONMENT_SCOPES, TASK_STATES, EnvironmentOutcome, TaskOutcome

__all__ = [
    "INT",
    "OPTIONAL_INT",
    "OPTIONAL_NUMBER",
    "OPTIONAL_TEXT",
    "TEXT",
    "as_list",
    "as_mapping",
    "as_optional_text",
    "as_text",
    "environment_from_json",
    "environment_json",
    "is_kind",
    "short",
    "task_from_json",
    "task_json",
]

# What a field may hold in JSON.
TEXT, OPTIONAL_TEXT, INT, OPTIONAL_INT, OPTIONAL_NUMBER = range(5)
_TASK_FIELD_KINDS = {
    "step": TEXT,
    "task": INT,
    "state": TEXT,
    "exit_code": OPTIONAL_INT,
    "progress": OPTIONAL_NUMBER,
    "status_message": OPTIONAL_TEXT,
    "fail_message": OPTIONAL_TEXT,
    "worker": OPTIONAL_TEXT,
    "log_path": OPTIONAL_TEXT,
    "attempts": INT,
}
_ENVIRONMENT_FIELD_KINDS = {
    "name": TEXT,
    "scope": TEXT,
    "step": OPTIONAL_TEXT,
    "worker": TEXT,
    "state": TEXT,
    "log_path": OPTIONAL_TEXT,
}
_TIMES = ("started", "ended")


# ---- writing -------------------------------------------------------------------------------


def task_json(outcome: TaskOutcome) -> dict[str, Any]:
    """One task's row: its fields in order, ``duration_s`` after ``ended``."""
    return _row(outcome)


def environment_json(outcome: EnvironmentOutcome) -> dict[str, Any]:
    """One environment's row: its fields in order, ``duration_s`` after ``ended``."""
    return _row(outcome)


def _row(outcome: TaskOutcome | EnvironmentOutcome) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for field in fields(outcome):
        value = getattr(outcome, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Mapping):
            value = dict(value)
        body[field.name] = value
        if field.name == "ended":
            body["duration_s"] = outcome.duration_s
    return body


# ---- reading -------------------------------------------------------------------------------


def task_from_json(body: Any, parameter_types: Mapping[str, str]) -> TaskOutcome:
    """The task a row describes; ``parameter_types`` (name to OpenJD type) restores typed values.

    Raises ``TypeError`` or ``ValueError`` naming the field that is wrong.
    """
    values = _known_fields(TaskOutcome, as_mapping(body, "a task row"))
    _check_kinds(values, _TASK_FIELD_KINDS, "a task row")
    if values.get("state", "not_run") not in TASK_STATES:
        raise ValueError(f"a task row has the unknown state {values['state']!r}")
    parameters = as_mapping(values.get("parameters") or {}, "a task's parameters")
    values["parameters"] = {
        str(name): _typed_parameter(value, parameter_types.get(name))
        for name, value in parameters.items()
    }
    return TaskOutcome(**values)


def environment_from_json(body: Any) -> EnvironmentOutcome:
    """The environment outcome a row describes; ``TypeError``/``ValueError`` when malformed."""
    values = _known_fields(EnvironmentOutcome, as_mapping(body, "an environment row"))
    _check_kinds(values, _ENVIRONMENT_FIELD_KINDS, "an environment row")
    if values.get("scope") not in ENVIRONMENT_SCOPES:
        raise ValueError(f"an environment row has the unknown scope {values.get('scope')!r}")
    if values.get("state") not in TASK_STATES:
        raise ValueError(f"an environment row has the unknown state {values.get('state')!r}")
    return EnvironmentOutcome(**values)


def _known_fields(cls: type[Any], body: Mapping[str, Any]) -> dict[str, Any]:
    # Fields added by a later format are ignored; missing ones take the dataclass default.
    values = {f.name: body[f.name] for f in fields(cls) if f.name in body}
    for name in _TIMES:
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(as_text(values[name], name))
    return values


def _check_kinds(values: Mapping[str, Any], kinds: Mapping[str, int], what: str) -> None:
    for name, kind in kinds.items():
        if name in values and not is_kind(values[name], kind):
            raise ValueError(f"{what} has {name} = {short(values[name])}")


def _typed_parameter(value: Any, kind: str | None) -> Any:
    # JSON writes 2.0 as 2.0 but a FLOAT parameter given as 2 comes back as int; restore it.
    if value is not None and not isinstance(value, (str, int, float)):
        raise TypeError(f"a task parameter is {short(value)}, not a value")
    if value is None or kind is None:
        return value
    if kind == "INT":
        return int(value)
    if kind == "FLOAT":
        return float(value)
    return str(value)


# ---- checked reading of JSON values --------------------------------------------------------


def is_kind(value: Any, kind: int) -> bool:
    """Whether ``value`` is what ``kind`` (``TEXT``, ``OPTIONAL_INT``, ...) allows."""
    if value is None:
        return kind in (OPTIONAL_TEXT, OPTIONAL_INT, OPTIONAL_NUMBER)
    if kind in (TEXT, OPTIONAL_TEXT):
        return isinstance(value, str)
    if kind in (INT, OPTIONAL_INT):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def short(value: Any) -> str:
    """A value as an error message shows it: short, never the whole of a large object."""
    text = repr(value) if isinstance(value, (str, int, float, bool)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} is {short(value)}, not an object")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    """``value`` when it is a list; None reads as an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{what} is {short(value)}, not a list")
    return value


def as_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is {short(value)}, not text")
    return value


def as_optional_text(value: Any, what: str) -> str | None:
    return None if value is None else as_text(value, what)
