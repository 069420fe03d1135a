"""Node events as plain values (dicts, lists, strings, numbers) and back.

Events that travel between processes through a channel that only carries msgpack-able data
(a Dask topic) are encoded here: each event is a dict naming its type, datetimes are ISO
strings, and an environment outcome is the row ``outcome_json`` makes (the one run.json and the
CLI's JSON hold too). Decoding rebuilds the same frozen values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from .events import (
    EnvironmentEntered,
    EnvironmentExited,
    LogLines,
    TaskProgress,
    TaskStarted,
    TaskStatus,
)
from .outcome_json import environment_from_json, environment_json
from .outcomes import EnvironmentOutcome

__all__ = ["NODE_EVENT_TYPES", "NodeEvent", "decode_event", "encode_event"]

NodeEvent = (
    TaskStarted | TaskProgress | TaskStatus | EnvironmentEntered | EnvironmentExited | LogLines
)
NODE_EVENT_TYPES = (
    TaskStarted,
    TaskProgress,
    TaskStatus,
    EnvironmentEntered,
    EnvironmentExited,
    LogLines,
)
_BY_NAME = {kind.__name__: kind for kind in NODE_EVENT_TYPES}
_TYPE = "type"
_DATETIME = "datetime"
_ENVIRONMENT_OUTCOME = EnvironmentOutcome.__name__


def encode_event(event: NodeEvent) -> dict[str, Any]:
    """A dict of plain values for one of the events a node publishes."""
    return _encode_dataclass(event)


def decode_event(body: Mapping[str, Any]) -> NodeEvent:
    """The event ``encode_event`` encoded; ``ValueError`` for anything else."""
    value = _decode(body)
    if not isinstance(value, NODE_EVENT_TYPES):
        raise ValueError(f"not an encoded node event: {body.get(_TYPE)!r}")
    return value


def _encode_dataclass(value: Any) -> dict[str, Any]:
    body = {_TYPE: type(value).__name__}
    for field in fields(value):
        body[field.name] = _encode(getattr(value, field.name))
    return body


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_TYPE: _DATETIME, "iso": value.isoformat()}
    if isinstance(value, EnvironmentOutcome):
        return {_TYPE: _ENVIRONMENT_OUTCOME, **environment_json(value)}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {"type": "mapping", "items": {str(k): _encode(v) for k, v in value.items()}}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)
    if not isinstance(value, Mapping):
        return value
    kind = value.get(_TYPE)
    if kind == _DATETIME:
        return datetime.fromisoformat(value["iso"])
    if kind == "mapping":
        return {name: _decode(item) for name, item in value["items"].items()}
    if kind == _ENVIRONMENT_OUTCOME:
        return environment_from_json(value)
    cls = _BY_NAME.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown encoded type {kind!r}")
    known = {field.name for field in fields(cls)}
    return cls(**{name: _decode(item) for name, item in value.items() if name in known})
