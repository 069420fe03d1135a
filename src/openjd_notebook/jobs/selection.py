"""Which steps and tasks a run executes, in which order.

Steps come in dependency order; each step's tasks (or chunks) come from openjd-model's
``StepParameterSpaceIterator``, narrowed by ``tasks=`` and ``max_tasks``. Adaptive chunk
sizes (TASK_CHUNKING ``targetRuntimeSeconds``) are recomputed as chunks complete.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openjd.model import (
    IntRangeExpr,
    Job,
    ParameterValue,
    ParameterValueType,
    Step,
    StepParameterSpaceIterator,
)

from .errors import JobsError

__all__ = [
    "SelectionError",
    "StepPlan",
    "TaskItem",
    "TasksSpec",
    "adaptive_chunk_size",
    "plan_steps",
    "typed_parameters",
]

TasksSpec = str | Sequence[Mapping[str, Any]]


class SelectionError(JobsError, ValueError):
    """``step=``, ``tasks=`` or ``max_tasks`` do not fit the job."""


@dataclass(frozen=True)
class TaskItem:
    """One task (or chunk) to run: the unit a node takes from the queue."""

    step: str
    index: int
    parameters: Mapping[str, ParameterValue]


def typed_parameters(values: Mapping[str, ParameterValue]) -> dict[str, Any]:
    """Task parameter values as Python values: INT as int, FLOAT as float, others as str."""
    typed: dict[str, Any] = {}
    for name, value in values.items():
        if value.type == ParameterValueType.INT:
            typed[name] = int(value.value)
        elif value.type == ParameterValueType.FLOAT:
            typed[name] = float(value.value)
        else:
            typed[name] = value.value
    return typed


def adaptive_chunk_size(
    current: int, completed_tasks: int, completed_seconds: float, target_seconds: float
) -> int | None:
    """The next chunk size for adaptive chunking, or None while there is no usable sample.

    Follows the OpenJD CLI: aim for ``target_seconds`` per chunk, and blend gradually
    towards bigger chunks while fewer than 10 tasks have been measured.
    """
    if completed_tasks <= 0 or completed_seconds <= 0 or not math.isfinite(completed_seconds):
        return None
    ideal = target_seconds / (completed_seconds / completed_tasks)
    if completed_tasks < 10 and ideal > current:
        ideal = 0.75 * current + 0.25 * ideal
    return max(int(ideal), 1)


@dataclass
class StepPlan:
    """The tasks of one step, produced lazily so adaptive chunking can resize chunks."""

    step: Step
    explicit: list[dict[str, ParameterValue]] | None = None
    filters: Mapping[str, set[str]] = field(default_factory=dict)
    max_tasks: int | None = None
    _iterator: StepParameterSpaceIterator | None = None
    _produced: int = 0
    _completed_tasks: int = 0
    _completed_seconds: float = 0.0
    _source: Iterator[tuple[int, Mapping[str, ParameterValue]]] | None = None

    @property
    def name(self) -> str:
        return str(self.step.name)

    @property
    def adaptive(self) -> bool:
        iterator = self._space()
        return bool(iterator is not None and iterator.chunks_adaptive and self.explicit is None)

    def planned_count(self) -> int | None:
        """How many tasks (or chunks) will run; None while adaptive chunking decides."""
        if self.adaptive:
            return None
        count = len(self.explicit) if self.explicit is not None else self._filtered_count()
        return count if self.max_tasks is None else min(count, self.max_tasks)

    def next_item(self) -> TaskItem | None:
        """The next task; its index is its position in the step's whole parameter space."""
        if self.max_tasks is not None and self._produced >= self.max_tasks:
            return None
        following = next(self._values(), None)
        if following is None:
            return None
        index, parameters = following
        self._produced += 1
        return TaskItem(self.name, index, dict(parameters))

    def remaining(self) -> list[TaskItem]:
        """Every task that has not been handed out (they will not run)."""
        items = []
        while (item := self.next_item()) is not None:
            items.append(item)
        return items

    def record_completion(self, item: TaskItem, seconds: float) -> None:
        """Feed a finished chunk's duration into the adaptive chunk size."""
        iterator = self._space()
        if not self.adaptive or iterator is None or iterator.chunks_parameter_name is None:
            return
        chunk = item.parameters[iterator.chunks_parameter_name].value
        self._completed_tasks += len(IntRangeExpr.from_str(chunk))
        self._completed_seconds += seconds
        size = adaptive_chunk_size(
            iterator.chunks_default_task_count or 1,
            self._completed_tasks,
            self._completed_seconds,
            self._target_seconds(iterator),
        )
        if size is not None:
            iterator.chunks_default_task_count = size

    def _target_seconds(self, iterator: StepParameterSpaceIterator) -> float:
        space = self.step.parameterSpace
        assert space is not None and iterator.chunks_parameter_name is not None
        definition = space.taskParameterDefinitions[iterator.chunks_parameter_name]
        target = getattr(definition.chunks, "targetRuntimeSeconds", None)
        return float(str(target)) if target is not None else 0.0

    def _space(self) -> StepParameterSpaceIterator | None:
        if self._iterator is None and self.step.parameterSpace is not None:
            self._iterator = StepParameterSpaceIterator(space=self.step.parameterSpace)
        return self._iterator

    def _values(self) -> Iterator[tuple[int, Mapping[str, ParameterValue]]]:
        if self._source is None:
            self._source = self._make_source()
        return self._source

    def _make_source(self) -> Iterator[tuple[int, Mapping[str, ParameterValue]]]:
        if self.explicit is not None:
            return iter(self._explicit_with_positions(self.explicit))
        iterator = self._space()
        if iterator is None:
            return iter([(0, {})])  # a step without a parameter space runs one task
        return ((i, values) for i, values in enumerate(iterator) if _matches(values, self.filters))

    def _explicit_with_positions(
        self, tasks: list[dict[str, ParameterValue]]
    ) -> list[tuple[int, Mapping[str, ParameterValue]]]:
        """Explicit tasks keep their position in the whole space where it can be known."""
        positions: dict[tuple[tuple[str, str], ...], int] = {}
        if self.step.parameterSpace is not None and not self.adaptive:
            space = StepParameterSpaceIterator(space=self.step.parameterSpace)
            for index, values in enumerate(space):
                positions.setdefault(_key(values), index)
        return [(positions.get(_key(task), order), task) for order, task in enumerate(tasks)]

    def _filtered_count(self) -> int:
        if self.step.parameterSpace is None:
            return 1
        counter = StepParameterSpaceIterator(space=self.step.parameterSpace)
        if not self.filters:
            return len(counter)
        return sum(1 for values in counter if _matches(values, self.filters))


def _key(values: Mapping[str, ParameterValue]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, _canonical(value)) for name, value in values.items()))


def _canonical(value: ParameterValue) -> str:
    """A value's text, with FLOATs compared as numbers ("3" and "3.0" are the same task)."""
    if value.type == ParameterValueType.FLOAT:
        return repr(float(value.value))
    return str(value.value)


def _matches(values: Mapping[str, ParameterValue], filters: Mapping[str, set[str]]) -> bool:
    for name, allowed in filters.items():
        value = values[name]
        if value.type == ParameterValueType.CHUNK_INT:
            frames = {str(frame) for frame in IntRangeExpr.from_str(value.value)}
            if not frames <= allowed:
                return False
        elif _canonical(value) not in allowed:
            return False
    return True


def _dependencies(step: Step) -> list[str]:
    return [str(dependency.dependsOn) for dependency in step.dependencies or []]


def _ordered_steps(job: Job) -> list[Step]:
    """Steps in a dependency order that keeps the template's order where it can."""
    ordered: list[Step] = []
    done: set[str] = set()
    pending = list(job.steps)
    while pending:
        ready = next(step for step in pending if set(_dependencies(step)) <= done)
        ordered.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return ordered


def _with_dependencies(job: Job, name: str) -> set[str]:
    by_name = {step.name: step for step in job.steps}
    wanted, stack = set(), [name]
    while stack:
        current = stack.pop()
        if current not in wanted:
            wanted.add(current)
            stack.extend(_dependencies(by_name[current]))
    return wanted


def plan_steps(
    job: Job,
    *,
    step: str | None = None,
    tasks: TasksSpec | None = None,
    max_tasks: int | None = None,
    run_dependencies: bool = True,
) -> list[StepPlan]:
    """The steps to run, in dependency order, each with its task selection."""
    names = [s.name for s in job.steps]
    if step is not None and step not in names:
        raise SelectionError(
            f"The job has no step named {step!r}. Its steps are: {', '.join(names)}."
        )
    if tasks is not None and step is None and len(names) > 1:
        raise SelectionError(
            f"tasks= selects tasks of one step: also give step= (one of: {', '.join(names)})."
        )
    if max_tasks is not None and max_tasks < 1:
        max_tasks = None  # as with `openjd run`, zero or less means all tasks
    target = step if step is not None else (names[0] if len(names) == 1 else None)
    if step is None:
        selected = set(names)
    else:
        selected = _with_dependencies(job, step) if run_dependencies else {step}
    plans = []
    for candidate in _ordered_steps(job):
        if candidate.name not in selected:
            continue
        # With step=, max_tasks caps that step only; its dependencies run whole.
        capped = step is None or candidate.name == step
        plan = StepPlan(candidate, max_tasks=max_tasks if capped else None)
        if tasks is not None and candidate.name == target:
            _apply_tasks(plan, tasks)
            if plan.filters and plan.planned_count() == 0:
                raise SelectionError(f"tasks={tasks!r} selects no task of step {plan.name!r}.")
        plans.append(plan)
    return plans


def _apply_tasks(plan: StepPlan, tasks: TasksSpec) -> None:
    space = plan.step.parameterSpace
    definitions = dict(space.taskParameterDefinitions) if space is not None else {}
    if isinstance(tasks, str):
        plan.filters = _parse_filters(tasks, definitions, plan.name)
    else:
        plan.explicit = [_explicit_task(task, definitions, plan) for task in tasks]


def _parse_filters(spec: str, definitions: Mapping[str, Any], step: str) -> dict[str, set[str]]:
    """``"Frame=1-5; Camera=left,right"``: each name's allowed values."""
    filters: dict[str, set[str]] = {}
    for part in (p.strip() for p in spec.replace(";", " ").split()):
        name, equals, values = part.partition("=")
        if not equals or not values:
            raise SelectionError(f"tasks={spec!r}: {part!r} is not NAME=VALUES (e.g. 'Frame=1-5').")
        _check_name(name, definitions, step)
        kind = str(definitions[name].type.value)
        if kind in ("INT", "CHUNK[INT]"):
            filters[name] = {str(frame) for frame in _int_range(values, spec)}
        elif kind == "FLOAT":
            filters[name] = {repr(_float(value, spec)) for value in values.split(",")}
        else:
            filters[name] = set(values.split(","))
    return filters


def _float(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SelectionError(f"tasks={spec!r}: {text!r} is not a number.") from None


def _int_range(text: str, spec: str) -> IntRangeExpr:
    try:
        return IntRangeExpr.from_str(text)
    except ValueError as error:
        raise SelectionError(
            f"tasks={spec!r}: {text!r} is not a range of integers: {error}"
        ) from None


def _check_name(name: str, definitions: Mapping[str, Any], step: str) -> None:
    if name not in definitions:
        known = ", ".join(definitions) or "none"
        raise SelectionError(
            f"Step {step!r} has no task parameter {name!r}. Its task parameters are: {known}."
        )


def _spelling(value: Any, definition: Any) -> str:
    """The value as the parameter space writes it (a FLOAT 3.0 given for a range of "3")."""
    text = str(value)
    if str(definition.type.value) != "FLOAT" or not isinstance(definition.range, list):
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    for candidate in definition.range:
        try:
            if float(str(candidate)) == number:
                return str(candidate)
        except ValueError:
            continue
    return text


def _explicit_task(
    task: Mapping[str, Any], definitions: Mapping[str, Any], plan: StepPlan
) -> dict[str, ParameterValue]:
    for name in task:
        _check_name(name, definitions, plan.name)
    missing = [name for name in definitions if name not in task]
    if missing:
        raise SelectionError(
            f"Task {dict(task)!r} of step {plan.name!r} lacks {', '.join(missing)}; "
            f"a task names every task parameter ({', '.join(definitions)})."
        )
    values = {
        name: ParameterValue(
            type=ParameterValueType(definitions[name].type.value),
            value=_spelling(value, definitions[name]),
        )
        for name, value in task.items()
    }
    iterator = plan._space()
    if iterator is not None:
        try:
            iterator.validate_containment(values)
        except ValueError as error:
            raise SelectionError(
                f"Task {dict(task)!r} is not in step {plan.name!r}: {error}"
            ) from None
    return values
