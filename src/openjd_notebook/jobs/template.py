"""Job and environment templates: load, validate with openjd-model, describe, instantiate, export.

A ``Template`` is an immutable value: the source text, the decoded openjd-model document and, for a
job bundle, the bundle's parameter values (defaults for a run). Every model error is translated
into a ``TemplateError`` that names the field and, for text input, the line.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from openjd.model import (
    DecodeValidationError,
    EnvironmentTemplate,
    Job,
    JobParameterValues,
    JobTemplate,
    RevisionExtensions,
    create_job_with_symbol_tables,
)
from openjd.model.v2023_09 import EnvironmentTemplate as EnvironmentTemplate_2023_09

from ._template_text import (
    PathElement,
    TextFormat,
    decode_located,
    format_of,
    model_error,
    model_failure,
    parse_text,
    problem_at,
    yaml_dump,
)
from .errors import InputFileError, ParameterError, TemplateError, TemplateProblem
from .input_files import read_text_file
from .parameter_blame import blame_parameter
from .parameters import (
    absolute_path_inputs,
    definitions_frame,
    expected_parameters,
    input_strings,
    merged_definitions,
    parameter_string,
    resolve_job_parameters,
)
from .summary import StepSummary, TemplateKind, TemplateSummary, job_summary, template_summary
from .wrap_layers import check_wrap_layers

if TYPE_CHECKING:
    import pandas as pd
    from openjd.expr import SerializedSymbolTable

__all__ = [
    "JobInstance",
    "StepSummary",
    "Template",
    "TemplateKind",
    "TemplateSummary",
    "TextFormat",
]

_BUNDLE_TEMPLATES = ("template.yaml", "template.yml", "template.json")
_BUNDLE_VALUES = ("parameter_values.yaml", "parameter_values.yml", "parameter_values.json")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class JobInstance:
    """A job created from a template and parameter values: what sessions need to run it."""

    job: Job
    parameter_values: JobParameterValues
    """Name -> ParameterValue, to pass to sessions as ``job_parameter_values``."""
    step_symbol_tables: Mapping[str, SerializedSymbolTable]
    revision_extensions: RevisionExtensions
    parameter_strings: Mapping[str, str]
    """The final values as text, for run records."""


@dataclass(frozen=True, eq=False, repr=False)
class Template:
    """An OpenJD job or environment template, validated by openjd-model.

    Build one with ``Template.load``, ``Template.from_text`` or ``Template.from_dict``.
    """

    model: JobTemplate | EnvironmentTemplate
    text: str
    text_format: TextFormat
    source: Path | None
    directory: Path
    """Where relative PATH defaults point: the template's directory, or the cwd for text."""
    bundle_parameter_values: Mapping[str, str] = field(default_factory=dict)
    line_numbers: bool = True
    """Whether ``text`` is what the user wrote, so error lines mean something to them."""
    first_line: int = 1
    """The number of the text's first line where the user sees it (2 under a magic line)."""

    __hash__: ClassVar[None]  # type: ignore[assignment]

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def load(cls, path: StrPath) -> Template:
        """Load a ``.yaml``/``.yml``/``.json`` template, or a job bundle directory."""
        path = Path(path).expanduser().absolute()
        if path.is_dir():
            return cls._load_bundle(path)
        return cls._load_file(path, bundle={})

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        format: TextFormat | None = None,
        directory: StrPath | None = None,
        first_line: int = 1,
    ) -> Template:
        """A template from YAML or JSON text (JSON when it starts with ``{``, unless told).

        ``first_line`` numbers the text's first line in errors: 2 for the body of a notebook
        cell whose first line is a magic, so that lines match the cell as shown.
        """
        text_format = format or ("json" if text.lstrip().startswith("{") else "yaml")
        return cls._from_text(
            text, text_format, source=None, directory=directory, bundle={}, first_line=first_line
        )

    @classmethod
    def from_dict(
        cls, document: Mapping[str, Any], *, directory: StrPath | None = None
    ) -> Template:
        """A template from an already-parsed document; ``text`` becomes its YAML dump."""
        text = yaml_dump(document)
        model = decode_located(dict(document), text, None, first_line=None)
        return cls(model, text, "yaml", None, _directory(directory), MappingProxyType({}), False)

    @classmethod
    def _from_text(
        cls,
        text: str,
        text_format: TextFormat,
        *,
        source: Path | None,
        directory: StrPath | None,
        bundle: Mapping[str, str],
        first_line: int = 1,
    ) -> Template:
        document = parse_text(text, text_format, source, first_line=first_line)
        model = decode_located(document, text, source, first_line=first_line)
        values = MappingProxyType(dict(bundle))
        directory = _directory(directory)
        return cls(model, text, text_format, source, directory, values, True, first_line)

    @classmethod
    def _load_file(cls, path: Path, bundle: Mapping[str, str]) -> Template:
        text = _read_file(path, "template")
        return cls._from_text(
            text, format_of(path), source=path, directory=path.parent, bundle=bundle
        )

    @classmethod
    def _load_bundle(cls, directory: Path) -> Template:
        template_path = _bundle_file(directory, _BUNDLE_TEMPLATES)
        if template_path is None:
            raise FileNotFoundError(
                f"{directory} is not a job bundle: it holds no template.yaml or template.json"
            )
        values_path = _bundle_file(directory, _BUNDLE_VALUES)
        bundle = {} if values_path is None else _read_bundle_values(values_path)
        return cls._load_file(template_path, bundle)

    # ---- description --------------------------------------------------------------------

    @property
    def kind(self) -> TemplateKind:
        return "environment" if isinstance(self.model, EnvironmentTemplate_2023_09) else "job"

    @property
    def name(self) -> str:
        """The job's name as written (it may hold format strings), or the environment's name."""
        if isinstance(self.model, EnvironmentTemplate_2023_09):
            return str(self.model.environment.name)
        return str(self.model.name)

    @property
    def steps(self) -> list[str]:
        if isinstance(self.model, EnvironmentTemplate_2023_09):
            return []
        return [str(step.name) for step in self.model.steps]

    @property
    def extensions(self) -> list[str]:
        """The extensions the template declares."""
        return [str(name) for name in self.model.extensions or ()]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def parameters(self) -> pd.DataFrame:
        """One row per job parameter: name, type, required, default, allowed values, range."""
        return definitions_frame(self.model.parameterDefinitions or ())

    def summary(
        self, parameters: Mapping[str, Any] | None = None, *, environments: Sequence[Template] = ()
    ) -> TemplateSummary:
        """Steps, dependencies, task counts and environments of the job these values create.

        When required parameters have no value the counts are unknown (None) and the summary lists
        what is missing instead of raising.
        """
        if isinstance(self.model, EnvironmentTemplate_2023_09):
            return TemplateSummary(self.name, "environment", (), (), (self.name,))
        external = tuple(env.name for env in environments)
        try:
            instance = self.instantiate(parameters, environments=environments)
        except ParameterError as exc:
            if not exc.missing:
                raise
            return template_summary(self.model, external, exc.missing)
        return job_summary(instance.job, external, instance.parameter_strings)

    # ---- use ----------------------------------------------------------------------------

    def instantiate(
        self, parameters: Mapping[str, Any] | None = None, *, environments: Sequence[Template] = ()
    ) -> JobInstance:
        """Create the job: bundle values are defaults that ``parameters`` override."""
        job_template = self._job_template()
        env_models = _environment_models(environments)
        values, strings = resolve_job_parameters(
            job_template,
            parameters,
            bundle=self.bundle_parameter_values,
            template_dir=self.directory,
            environments=env_models,
        )
        try:
            created = create_job_with_symbol_tables(
                job_template=job_template,
                job_parameter_values=values,
                environment_templates=env_models or None,
            )
        except DecodeValidationError as exc:
            error = self._error(str(exc), lead="Creating the job failed: ")
            expected = expected_parameters(merged_definitions(job_template, env_models))
            # Only a value the user gave is to blame; a bad default is the template's fault.
            given = {*(parameters or {}), *self.bundle_parameter_values}
            user_values = {name: value for name, value in values.items() if name in given}
            blamed = blame_parameter(error, job_template, user_values, expected)
            raise (blamed or error) from exc
        except IndexError as exc:
            raise model_failure(exc, self.source, lead="Creating the job failed: ") from exc
        check_wrap_layers(created.job, env_models)
        extensions = RevisionExtensions(
            spec_rev=job_template.revision,
            supported_extensions=_declared_extensions(job_template, env_models),
        )
        return JobInstance(created.job, values, created.step_symbol_tables, extensions, strings)

    def export_bundle(
        self, directory: StrPath, parameters: Mapping[str, Any] | None = None
    ) -> Path:
        """Write a job bundle (``template.yaml``, ``parameter_values.yaml``) and return its path.

        ``parameters`` join the template's bundle values; relative PATH values become absolute.
        A PATH default that is absolute or points outside the bundle is refused.
        """
        self._check_path_defaults()
        definitions = self.model.parameterDefinitions or []
        values = input_strings(definitions, parameters, self.bundle_parameter_values)
        values = absolute_path_inputs(values, definitions, Path.cwd())
        target = Path(directory).expanduser().absolute()
        _refuse_other_bundle_files(target)
        target.mkdir(parents=True, exist_ok=True)
        (target / "template.yaml").write_text(self._yaml_text(), encoding="utf-8")
        entries = [{"name": name, "value": value} for name, value in values.items()]
        (target / "parameter_values.yaml").write_text(
            yaml_dump({"parameterValues": entries}), encoding="utf-8"
        )
        return target

    # ---- helpers ------------------------------------------------------------------------

    def _job_template(self) -> JobTemplate:
        if isinstance(self.model, EnvironmentTemplate_2023_09):
            problem = TemplateProblem(
                f"{self.name!r} is an environment template; only a job template makes a job."
            )
            raise TemplateError([problem], self.source)
        return self.model

    @property
    def _first_line(self) -> int | None:
        """The first line's number for error messages; None when lines mean nothing."""
        return self.first_line if self.line_numbers else None

    def _error(self, message: str, *, lead: str = "") -> TemplateError:
        return model_error(message, self.text, self.source, self._first_line, lead=lead)

    def _check_path_defaults(self) -> None:
        for index, definition in enumerate(self.model.parameterDefinitions or ()):
            default = getattr(definition, "default", None)
            reason = _bundle_path_default_problem(definition.type.value, default)
            if reason is not None:
                message = (
                    f"The default of PATH parameter {definition.name} ({default!r}) {reason}; "
                    "a job bundle's PATH defaults must be relative paths inside the bundle."
                )
                path: list[PathElement] = ["parameterDefinitions", index, "default"]
                problem = problem_at(self.text, path, message, self._first_line)
                raise TemplateError([problem], self.source)

    def _yaml_text(self) -> str:
        if self.text_format == "yaml":
            return self.text
        return yaml_dump(json.loads(self.text))

    # ---- value behaviour ----------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        same_values = dict(self.bundle_parameter_values) == dict(other.bundle_parameter_values)
        return same_values and self.model == other.model

    def __repr__(self) -> str:
        origin = self.source.name if self.source is not None else "text"
        count = len(self.steps)
        steps = f", {count} step{'s' if count != 1 else ''}" if self.kind == "job" else ""
        return f"<Template {self.kind} {self.name!r}{steps} from {origin}>"

    def _repr_html_(self) -> str:
        try:
            body = self.summary()._repr_html_()
        except (ParameterError, TemplateError) as exc:
            body = f"<pre>{html.escape(str(exc))}</pre>"
        frame = self.parameters
        return body if frame.empty else body + frame.to_html(index=False)


def _directory(directory: StrPath | None) -> Path:
    return Path.cwd() if directory is None else Path(directory).expanduser().absolute()


# ---- bundles ------------------------------------------------------------------------------


def _bundle_file(directory: Path, names: Sequence[str]) -> Path | None:
    present = [directory / name for name in names if (directory / name).is_file()]
    if len(present) > 1:
        listed = " and ".join(p.name for p in present)
        problem = TemplateProblem(f"The bundle holds both {listed}; keep one.")
        raise TemplateError([problem], directory)
    return present[0] if present else None


def _read_file(path: Path, what: str) -> str:
    """The file's text; a special, huge or non-UTF-8 file is a ``TemplateError`` naming it."""
    try:
        return read_text_file(path, what=what)
    except InputFileError as exc:
        raise TemplateError([TemplateProblem(str(exc))], path) from exc


def _read_bundle_values(path: Path) -> dict[str, str]:
    """``{"parameterValues": [{"name", "value"}]}`` as name -> value text."""
    text = _read_file(path, "parameter values file")
    document = parse_text(text, format_of(path), path)
    if document is None:
        return {}
    entries = document.get("parameterValues") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        message = "A parameter values file holds a 'parameterValues' list of {name, value}."
        raise TemplateError([problem_at(text, ["parameterValues"], message, 1)], path)
    values: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if not (
            isinstance(entry, dict) and isinstance(entry.get("name"), str) and "value" in entry
        ):
            message = "Each parameter value needs a 'name' and a 'value'."
            problem = problem_at(text, ["parameterValues", index], message, 1)
            raise TemplateError([problem], path)
        values[entry["name"]] = parameter_string(entry["value"])
    return values


def _refuse_other_bundle_files(target: Path) -> None:
    others = [*_BUNDLE_TEMPLATES[1:], *_BUNDLE_VALUES[1:]]
    clashing = [name for name in others if (target / name).exists()]
    if clashing:
        raise FileExistsError(
            f"{target} already holds {', '.join(clashing)}; a bundle reader would not know "
            "which file to use"
        )


def _bundle_path_default_problem(type_name: str, default: Any) -> str | None:
    if type_name != "PATH" or not isinstance(default, str) or not default:
        return None
    if _URI.match(default):
        return None
    if PurePosixPath(default).is_absolute() or PureWindowsPath(default).drive:
        return "is an absolute path"
    normal = posixpath.normpath(default.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        return "points outside the bundle directory"
    return None


def _environment_models(environments: Sequence[Template]) -> list[EnvironmentTemplate]:
    models: list[EnvironmentTemplate] = []
    for env in environments:
        if not isinstance(env, Template) or not isinstance(env.model, EnvironmentTemplate_2023_09):
            raise TemplateError(f"environments= takes environment templates, not {env!r}.")
        models.append(env.model)
    return models


def _declared_extensions(
    job_template: JobTemplate, environments: Sequence[EnvironmentTemplate]
) -> set[str]:
    declared = {str(name) for name in job_template.extensions or ()}
    for env in environments:
        declared.update(str(name) for name in env.extensions or ())
    return declared
