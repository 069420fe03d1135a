"""The field names openjd-model's own classes allow at a place in a document.

pydantic reports an unknown key as "Extra inputs are not permitted" without saying what would
have been allowed. The names come from the model classes, followed down the error's path through
Optional, Annotated, lists and unions, so they stay right for every model version and extension.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, Literal, get_args

import openjd.model.v2023_09 as model_v2023_09
import pydantic

__all__ = ["field_names", "model_named", "unknown_field_hint"]

_ERROR_COUNT_PREFIX = " validation error"

PathElement = str | int


def model_named(title: str) -> type[pydantic.BaseModel] | None:
    """The model class that an ``N validation errors for JobTemplate`` line names."""
    if _ERROR_COUNT_PREFIX not in title:
        return None
    found = getattr(model_v2023_09, title.rpartition(" ")[2], None)
    return found if isinstance(found, type) and issubclass(found, pydantic.BaseModel) else None


def unknown_field_hint(model: type[pydantic.BaseModel] | None, path: Sequence[PathElement]) -> str:
    """The message for the unknown key that ends ``path``: the closest allowed name, or all."""
    key = path[-1] if path else None
    names = field_names(model, path[:-1]) if model is not None and isinstance(key, str) else []
    if not names:
        return "Extra inputs are not permitted"
    close = difflib.get_close_matches(str(key), names, n=1)
    if close:
        return f"Unknown field `{key}`: did you mean `{close[0]}`?"
    return f"Unknown field `{key}`; the fields allowed here are: {', '.join(names)}."


def field_names(model: type[pydantic.BaseModel], path: Sequence[PathElement]) -> list[str]:
    """The keys ``model`` allows in the object at ``path``, sorted; [] when the path is lost."""
    models = [model]
    for element in path:
        if isinstance(element, int):
            continue  # a list item: _models_in already looked inside the list
        fields = _fields_of(models)
        wanted = element if element in fields else f"{element}s"  # "step[0]" names "steps"
        if wanted in fields:
            models = [found for annotation in fields[wanted] for found in _models_in(annotation)]
        else:  # the name of a union member, such as the "INT" of a parameter definition
            models = [m for m in models if _is_variant(m, element)] or models
        if not models:
            return []
    return sorted(_fields_of(models))


def _fields_of(models: Sequence[type[pydantic.BaseModel]]) -> dict[str, list[Any]]:
    """Field name as the document spells it (its alias) -> the annotations of that field."""
    fields: dict[str, list[Any]] = {}
    for model in models:
        for name, info in model.model_fields.items():
            fields.setdefault(info.alias or name, []).append(info.annotation)
    return fields


def _models_in(annotation: Any) -> list[type[pydantic.BaseModel]]:
    """The model classes a field can hold, through Optional, Annotated, list and unions."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _is_variant(model: type[pydantic.BaseModel], tag: str) -> bool:
    """Whether ``tag`` names ``model`` in a union: its class name or a Literal field's value."""
    if model.__name__ == tag:
        return True
    values = [v for info in model.model_fields.values() for v in _literal_values(info.annotation)]
    return any(v == tag or getattr(v, "value", None) == tag for v in values)


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    return get_args(annotation) if getattr(annotation, "__origin__", None) is Literal else ()
