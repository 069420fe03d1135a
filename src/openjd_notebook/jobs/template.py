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
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import yaml
from openjd.model import (
    DecodeValidationError,
    EnvironmentTemplate,
    Job,
    JobParameterValues,
    JobTemplate,
    RevisionExtensions,
    StepParameterSpaceIterator,
    create_job_with_symbol_tables,
    decode_environment_template,
    decode_job_template,
)
from openjd.model.v2023_09 import EnvironmentTemplate as EnvironmentTemplate_2023_09
from openjd.model.v2023_09 import ExtensionName

from .errors import ParameterError, TemplateError, TemplateProblem
from .parameters import (
    absolute_path_inputs,
    definitions_frame,
    input_strings,
    parameter_string,
    resolve_job_parameters,
)

if TYPE_CHECKING:
    import pandas as pd
    from openjd.expr import SerializedSymbolTable
    from openjd.model import Step

__all__ = [
    "JobInstance",
    "StepSummary",
    "Template",
    "TemplateKind",
    "TemplateSummary",
    "TextFormat",
]

TemplateKind = Literal["job", "environment"]
TextFormat = Literal["yaml", "json"]

_ALL_EXTENSIONS = tuple(name.value for name in ExtensionName)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BUNDLE_TEMPLATES = ("template.yaml", "template.yml", "template.json")
_BUNDLE_VALUES = ("parameter_values.yaml", "parameter_values.yml", "parameter_values.json")
_ERROR_COUNT_LINE = re.compile(r"^\d+ validation errors? for \w+$")
_ROOT_ERROR_LINE = re.compile(r"^\w+: (?P<message>.*)$")
_PATH_PART = re.compile(r"^(?P<name>.*?)(?P<indices>(?:\[\d+\])*)$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

PathElement = str | int
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
    ) -> Template:
        """A template from YAML or JSON text (JSON when it starts with ``{``, unless told)."""
        text_format = format or ("json" if text.lstrip().startswith("{") else "yaml")
        return cls._from_text(text, text_format, source=None, directory=directory, bundle={})

    @classmethod
    def from_dict(
        cls, document: Mapping[str, Any], *, directory: StrPath | None = None
    ) -> Template:
        """A template from an already-parsed document; ``text`` becomes its YAML dump."""
        text = _yaml_dump(document)
        model = _decode_located(dict(document), text, None, with_lines=False)
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
    ) -> Template:
        document = _parse_text(text, text_format, source)
        model = _decode_located(document, text, source, with_lines=True)
        values = MappingProxyType(dict(bundle))
        return cls(model, text, text_format, source, _directory(directory), values)

    @classmethod
    def _load_file(cls, path: Path, bundle: Mapping[str, str]) -> Template:
        text = path.read_text(encoding="utf-8")
        return cls._from_text(
            text, _format_of(path), source=path, directory=path.parent, bundle=bundle
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
            return _template_summary(self.model, external, exc.missing)
        return _job_summary(instance, external)

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
            raise self._error(str(exc), lead="Creating the job failed: ") from exc
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
            _yaml_dump({"parameterValues": entries}), encoding="utf-8"
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

    def _error(self, message: str, *, lead: str = "") -> TemplateError:
        return _model_error(message, self.text, self.source, self.line_numbers, lead=lead)

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
                problem = _problem_at(self.text, path, message, self.line_numbers)
                raise TemplateError([problem], self.source)

    def _yaml_text(self) -> str:
        if self.text_format == "yaml":
            return self.text
        return _yaml_dump(json.loads(self.text))

    # ---- value behaviour ----------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Template):
            return NotImplemented
        same_values = dict(self.bundle_parameter_values) == dict(other.bundle_parameter_values)
        return same_values and self.model == other.model

    def __repr__(self) -> str:
        origin = self.source.name if self.source is not None else "text"
        steps = f", {len(self.steps)} steps" if self.kind == "job" else ""
        return f"<Template {self.kind} {self.name!r}{steps} from {origin}>"

    def _repr_html_(self) -> str:
        try:
            body = self.summary()._repr_html_()
        except (ParameterError, TemplateError) as exc:
            body = f"<pre>{html.escape(str(exc))}</pre>"
        frame = self.parameters
        return body if frame.empty else body + frame.to_html(index=False)


# ---- summaries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSummary:
    """One step of a job: what it waits for and how much work it holds."""

    name: str
    dependencies: tuple[str, ...]
    task_count: int | None
    """Tasks, counted as ``openjd summary`` does (chunks of a chunked step count per task)."""
    chunk_count: int | None
    """Chunks at the template's default chunk size; None for a step without chunking."""
    environments: tuple[str, ...]


_STEP_COLUMNS = ("step", "depends on", "tasks", "chunks", "environments")


@dataclass(frozen=True)
class TemplateSummary:
    """What a template makes: steps in template order, counts and environments."""

    name: str
    kind: TemplateKind
    steps: tuple[StepSummary, ...]
    job_environments: tuple[str, ...]
    external_environments: tuple[str, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)
    missing_parameters: tuple[str, ...] = ()

    @property
    def task_count(self) -> int | None:
        counts = [step.task_count for step in self.steps]
        return None if None in counts else sum(c for c in counts if c is not None)

    def to_frame(self) -> pd.DataFrame:
        """One row per step: step, dependencies, task_count, chunk_count, environments."""
        import pandas as pd  # here, not at the top: pandas is slow to import

        rows = [
            (s.name, list(s.dependencies), s.task_count, s.chunk_count, list(s.environments))
            for s in self.steps
        ]
        columns = ["step", "dependencies", "task_count", "chunk_count", "environments"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"task_count": "Int64", "chunk_count": "Int64"})

    def _headline(self) -> str:
        if self.kind == "environment":
            return f"Environment {self.name!r}"
        tasks = self.task_count
        counted = "" if tasks is None else f", {_plural(tasks, 'task')}"
        return f"Job {self.name!r}: {_plural(len(self.steps), 'step')}{counted}"

    def _notes(self) -> list[str]:
        notes = []
        if self.missing_parameters:
            notes.append(f"task counts need values for: {', '.join(self.missing_parameters)}")
        if self.parameters:
            notes.append("parameters: " + ", ".join(f"{k}={v}" for k, v in self.parameters.items()))
        if self.external_environments:
            notes.append(f"external environments: {', '.join(self.external_environments)}")
        if self.job_environments:
            notes.append(f"job environments: {', '.join(self.job_environments)}")
        return notes

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                step.name,
                ", ".join(step.dependencies) or "-",
                "?" if step.task_count is None else str(step.task_count),
                "-" if step.chunk_count is None else str(step.chunk_count),
                ", ".join(step.environments) or "-",
            )
            for step in self.steps
        ]

    def __str__(self) -> str:
        lines = [self._headline(), *(f"  {note}" for note in self._notes())]
        if self.steps:
            lines.extend(_text_table(_STEP_COLUMNS, self._rows()))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        notes = "".join(f"<br><small>{html.escape(note)}</small>" for note in self._notes())
        head = f"<div><strong>{html.escape(self._headline())}</strong>{notes}</div>"
        return head + (_html_table(_STEP_COLUMNS, self._rows()) if self.steps else "")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cells(tag: str, row: Sequence[str]) -> str:
        return "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in row)

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"


def _step_summary(step: Step) -> StepSummary:
    tasks = StepParameterSpaceIterator(space=step.parameterSpace, chunks_task_count_override=1)
    chunks = None
    if tasks.chunks_parameter_name is not None:
        chunks = len(StepParameterSpaceIterator(space=step.parameterSpace))
    return StepSummary(
        name=str(step.name),
        dependencies=tuple(str(d.dependsOn) for d in step.dependencies or ()),
        task_count=len(tasks),
        chunk_count=chunks,
        environments=tuple(str(env.name) for env in step.stepEnvironments or ()),
    )


def _job_summary(instance: JobInstance, external: tuple[str, ...]) -> TemplateSummary:
    job = instance.job
    return TemplateSummary(
        name=str(job.name),
        kind="job",
        steps=tuple(_step_summary(step) for step in job.steps),
        job_environments=tuple(str(env.name) for env in job.jobEnvironments or ()),
        external_environments=external,
        parameters=dict(instance.parameter_strings),
    )


def _template_summary(
    model: JobTemplate, external: tuple[str, ...], missing: tuple[str, ...]
) -> TemplateSummary:
    steps = tuple(
        StepSummary(
            name=str(step.name),
            dependencies=tuple(str(d.dependsOn) for d in step.dependencies or ()),
            task_count=None,
            chunk_count=None,
            environments=tuple(str(env.name) for env in step.stepEnvironments or ()),
        )
        for step in model.steps
    )
    job_envs = tuple(str(env.name) for env in model.jobEnvironments or ())
    return TemplateSummary(str(model.name), "job", steps, job_envs, external, {}, missing)


# ---- reading text and translating model errors ---------------------------------------------


def _directory(directory: StrPath | None) -> Path:
    return Path.cwd() if directory is None else Path(directory).expanduser().absolute()


def _format_of(path: Path) -> TextFormat:
    return "json" if path.suffix.lower() == ".json" else "yaml"


def _yaml_dump(document: Any) -> str:
    try:
        return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    except yaml.YAMLError as exc:
        problem = TemplateProblem(f"The document holds a value YAML cannot represent: {exc}")
        raise TemplateError([problem]) from exc


def _parse_text(text: str, text_format: TextFormat, source: Path | None) -> Any:
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


def _decode(document: dict[str, Any]) -> JobTemplate | EnvironmentTemplate:
    version = document.get("specificationVersion")
    if isinstance(version, str) and version.startswith("environment-"):
        return decode_environment_template(template=document, supported_extensions=_ALL_EXTENSIONS)
    return decode_job_template(template=document, supported_extensions=_ALL_EXTENSIONS)


def _decode_located(
    document: Any, text: str, source: Path | None, *, with_lines: bool
) -> JobTemplate | EnvironmentTemplate:
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        problem = TemplateProblem(
            f"A template must be a mapping of keys to values; this is {kind}."
        )
        raise TemplateError([problem], source)
    try:
        return _decode(document)
    except DecodeValidationError as exc:
        raise _model_error(str(exc), text, source, with_lines) from exc


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


def _compose(text: str) -> Any:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None  # JSON that PyYAML cannot read (tabs); errors keep their path, lose the line


def _problem_at(
    text: str, elements: Sequence[PathElement], message: str, with_lines: bool
) -> TemplateProblem:
    field_path, line = _walk(_compose(text), elements)
    shown = line + 1 if with_lines and line is not None else None
    return TemplateProblem(message, field_path or None, shown)


def _model_error(
    message: str, text: str, source: Path | None, with_lines: bool, *, lead: str = ""
) -> TemplateError:
    problems = [
        _problem_at(text, _path_elements(path), lead + said, with_lines)
        if path is not None
        else TemplateProblem(lead + said)
        for path, said in _split_model_message(message)
    ]
    # Document order reads best; the model reports in its own validation order.
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return TemplateError(problems, source)


# ---- bundles ------------------------------------------------------------------------------


def _bundle_file(directory: Path, names: Sequence[str]) -> Path | None:
    present = [directory / name for name in names if (directory / name).is_file()]
    if len(present) > 1:
        listed = " and ".join(p.name for p in present)
        problem = TemplateProblem(f"The bundle holds both {listed}; keep one.")
        raise TemplateError([problem], directory)
    return present[0] if present else None


def _read_bundle_values(path: Path) -> dict[str, str]:
    """``{"parameterValues": [{"name", "value"}]}`` as name -> value text."""
    text = path.read_text(encoding="utf-8")
    document = _parse_text(text, _format_of(path), path)
    if document is None:
        return {}
    entries = document.get("parameterValues") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        message = "A parameter values file holds a 'parameterValues' list of {name, value}."
        raise TemplateError([_problem_at(text, ["parameterValues"], message, True)], path)
    values: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if not (
            isinstance(entry, dict) and isinstance(entry.get("name"), str) and "value" in entry
        ):
            message = "Each parameter value needs a 'name' and a 'value'."
            problem = _problem_at(text, ["parameterValues", index], message, True)
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
