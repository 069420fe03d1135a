"""Job parameter values: from Python values to the strings openjd-model expects, and back out.

Values may be given as strings or as Python values (int, float, bool, ``os.PathLike``, and lists
for ``LIST[...]`` types). Paths follow the template schema (2.2, 2.12), one element at a time for
LIST[PATH]: a relative submitted value is joined with the current directory and lexically
normalized; a relative LIST[PATH] default is joined with the template's directory and must stay
inside it (openjd-model does this for PATH defaults). Kept as given: an absolute path, an empty
value, a URI under EXPR, and an absolute path of the other OS family (``C:\\Projects\\a.ma`` on
Linux), so that path-mapping rules can still map it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from openjd.model import (
    CompatibilityError,
    EnvironmentTemplate,
    JobParameterDefinition,
    JobParameterValues,
    JobTemplate,
    ParameterValue,
    merge_job_parameter_definitions,
    preprocess_job_parameters,
)

from .errors import ExpectedParameter, ParameterError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PARAMETER_COLUMNS",
    "ResolvedParameters",
    "absolute_path_inputs",
    "definitions_frame",
    "expected_parameters",
    "input_strings",
    "is_foreign_absolute",
    "merged_definitions",
    "parameter_string",
    "resolve_job_parameters",
    "value_string",
]

PARAMETER_COLUMNS = (
    "name",
    "type",
    "required",
    "default",
    "allowed_values",
    "range",
    "description",
)

ResolvedParameters = tuple[JobParameterValues, dict[str, str]]
"""The values to hand to sessions, and the same values as strings (for run records)."""

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
"""A ``scheme://`` value, which EXPR keeps as a URI instead of a file path (RFC 0006)."""


def parameter_string(value: Any, type_name: str | None = None) -> str:
    """``value`` as the string openjd-model reads for a parameter of type ``type_name``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        if type_name is not None and not type_name.startswith("LIST"):
            raise TypeError(f"a list is accepted only for LIST parameters, not {type_name}")
        return json.dumps([_json_item(item) for item in value])
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    return str(value)


def _json_item(item: Any) -> Any:
    if isinstance(item, os.PathLike):
        return os.fspath(item)
    if isinstance(item, (list, tuple)):
        return [_json_item(inner) for inner in item]
    if isinstance(item, Decimal):
        return float(item)
    return item


def value_string(value: ParameterValue) -> str:
    """A resolved parameter value as text: lists as JSON, booleans as ``true``/``false``."""
    return parameter_string(value.value)


def is_foreign_absolute(value: str) -> bool:
    """Whether ``value`` is an absolute path of the other OS family than this one."""
    if os.name == "nt":
        return value.startswith("/") and not PureWindowsPath(value).drive
    # A drive ("C:", "\\\\server\\share") never names a POSIX location; joining it to the
    # current directory would only hide it from path mapping.
    return bool(PureWindowsPath(value).drive) and not PurePosixPath(value).is_absolute()


def _default_text(definition: JobParameterDefinition) -> str | None:
    default = getattr(definition, "default", None)
    return None if default is None else parameter_string(_plain(default))


def expected_parameters(definitions: Iterable[JobParameterDefinition]) -> list[ExpectedParameter]:
    """What a template expects, for error messages."""
    return [ExpectedParameter(d.name, d.type.value, _default_text(d)) for d in definitions]


def _plain(value: Any) -> Any:
    """Model values as plain Python: Decimal as float, lists item by item."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _range_text(definition: JobParameterDefinition) -> str | None:
    low = getattr(definition, "minValue", None)
    high = getattr(definition, "maxValue", None)
    prefix = ""
    if low is None and high is None:
        low = getattr(definition, "minLength", None)
        high = getattr(definition, "maxLength", None)
        prefix = "length "
    if low is None and high is None:
        return None
    if high is None:
        return f"{prefix}>= {_plain(low)}"
    if low is None:
        return f"{prefix}<= {_plain(high)}"
    return f"{prefix}{_plain(low)}..{_plain(high)}"


def _definition_row(definition: JobParameterDefinition) -> dict[str, Any]:
    default = getattr(definition, "default", None)
    allowed = getattr(definition, "allowedValues", None)
    return {
        "name": definition.name,
        "type": definition.type.value,
        "required": default is None,
        "default": _plain(default),
        "allowed_values": None if allowed is None else _plain(list(allowed)),
        "range": _range_text(definition),
        "description": definition.description,
    }


def definitions_frame(definitions: Iterable[JobParameterDefinition]) -> pd.DataFrame:
    """One row per job parameter, in template order, columns as ``PARAMETER_COLUMNS``."""
    import pandas as pd  # here, not at the top: pandas is slow to import

    rows = [_definition_row(d) for d in definitions]
    # object columns keep each default as its own type (int, float, str, list) and None as None
    frame = pd.DataFrame(rows, columns=list(PARAMETER_COLUMNS), dtype=object)
    return frame.astype({"name": "str", "type": "str", "required": "bool"})


def merged_definitions(
    job_template: JobTemplate, environments: Sequence[EnvironmentTemplate]
) -> list[JobParameterDefinition]:
    """The job's parameter definitions merged with those of the external environments."""
    try:
        return merge_job_parameter_definitions(
            job_template=job_template, environment_templates=list(environments) or None
        )
    except CompatibilityError as exc:
        problem = f"The environment templates' parameters do not fit the job's: {exc}"
        raise ParameterError(problem) from exc


def _input_strings(
    values: Mapping[str, Any], types: Mapping[str, str], expected: list[ExpectedParameter]
) -> dict[str, str]:
    strings: dict[str, str] = {}
    for name, value in values.items():
        _check_encodable(name, value, expected)
        try:
            strings[name] = parameter_string(value, types.get(name))
        except TypeError as exc:
            raise ParameterError(f"Job parameter {name}: {exc}.", expected) from exc
    return strings


def _unencodable(value: Any) -> str | None:
    """The first string in ``value`` (text, a path, or a list of them) UTF-8 cannot encode."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value
        return None
    if isinstance(value, (list, tuple)):
        return next(filter(None, (_unencodable(item) for item in value)), None)
    return None


def _check_encodable(name: str, value: Any, expected: list[ExpectedParameter]) -> None:
    """Refuse text that cannot reach the job: it goes there as UTF-8 (files, env, args)."""
    text = _unencodable(value)
    if text is None:
        return
    position, character = next((i, c) for i, c in enumerate(text) if _is_surrogate(c))
    # Python keeps a byte that is not UTF-8 in a file name (os.listdir, sys.argv) as
    # U+DC80..U+DCFF, so that the name can be used for files but is not text.
    byte = ord(character) - 0xDC00
    origin = f"the byte 0x{byte:02x} of a name that is not UTF-8" if 0x80 <= byte <= 0xFF else ""
    raise ParameterError(
        f"Job parameter {name}: the value {text!r} is not valid text: {character!r} at "
        f"position {position}{' is ' + origin if origin else ''}. A value must be encodable "
        "as UTF-8 to reach the job; use a name that is valid UTF-8.",
        expected,
    )


def _is_surrogate(character: str) -> bool:
    return 0xD800 <= ord(character) <= 0xDFFF


def _check_missing(
    inputs: Mapping[str, str],
    definitions: Sequence[JobParameterDefinition],
    expected: list[ExpectedParameter],
) -> None:
    missing = [
        d.name for d in definitions if getattr(d, "default", None) is None and d.name not in inputs
    ]
    if missing:
        problem = f"Missing value(s) for required job parameter(s): {', '.join(missing)}."
        raise ParameterError(problem, expected, missing=missing)


def _bundle_inputs(bundle: Mapping[str, str], known: set[str]) -> dict[str, str]:
    # Namespaced names ("deadline:priority") belong to other tools reading the same bundle.
    return {name: value for name, value in bundle.items() if name in known or ":" not in name}


def input_strings(
    definitions: Sequence[JobParameterDefinition],
    parameters: Mapping[str, Any] | None,
    bundle: Mapping[str, str],
) -> dict[str, str]:
    """Bundle values overridden by ``parameters``, as strings; unknown names are refused."""
    expected = expected_parameters(definitions)
    types = {d.name: d.type.value for d in definitions}
    inputs = _input_strings(_bundle_inputs(bundle, set(types)), types, expected)
    inputs.update(_input_strings(parameters or {}, types, expected))
    unknown = sorted(set(inputs) - set(types))
    if unknown:
        raise ParameterError(f"Unknown job parameter(s): {', '.join(unknown)}.", expected)
    return inputs


def absolute_path_inputs(
    inputs: Mapping[str, str],
    definitions: Sequence[JobParameterDefinition],
    cwd: Path,
    *,
    keep_uris: bool = True,
) -> dict[str, str]:
    """``inputs`` with relative PATH and LIST[PATH] values joined to ``cwd`` and normalized."""
    types = {d.name: d.type.value for d in definitions}
    return {
        name: _absolute_input(value, types.get(name), cwd, keep_uris)
        for name, value in inputs.items()
    }


def _absolute_input(value: str, type_name: str | None, cwd: Path, keep_uris: bool) -> str:
    if type_name == "PATH":
        return _absolute(value, cwd, keep_uris)
    if type_name == "LIST[PATH]":
        elements = _path_list(value)
        if elements is not None:
            return json.dumps([_absolute(element, cwd, keep_uris) for element in elements])
    return value


def _path_list(text: str) -> list[str] | None:
    """A LIST[PATH] value's elements, or None when it is not a list of strings.

    openjd-model reports a malformed value itself, naming the parameter.
    """
    try:
        elements = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(elements, list) and all(isinstance(e, str) for e in elements):
        return elements
    return None


def _kept_as_given(value: str, keep_uris: bool) -> bool:
    return value == "" or is_foreign_absolute(value) or bool(keep_uris and _URI.match(value))


def _absolute(value: str, base: Path, keep_uris: bool) -> str:
    if _kept_as_given(value, keep_uris) or Path(value).is_absolute():
        return value
    # Lexical, as the spec asks: symlinks are not resolved ("a/.." is the base itself).
    return os.path.normpath(base / value)


def _list_path_default_problem(element: str, template_dir: Path) -> str | None:
    """Why a LIST[PATH] default element is refused (template schema 2.2, 2.12), or None."""
    if element == "" or _URI.match(element):
        return None
    if Path(element).is_absolute() or is_foreign_absolute(element):
        return "is an absolute path"
    if not Path(os.path.normpath(template_dir / element)).is_relative_to(template_dir):
        return "walks out of the template directory"
    return None


def _list_path_default(
    definition: JobParameterDefinition, template_dir: Path, expected: list[ExpectedParameter]
) -> str:
    """The default of a LIST[PATH] parameter joined to ``template_dir``, as a value string."""
    default = getattr(definition, "default", None)
    elements = [str(element) for element in default] if isinstance(default, list) else []
    for index, element in enumerate(elements):
        reason = _list_path_default_problem(element, template_dir)
        if reason is not None:
            raise ParameterError(
                f"The default of LIST[PATH] parameter {definition.name}: item {index} "
                f"({element!r}) {reason}; default paths must be relative paths inside the "
                f"template directory {template_dir}.",
                expected,
            )
    return json.dumps([_absolute(element, template_dir, True) for element in elements])


def _list_path_defaults(
    definitions: Sequence[JobParameterDefinition],
    inputs: Mapping[str, str],
    template_dir: Path,
    expected: list[ExpectedParameter],
) -> dict[str, str]:
    # Given to openjd-model as values, so it checks item.allowedValues after the join.
    return {
        d.name: _list_path_default(d, template_dir, expected)
        for d in definitions
        if d.type.value == "LIST[PATH]"
        and getattr(d, "default", None) is not None
        and d.name not in inputs
    }


def resolve_job_parameters(
    job_template: JobTemplate,
    parameters: Mapping[str, Any] | None,
    *,
    bundle: Mapping[str, str],
    template_dir: Path,
    environments: Sequence[EnvironmentTemplate] = (),
) -> ResolvedParameters:
    """Check and complete job parameter values the way openjd-model does for ``openjd run``."""
    definitions = merged_definitions(job_template, environments)
    expected = expected_parameters(definitions)
    inputs = input_strings(definitions, parameters, bundle)
    _check_missing(inputs, definitions, expected)
    template_dir = Path(os.path.normpath(template_dir))
    keep_uris = "EXPR" in (job_template.extensions or ())  # as openjd-model decides (RFC 0006)
    prepared = absolute_path_inputs(inputs, definitions, Path.cwd(), keep_uris=keep_uris)
    prepared.update(_list_path_defaults(definitions, inputs, template_dir, expected))
    paths = {d.name for d in definitions if d.type.value == "PATH"}
    foreign = {n: v for n, v in inputs.items() if n in paths and is_foreign_absolute(v)}
    values = _preprocess(job_template, prepared, template_dir, environments, expected)
    for name, raw in foreign.items():
        # openjd-model would join it to the cwd, hiding it from path mapping.
        values[name] = ParameterValue(type=values[name].type, value=raw)
    return values, {name: value_string(value) for name, value in values.items()}


def _preprocess(
    job_template: JobTemplate,
    inputs: dict[str, str],
    template_dir: Path,
    environments: Sequence[EnvironmentTemplate],
    expected: list[ExpectedParameter],
) -> JobParameterValues:
    try:
        return preprocess_job_parameters(
            job_template=job_template,
            job_parameter_values=inputs,
            job_template_dir=template_dir,
            current_working_dir=Path.cwd(),
            environment_templates=list(environments) or None,
        )
    except ValueError as exc:
        problem = " ".join(str(exc).split("\n"))
        raise ParameterError(problem if problem.endswith(".") else f"{problem}.", expected) from exc
