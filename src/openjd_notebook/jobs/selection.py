"""Which steps and tasks a run executes, in which order.

Steps come in dependency order; each step's tasks (or chunks) come from openjd-model's
``StepParameterSpaceIterator``, narrowed by ``tasks=`` and ``max_tasks``. Adaptive chunk
sizes (TASK_CHUNKING ``targetRuntimeSeconds``) are recomputed as chunks complete.

No step's space is ever listed whole: ``tasks="Frame=1"`` of 100,000,000 tasks finds its one
index by arithmetic (``task_indices``), and the tasks that did not run are counted per step
(``not_run_counts``) and listed only when asked (``not_run_outcomes``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from .outcomes import TaskOutcome
from .task_indices import IndexSet, Wanted, canonical, matching_indices

__all__ = [
    "SelectionError",
    "StepPlan",
    "TaskItem",
    "TasksSpec",
    "adaptive_chunk_size",
    "not_run_counts",
    "not_run_outcomes",
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
    """The tasks of one step, produced lazily so adaptive chunking can resize chunks.

    The parameter space is never listed: a filter's matching indices come from the space's
    structure (``task_indices``), explicit tasks find their index the same way, and the tasks
    that did not run are counted, or listed one at a time when asked.
    """

    step: Step
    explicit: list[dict[str, ParameterValue]] | None = None
    filters: Mapping[str, Wanted] = field(default_factory=dict)
    max_tasks: int | None = None
    _iterator: StepParameterSpaceIterator | None = None
    _produced: int = 0
    _completed_tasks: int = 0
    _completed_seconds: float = 0.0
    _source: Iterator[tuple[int, Mapping[str, ParameterValue]]] | None = None
    _matching: IndexSet | None = None

    @property
    def name(self) -> str:
        return str(self.step.name)

    @property
    def adaptive(self) -> bool:
        iterator = self._space()
        return bool(iterator is not None and iterator.chunks_adaptive and self.explicit is None)

    def fresh(self) -> StepPlan:
        """The same selection, from its first task again (and at the default chunk size)."""
        return StepPlan(self.step, self.explicit, self.filters, self.max_tasks)

    def planned_count(self) -> int | None:
        """How many tasks (or chunks) will run; None while adaptive chunking decides."""
        if self.adaptive:
            return None
        count = len(self.explicit) if self.explicit is not None else self._selected_count()
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

    def not_run_count(self, ran: Sequence[tuple[int, Mapping[str, Any]]]) -> int:
        """How many selected tasks have no row among ``ran`` (index, typed parameters).

        Arithmetic unless adaptive chunking (whose chunks only exist by being listed).
        """
        planned = self.planned_count()
        if planned is None:
            return sum(1 for _ in self.not_run_items(ran))
        return max(planned - len({index for index, _ in ran}), 0)

    def not_run_items(self, ran: Sequence[tuple[int, Mapping[str, Any]]]) -> Iterator[TaskItem]:
        """The selected tasks with no row among ``ran``, in order, one at a time.

        With adaptive chunking the chunks are those of the template's default chunk size,
        less the frames a chunk that ran covered: the sizes the run chose are gone.
        """
        plan = self.fresh()
        if plan.adaptive:
            yield from plan._uncovered_chunks(ran)
            return
        done = {index for index, _ in ran}
        while (item := plan.next_item()) is not None:
            if item.index not in done:
                yield item

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

    def _selected(self) -> IndexSet:
        """The indices the filters select (not for adaptive chunking); computed once."""
        if self._matching is None:
            assert self.step.parameterSpace is not None
            self._matching = matching_indices(self.step.parameterSpace, self.filters)
        return self._matching

    def _selected_count(self) -> int:
        return 1 if self.step.parameterSpace is None else len(self._selected())

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
        if self.adaptive:  # chunks exist only as the iterator makes them: filter as they come
            return ((i, v) for i, v in enumerate(iterator) if _matches(v, self.filters))
        if not self.filters:
            return enumerate(StepParameterSpaceIterator(space=self.step.parameterSpace))
        return ((index, iterator[index]) for index in self._selected())

    def _explicit_with_positions(
        self, tasks: list[dict[str, ParameterValue]]
    ) -> list[tuple[int, Mapping[str, ParameterValue]]]:
        """Explicit tasks keep their position in the whole space where it can be known."""
        iterator = self._space()
        if iterator is None or self.step.parameterSpace is None:
            return list(enumerate(tasks))
        if iterator.chunks_adaptive:
            return self._positions_by_scanning(tasks)
        positions: list[tuple[int, Mapping[str, ParameterValue]]] = []
        for order, task in enumerate(tasks):
            exact = {name: Wanted(texts=frozenset([canonical(v)])) for name, v in task.items()}
            position = next(iter(matching_indices(self.step.parameterSpace, exact)), None)
            positions.append((order if position is None else position, task))
        return positions

    def _positions_by_scanning(
        self, tasks: list[dict[str, ParameterValue]]
    ) -> list[tuple[int, Mapping[str, ParameterValue]]]:
        """Adaptive chunks have positions only in iteration order: scan until all are found."""
        wanted = {_key(task): order for order, task in enumerate(tasks)}
        found: dict[tuple[tuple[str, str], ...], int] = {}
        space = StepParameterSpaceIterator(space=self.step.parameterSpace)
        for index, values in enumerate(space):
            key = _key(values)
            if key in wanted:
                found.setdefault(key, index)
                if len(found) == len(wanted):
                    break
        return [(found.get(_key(task), order), task) for order, task in enumerate(tasks)]

    def _uncovered_chunks(self, ran: Sequence[tuple[int, Mapping[str, Any]]]) -> Iterator[TaskItem]:
        """This (fresh) plan's chunks, each less the frames that ``ran`` covered."""
        iterator = self._space()
        assert iterator is not None and iterator.chunks_parameter_name is not None
        chunked = iterator.chunks_parameter_name
        covered: dict[tuple[tuple[str, str], ...], set[int]] = {}
        for _, parameters in ran:
            chunk = parameters.get(chunked)
            if isinstance(chunk, str) and chunk:
                key = _others_key(parameters, chunked)
                covered.setdefault(key, set()).update(IntRangeExpr.from_str(chunk))
        while (item := self.next_item()) is not None:
            done = covered.get(_others_key(typed_parameters(item.parameters), chunked), set())
            chunk = item.parameters[chunked]
            frames = list(IntRangeExpr.from_str(chunk.value))
            left = [frame for frame in frames if frame not in done]
            if len(left) == len(frames):
                yield item
            elif left:
                value = ParameterValue(type=chunk.type, value=str(IntRangeExpr.from_list(left)))
                yield replace(item, parameters={**item.parameters, chunked: value})


def _key(values: Mapping[str, ParameterValue]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, canonical(value)) for name, value in values.items()))


def _others_key(parameters: Mapping[str, Any], skip: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in parameters.items() if name != skip))


def _matches(values: Mapping[str, ParameterValue], filters: Mapping[str, Wanted]) -> bool:
    return all(wanted.accepts(values[name]) for name, wanted in filters.items())


def not_run_counts(plans: Sequence[StepPlan], ran: Sequence[TaskOutcome]) -> dict[str, int]:
    """Per step of ``plans``, how many selected tasks have no row in ``ran``; zeros left out."""
    counts = {plan.name: plan.not_run_count(_ran_in(plan.name, ran)) for plan in plans}
    return {step: count for step, count in counts.items() if count}


def not_run_outcomes(
    plans: Sequence[StepPlan], ran: Sequence[TaskOutcome], step: str | None = None
) -> Iterator[TaskOutcome]:
    """The selected tasks with no row in ``ran``, as "not_run" outcomes, in plan order."""
    for plan in plans:
        if step is None or plan.name == step:
            for item in plan.not_run_items(_ran_in(plan.name, ran)):
                yield TaskOutcome(item.step, item.index, typed_parameters(item.parameters))


def _ran_in(step: str, ran: Sequence[TaskOutcome]) -> list[tuple[int, Mapping[str, Any]]]:
    return [(t.task, t.parameters) for t in ran if t.step == step and t.state != "not_run"]


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


def _parse_filters(spec: str, definitions: Mapping[str, Any], step: str) -> dict[str, Wanted]:
    """``"Frame=1-5; Camera=left,right"``: each name's allowed values."""
    filters: dict[str, Wanted] = {}
    for part in (p.strip() for p in spec.replace(";", " ").split()):
        name, equals, values = part.partition("=")
        if not equals or not values:
            raise SelectionError(f"tasks={spec!r}: {part!r} is not NAME=VALUES (e.g. 'Frame=1-5').")
        _check_name(name, definitions, step)
        kind = str(definitions[name].type.value)
        if kind in ("INT", "CHUNK[INT]"):
            filters[name] = Wanted(numbers=_int_range(values, spec))
        elif kind == "FLOAT":
            filters[name] = Wanted(
                texts=frozenset(repr(_float(v, spec)) for v in values.split(","))
            )
        else:
            filters[name] = Wanted(texts=frozenset(values.split(",")))
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
