"""What a template makes, as a frozen value: steps, task counts and environments.

``TemplateSummary`` renders itself as a text table (``str``), an HTML table (Jupyter) and a
pandas frame.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from openjd.model import IntRangeExpr

from .task_indices import space_size

if TYPE_CHECKING:
    import pandas as pd
    from openjd.model import Job, JobTemplate, Step
    from openjd.model.v2023_09 import StepTemplate

__all__ = ["StepSummary", "TemplateKind", "TemplateSummary"]

TemplateKind = Literal["job", "environment"]


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

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython's text/plain (saved notebooks, terminals): the table, not the dataclass.
        printer.text(str(self))

    def _repr_html_(self) -> str:
        notes = "".join(f"<br><small>{html.escape(note)}</small>" for note in self._notes())
        head = f"<div><strong>{html.escape(self._headline())}</strong>{notes}</div>"
        return head + (_html_table(_STEP_COLUMNS, self._rows()) if self.steps else "")


def job_summary(
    job: Job, external: tuple[str, ...], parameters: Mapping[str, str]
) -> TemplateSummary:
    """The summary of a created job, with every step's tasks and chunks counted."""
    steps = tuple(_step_summary(step, *_counts(step)) for step in job.steps)
    return _summary(job, steps, external, parameters=dict(parameters))


def template_summary(
    model: JobTemplate, external: tuple[str, ...], missing: tuple[str, ...]
) -> TemplateSummary:
    """The summary of a job template whose parameters lack values: counts unknown."""
    steps = tuple(_step_summary(step, None, None) for step in model.steps)
    return _summary(model, steps, external, missing=missing)


def _summary(
    job: Job | JobTemplate,
    steps: tuple[StepSummary, ...],
    external: tuple[str, ...],
    *,
    parameters: Mapping[str, str] | None = None,
    missing: tuple[str, ...] = (),
) -> TemplateSummary:
    job_environments = tuple(str(env.name) for env in job.jobEnvironments or ())
    return TemplateSummary(
        str(job.name), "job", steps, job_environments, external, parameters or {}, missing
    )


def _step_summary(
    step: Step | StepTemplate, task_count: int | None, chunk_count: int | None
) -> StepSummary:
    return StepSummary(
        name=str(step.name),
        dependencies=tuple(str(d.dependsOn) for d in step.dependencies or ()),
        task_count=task_count,
        chunk_count=chunk_count,
        environments=tuple(str(env.name) for env in step.stepEnvironments or ()),
    )


def _counts(step: Step) -> tuple[int, int | None]:
    """Tasks, and chunks at the default chunk size (None when the step does not chunk).

    Counted by arithmetic: the model would build a chunked parameter's every chunk (and, to
    count tasks one per chunk, a string per frame), and cannot count adaptive chunks at all.
    """
    space = step.parameterSpace
    if space is None:
        return 1, None
    definitions = space.taskParameterDefinitions
    chunked = next((n for n, d in definitions.items() if str(d.type.value) == "CHUNK[INT]"), None)
    tasks = space_size(space, lambda name: len(definitions[name].range))
    if chunked is None:
        return tasks, None
    chunks = _chunk_count(definitions[chunked])
    return tasks, space_size(
        space, lambda name: chunks if name == chunked else len(definitions[name].range)
    )


def _chunk_count(definition: Any) -> int:
    """How many chunks the model makes of a CHUNK[INT] range at its default task count."""
    size = int(definition.chunks.defaultTaskCount)
    values = definition.range
    if isinstance(values, IntRangeExpr):
        segments = [
            range(part[0], part[-1] + (1 if part[-1] >= part[0] else -1), _step(part))
            for part in values.ranges
        ]
    else:
        segments = [range(int(v), int(v) + 1) for v in values]
    total = sum(len(segment) for segment in segments)
    if str(definition.chunks.rangeConstraint.value) != "CONTIGUOUS":
        return _chunks_of(total, size)
    return sum(_chunks_of(length, size) for length in _contiguous_runs(segments))


def _step(part: Any) -> int:
    step = int(part.step)
    return step if len(part) < 2 or part[1] > part[0] else -step


def _contiguous_runs(segments: Sequence[range]) -> Iterator[int]:
    """Lengths of the runs of consecutive ascending values, in iteration order."""
    current, last = 0, None
    for segment in segments:
        if last is not None and segment[0] == last + 1:
            current += 1
        else:
            if current:
                yield current
            current = 1
        if len(segment) > 1:
            if segment.step == 1:
                current += len(segment) - 1
            else:  # every value a run of its own, the last one maybe joined by what follows
                yield current
                yield from itertools.repeat(1, len(segment) - 2)
                current = 1
        last = segment[-1]
    if current:
        yield current


def _chunks_of(count: int, size: int) -> int:
    # As openjd-model's divide_chunk_sizes: ceil(count / size) chunks, at least one value each.
    return min(count, -(-count // size)) if size > 0 else min(count, 1)


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
