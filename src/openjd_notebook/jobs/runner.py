"""``start_job`` / ``run_job`` and the ``JobRun`` handle.

One orchestration thread per run plans the steps, keeps the executor's nodes busy with
ready tasks (a step is ready once the steps it depends on succeeded), stops new work at
the first failure, and finally has every node exit its environments before the result
is recorded. ``run_job`` is ``start_job(...).wait()``.
"""

from __future__ import annotations

import enum
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openjd.model.v2023_09 import EnvironmentTemplate

from ..sessions import PathMappingRule
from .action_logs import ActionLogWriter
from .errors import JobsError, RunError
from .events import (
    EventBus,
    EventSink,
    ManifestProgress,
    RunEnded,
    RunStarted,
    Subscriber,
    TaskEnded,
)
from .executor import Executor, ExecutorRun
from .interrupts import interrupts_as_requests
from .live_tasks import LIVE_STATES, LiveTask, TaskBoard
from .local import LocalExecutor
from .manifests import (
    DEFAULT_HASH_BUDGET_BYTES,
    DataFlow,
    ManifestEntry,
    capture_manifest,
    path_parameters,
)
from .node import RunContext
from .outcomes import EnvironmentOutcome, RunState, TaskOutcome
from .path_mapping import PathMappingInput, load_path_mapping_rules
from .provenance import (
    action_commands,
    environment_records,
    path_mapping_records,
    python_packages_if_used,
)
from .records import RunRecorder
from .results import JobResult
from .selection import (
    StepPlan,
    TaskItem,
    TasksSpec,
    not_run_counts,
    plan_steps,
    typed_parameters,
)
from .template import JobInstance, Template

if TYPE_CHECKING:
    import pandas as pd

_LOG = logging.getLogger(__name__)
_POLL_S = 1.0
"""A safety net: wait() wakes at once on Ctrl-C or the end of the run, and at least this often."""

__all__ = ["JobRun", "JobRunState", "run_job", "start_job"]

TemplateInput = Template | str | os.PathLike[str]


class JobRunState(str, enum.Enum):
    RUNNING = "running"
    CANCELING = "canceling"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class RunOptions:
    """What ``start_job`` was asked to do; recorded in ``run.json``."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    step: str | None = None
    tasks: TasksSpec | None = None
    max_tasks: int | None = None
    run_dependencies: bool = True
    workers: int = 1
    environments: Sequence[TemplateInput] = ()
    path_mapping_rules: PathMappingInput = None
    session_root: Path | None = None
    keep_workdir: bool = False
    cancel_grace: float | None = None
    hash_budget: int | None = None
    """Bytes each manifest hashes at most; None: ``DEFAULT_HASH_BUDGET_BYTES``."""
    runs_root: Path | None = None
    executor: str | None = None
    """How the executor describes itself, when one was given."""

    def for_record(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "tasks": self.tasks
            if isinstance(self.tasks, str) or self.tasks is None
            else list(self.tasks),
            "max_tasks": self.max_tasks,
            "run_dependencies": self.run_dependencies,
            "workers": self.workers,
            "environments": [str(getattr(e, "source", None) or e) for e in self.environments],
            "keep_workdir": self.keep_workdir,
            "cancel_grace": self.cancel_grace,
            "hash_budget": self.hash_budget,
            "executor": self.executor,
        }


@dataclass(frozen=True)
class _Prepared:
    """What a run needs that can be wrong: checked when it is asked for, not later."""

    environments: list[Template]
    instance: JobInstance
    plans: list[StepPlan]
    rules: tuple[PathMappingRule, ...]


def _prepare(template: Template, options: RunOptions) -> _Prepared:
    """Instantiate the job, select its tasks and read the path mapping rules.

    Raises ``ParameterError``, ``TemplateError``, ``SelectionError`` or ``PathMappingError``
    at the call, before any thread starts, so a mistake is an exception where it was made.
    """
    environments = [_as_template(e, "an environment") for e in options.environments]
    instance = template.instantiate(options.parameters, environments=environments)
    plans = plan_steps(
        instance.job,
        step=options.step,
        tasks=options.tasks,
        max_tasks=options.max_tasks,
        run_dependencies=options.run_dependencies,
    )
    rules = tuple(load_path_mapping_rules(options.path_mapping_rules))
    return _Prepared(environments, instance, plans, rules)


def _as_template(value: TemplateInput, what: str) -> Template:
    if isinstance(value, Template):
        return value
    if isinstance(value, (str, os.PathLike)):
        return Template.load(value)
    raise TypeError(f"{what} must be a Template or a path to one, not {type(value).__name__}")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class JobRun:
    """A running (or finished) job. Thread-safe: ``cancel`` and ``wait`` from any thread."""

    def __init__(
        self,
        template: Template,
        options: RunOptions,
        executor: Executor,
        subscribers: Sequence[Subscriber] = (),
        prepared: _Prepared | None = None,
    ) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.template = template
        self.options = options
        self._prepared = prepared if prepared is not None else _prepare(template, options)
        self._executor = executor
        self._events = EventBus(self.run_id)
        self._sink: EventSink = self._events
        # First, so whoever hears of a task can already find it in ``tasks``.
        self._board = TaskBoard()
        self._events.subscribe(self._board.handle)
        for subscriber in subscribers:
            self._events.subscribe(subscriber)
        self._lock = threading.Lock()
        self._state = JobRunState.RUNNING
        self._cancel_requested: bool | None = None  # None, or the force flag of the request
        self._execution: ExecutorRun | None = None
        self._recorder: RunRecorder | None = None
        self._scheduler: _Scheduler | None = None
        self._abandon_reason: str | None = None
        # Logs that could not be written (a full disk): the action they belong to fails.
        self._log_failures: dict[str, str] = {}
        self._result: JobResult | None = None
        self._done = threading.Event()
        # The queues of callers blocked in wait(): the end of the run wakes them at once.
        self._waiters: list[queue.SimpleQueue[bool | None]] = []
        self._thread = threading.Thread(target=self._main, name=f"openjd-run-{self.run_id}")
        self._thread.daemon = True
        self._thread.start()

    # ---- public handle -------------------------------------------------------------------

    @property
    def state(self) -> JobRunState:
        return self._state

    @property
    def result(self) -> JobResult | None:
        """The result once the run ended, else None."""
        return self._result

    def done(self) -> bool:
        return self._done.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the end; True once ended. Interrupts propagate."""
        return self._done.wait(timeout)

    @property
    def tasks(self) -> pd.DataFrame:
        """A snapshot of the tasks that started so far, one row each, shaped like
        ``JobResult.tasks``; a task's state is "running" until it ends."""
        return self._board.frame(_parameter_columns(self._prepared.plans))

    def wait_for_task(
        self,
        step: str | None = None,
        task: int | None = None,
        *,
        state: str = "running",
        timeout: float | None = None,
    ) -> LiveTask:
        """Block until a task (of ``step``, with index ``task``) reached ``state`` and return it.

        ``state`` is "running" (the task started; it may have ended since: the returned
        ``LiveTask.state`` says), "ended" (in any state), or a final state such as "success"
        or "canceled". Raises ``TimeoutError`` after ``timeout`` seconds and
        ``NoSuchTaskError`` (a ``LookupError``) when the run ends first.
        """
        if state not in LIVE_STATES:
            raise ValueError(f"state must be one of {', '.join(LIVE_STATES)}; got {state!r}")

        def matches(live: LiveTask) -> bool:
            return live.step == (step or live.step) and task in (None, live.task)

        which = f"of step {step!r} " if step is not None else ""
        which += f"with index {task} " if task is not None else ""
        return self._board.wait_for(
            lambda live: matches(live) and live.reached(state), timeout, f"{which}reached {state!r}"
        )

    def on_event(self, subscriber: Subscriber) -> None:
        """Receive this run's events from now on, in order, on the run's event thread."""
        self._events.subscribe(subscriber)

    def cancel(self, force: bool = False) -> None:
        """Cancel: running actions get their own cancelation (grace capped by ``cancel_grace``);
        ``force=True`` kills them now. Entered environments still exit. Safe to repeat."""
        with self._lock:
            if self._done.is_set():
                return
            self._state = JobRunState.CANCELING
            self._cancel_requested = bool(force or self._cancel_requested)
            execution = self._execution
        if execution is not None:
            grace = 0.0 if force else self.options.cancel_grace
            execution.cancel(force=force, grace_s=grace)

    def abandon(self, reason: str, timeout: float = 2.0) -> JobResult | None:
        """End the run now because the process it lives in is going away (a kernel shutting
        down or restarting): kill the running actions, give each environment exit at most a
        moment, and if the run has not ended within ``timeout`` seconds write its final
        record from what is known (state canceled, ``reason`` as the error, a row for every
        task that ran). Returns the result that was recorded, if any.
        """
        with self._lock:
            if self._done.is_set():
                return self._result
            self._state = JobRunState.CANCELING
            self._cancel_requested = True
            self._abandon_reason = reason
            execution = self._execution
        if execution is not None:
            # The graceful request only bounds the environment exits that follow; the
            # forced one kills what runs.
            execution.cancel(force=False, grace_s=min(0.5, timeout / 4))
            execution.cancel(force=True, grace_s=0.0)
        if self._done.wait(timeout):
            return self._result
        recorder, scheduler = self._recorder, self._scheduler
        if recorder is None:
            return None
        _LOG.warning("openjd-notebook: run %s: %s; recording it as canceled", self.run_id, reason)
        return recorder.finish(
            state="canceled",
            ended=_now(),
            tasks=scheduler.snapshot(reason) if scheduler is not None else [],
            environments=[],
            parameter_columns=_parameter_columns(self._prepared.plans),
            error=reason,
        )

    def wait(self, timeout: float | None = None) -> JobResult:
        """Block until the run ends and return its result.

        Ctrl-C while waiting cancels gracefully, a second Ctrl-C kills; the run still
        exits its environments, then ``KeyboardInterrupt`` is raised again.
        """
        # Interrupts put True/False (force or not); the end of the run puts None.
        requests: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        deadline = None if timeout is None else time.monotonic() + timeout
        interrupted = False
        with self._lock:
            self._waiters.append(requests)
        try:
            with interrupts_as_requests(requests.put):
                while not self._done.is_set():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(f"The run did not end within {timeout} seconds.")
                    try:
                        force = requests.get(
                            timeout=_POLL_S if left is None else min(_POLL_S, left)
                        )
                    except queue.Empty:
                        continue
                    if force is None:
                        continue
                    interrupted = True
                    self.cancel(force=force)
        finally:
            with self._lock:
                self._waiters.remove(requests)
        if interrupted:
            raise KeyboardInterrupt(f"the run of {self.template.name!r} was canceled")
        assert self._result is not None
        return self._result

    def __repr__(self) -> str:
        return f"<JobRun {self.run_id} {self.template.name!r} {self._state.value}>"

    # ---- the orchestration thread --------------------------------------------------------

    def _main(self) -> None:
        started = _now()
        try:
            result = self._execute(started)
        except Exception as error:
            result = self._failed_before_start(started, error)
        self._finish(result)

    def _execute(self, started: datetime) -> JobResult:
        options = self.options
        environments, instance = self._prepared.environments, self._prepared.instance
        plans, rules = self._prepared.plans, self._prepared.rules
        recorder = RunRecorder.create(
            root=options.runs_root,
            selection=lambda: plans,
            job_name=instance.job.name,
            template_text=self.template.text,
            template_digest=self.template.digest,
            parameters=dict(instance.parameter_strings),
            options=options.for_record(),
            started=started,
            run_id=self.run_id,
            parameter_columns=_parameter_columns(plans),
            provenance=self._provenance(),
        )
        self._recorder = recorder
        self._events.publish(
            RunStarted(
                self.run_id,
                instance.job.name,
                tuple(plan.name for plan in plans),
                {plan.name: plan.planned_count() for plan in plans},
                started,
                recorder.run_dir,
            )
        )
        context = RunContext(
            run_id=self.run_id,
            job=instance.job,
            parameter_values=instance.parameter_values,
            revision_extensions=instance.revision_extensions,
            job_symbol_table=getattr(instance, "job_symbol_table", None),
            step_symbol_tables=instance.step_symbol_tables,
            external_environments=[_environment_model(e) for e in environments],
            path_mapping_rules=rules,
            session_root=options.session_root,
            keep_workdir=options.keep_workdir,
        )
        # What went in, before the first task can change it.
        recorder.record_inputs(self._manifest("inputs", ("IN", "INOUT")))
        logs = ActionLogWriter(recorder.run_dir, self._events, on_failure=self._log_write_failed)
        self._sink = logs
        error: str | None = None
        try:
            tasks, environment_outcomes = self._schedule(plans, context, logs)
        except Exception as failure:  # e.g. the executor could not start: record it, not hang
            scheduler = self._scheduler
            tasks, environment_outcomes = scheduler.outcomes() if scheduler else [], []
            error = _describe_error(failure)
        finally:
            logs.close()
        # Counted, never listed: a canceled step of a million tasks costs what ran.
        not_run = _Scheduler.not_run(plans, tasks)
        first_not_run = self._scheduler.first_not_run if self._scheduler else None
        environment_outcomes = [self._checked_environment(e) for e in environment_outcomes]
        # What came out, whatever the end: a failed or canceled run's outputs tell most.
        outputs = self._manifest("outputs", ("OUT", "INOUT"))
        return recorder.finish(
            state="failed" if error else self._final_state(tasks, environment_outcomes, not_run),
            ended=_now(),
            tasks=tasks,
            not_run=not_run,
            outputs=outputs,
            environments=environment_outcomes,
            parameter_columns=_parameter_columns(plans),
            error=error
            or self._abandon_reason
            or _first_error(tasks, environment_outcomes, first_not_run),
        )

    def _provenance(self) -> dict[str, Any]:
        """What makes the run repeatable beyond its template, for the record."""
        instance = self._prepared.instance
        return {
            "environment_templates": environment_records(self._prepared.environments),
            "path_mapping_rules": path_mapping_records(self._prepared.rules),
            "python_packages": python_packages_if_used(
                action_commands(instance.job), instance.parameter_strings
            ),
        }

    def _manifest(self, kind: str, flows: tuple[DataFlow, ...]) -> tuple[ManifestEntry, ...]:
        """The manifest of the PATH parameters with these data flows; never fails the run."""
        definitions = [
            *(self.template.model.parameterDefinitions or ()),
            *(d for e in self._prepared.environments for d in e.model.parameterDefinitions or ()),
        ]
        parameters = path_parameters(definitions, self._prepared.instance.parameter_values, flows)
        if not parameters:
            return ()

        def progress(files: int, files_total: int, done: int, total: int) -> None:
            self._events.publish(ManifestProgress(kind, files, files_total, done, total))

        budget = self.options.hash_budget
        try:
            return capture_manifest(
                parameters,
                hash_budget_bytes=DEFAULT_HASH_BUDGET_BYTES if budget is None else budget,
                progress=progress,
            )
        except Exception:
            _LOG.exception("openjd-notebook: run %s: could not capture its %s", self.run_id, kind)
            return ()

    def _schedule(
        self, plans: list[StepPlan], context: RunContext, events: EventSink
    ) -> tuple[list[TaskOutcome], list[EnvironmentOutcome]]:
        execution = self._executor.open(context, events)
        with self._lock:
            self._execution = execution
            cancel = self._cancel_requested
        if cancel is not None:
            execution.cancel(force=cancel, grace_s=self.options.cancel_grace)
        scheduler = _Scheduler(plans, execution, self)
        self._scheduler = scheduler
        try:
            scheduler.run()
        finally:
            environment_outcomes = execution.close()
        return scheduler.outcomes(), environment_outcomes

    def _final_state(
        self,
        tasks: Sequence[TaskOutcome],
        environments: Sequence[EnvironmentOutcome],
        not_run: Mapping[str, int],
    ) -> RunState:
        all_ok = (
            not any(not_run.values())
            and all(t.state == "success" for t in tasks)
            and all(e.state == "success" for e in environments)
        )
        if all_ok:
            return "success"
        return "canceled" if self._cancel_requested is not None else "failed"

    def _failed_before_start(self, started: datetime, error: Exception) -> JobResult:
        message = _describe_error(error)
        return JobResult(
            job_name=self.template.name,
            state="failed",
            started=started,
            ended=_now(),
            tasks=[],
            environments=[],
            parameter_columns={},
            run_dir=None,
            run_id=self.run_id,
            error=message,
        )

    def _finish(self, result: JobResult) -> None:
        with self._lock:
            self._result = result
            self._state = JobRunState(result.state)
        self._events.publish(RunEnded(self.run_id, result.state, _now(), result))
        self._events.close(timeout=30)
        self._done.set()
        with self._lock:
            for waiter in self._waiters:
                waiter.put(None)

    # ---- used by the scheduler -----------------------------------------------------------

    def stopping(self) -> bool:
        return self._cancel_requested is not None or bool(self._log_failures)

    def publish_outcome(self, outcome: TaskOutcome) -> None:
        recorder = self._recorder
        if recorder is not None:
            try:
                recorder.append_task(outcome)
            except OSError as exc:
                _LOG.warning("openjd-notebook: could not append a task row to the record: %s", exc)
        self._sink.publish(TaskEnded(outcome))

    def checked_outcome(self, outcome: TaskOutcome) -> TaskOutcome:
        """``outcome``, failed with the reason when its log could not be written."""
        reason = self._log_failures.get(outcome.log_path or "")
        if reason is None or outcome.state in ("failed", "timeout"):
            return outcome
        return replace(outcome, state="failed", fail_message=reason)

    def _checked_environment(self, outcome: EnvironmentOutcome) -> EnvironmentOutcome:
        failed = outcome.log_path in self._log_failures and outcome.state == "success"
        return replace(outcome, state="failed") if failed else outcome

    def _log_write_failed(self, log_name: str, reason: str) -> None:
        """A log could not be written: fail its action and stop the run like any failure.

        Called on whichever thread wrote the line, possibly holding a node's lock: the
        cancel goes out from a thread of its own.
        """
        with self._lock:
            self._log_failures[log_name] = reason
            execution = self._execution
        _LOG.error("openjd-notebook: %s: %s", log_name, reason)
        if execution is not None:
            threading.Thread(
                target=self.stop_after_failure,
                args=(execution,),
                name=f"openjd-run-{self.run_id}-log-failure",
                daemon=True,
            ).start()

    def stop_after_failure(self, execution: ExecutorRun) -> None:
        # The first failure stops new work and cancels the rest gracefully.
        execution.cancel(force=False, grace_s=self.options.cancel_grace)


class _Scheduler:
    """Keeps the executor busy with ready tasks until done, failed or canceled.

    Only tasks handed to the executor are held (as they end); the rest of a step's selection
    is counted at the end, never listed, so a step of a million tasks costs what ran.
    """

    def __init__(self, plans: list[StepPlan], execution: ExecutorRun, run: JobRun) -> None:
        self._plans = plans
        self._execution = execution
        self._run = run
        self._exhausted: set[str] = set()
        self._succeeded_steps: set[str] = set()
        self._in_flight: dict[tuple[str, int], TaskItem] = {}
        self._outcomes: dict[tuple[str, int], TaskOutcome] = {}
        self._failed = False
        self._selected = {plan.name for plan in plans}
        self._unfinished_steps: set[str] = set()
        self.first_not_run: TaskOutcome | None = None
        """The first task an executor handed back unrun (a node whose environment failed)."""

    def run(self) -> None:
        while True:
            if not self._stopping():
                self._fill()
            if not self._in_flight:
                return
            outcome = self._execution.next_outcome()
            if outcome is not None:
                self._record(outcome)

    @staticmethod
    def not_run(plans: Sequence[StepPlan], ran: Sequence[TaskOutcome] = ()) -> dict[str, int]:
        """Per step, how many tasks ``plans`` select that have no row in ``ran``."""
        return not_run_counts(plans, ran)

    def outcomes(self) -> list[TaskOutcome]:
        """Every task that ran (or was canceled once handed out), in plan order."""
        order = {plan.name: position for position, plan in enumerate(self._plans)}
        return sorted(self._outcomes.values(), key=lambda o: (order[o.step], o.task))

    def not_run_counts(self) -> dict[str, int]:
        """Per step, the selected tasks that did not run; zeros left out."""
        return not_run_counts(self._plans, list(self._outcomes.values()))

    def snapshot(self, reason: str) -> list[TaskOutcome]:
        """From another thread, while the run goes on: the tasks that ended, and those in
        flight as canceled for ``reason``."""
        ended = list(self._outcomes.values())
        in_flight = [
            replace(_not_run(item), state="canceled", fail_message=reason)
            for item in list(self._in_flight.values())
        ]
        order = {plan.name: position for position, plan in enumerate(self._plans)}
        return sorted(ended + in_flight, key=lambda o: (order[o.step], o.task))

    def _stopping(self) -> bool:
        return self._failed or self._run.stopping()

    def _fill(self) -> None:
        while self._fill_once():
            pass  # a step finished: the steps that depend on it may be ready now

    def _fill_once(self) -> bool:
        """Submit ready tasks up to capacity; True when a step finished on the way."""
        for plan in self._ready_plans():
            while len(self._in_flight) < self._execution.capacity:
                item = plan.next_item()
                if item is None:
                    self._exhausted.add(plan.name)
                    if self._check_step_done(plan.name):
                        return True
                    break
                self._in_flight[(item.step, item.index)] = item
                self._execution.submit(item)
        return False

    def _ready_plans(self) -> list[StepPlan]:
        ready = []
        for plan in self._plans:
            if plan.name in self._exhausted:
                continue
            needs = {d.dependsOn for d in plan.step.dependencies or []} & self._selected
            if needs <= self._succeeded_steps:
                ready.append(plan)
        return ready

    def _record(self, outcome: TaskOutcome) -> None:
        outcome = self._run.checked_outcome(outcome)
        key = (outcome.step, outcome.task)
        item = self._in_flight.pop(key, None)
        if outcome.state == "not_run":
            # Handed back unrun: counted with the rest of the selection, not kept as a row.
            self._unfinished_steps.add(outcome.step)
            if self.first_not_run is None:
                self.first_not_run = outcome
        else:
            self._outcomes[key] = outcome
            self._run.publish_outcome(outcome)
            plan = next(p for p in self._plans if p.name == outcome.step)
            if item is not None and outcome.duration_s is not None:
                plan.record_completion(item, outcome.duration_s)
        if outcome.state != "success" and not self._failed:
            self._failed = True
            self._run.stop_after_failure(self._execution)
        self._check_step_done(outcome.step)

    def _check_step_done(self, step: str) -> bool:
        """Mark ``step`` succeeded once all its tasks ran and succeeded; True if it just did."""
        if step in self._succeeded_steps or step not in self._exhausted:
            return False
        if step in self._unfinished_steps or any(key[0] == step for key in self._in_flight):
            return False
        if all(o.state == "success" for (s, _), o in self._outcomes.items() if s == step):
            self._succeeded_steps.add(step)
            return True
        return False


def _describe_error(error: Exception) -> str:
    return str(error) if isinstance(error, JobsError) else f"{type(error).__name__}: {error}"


def _not_run(item: TaskItem) -> TaskOutcome:
    return TaskOutcome(
        step=item.step, task=item.index, parameters=typed_parameters(item.parameters)
    )


def _parameter_columns(plans: Sequence[StepPlan]) -> dict[str, list[tuple[str, str]]]:
    columns: dict[str, list[tuple[str, str]]] = {}
    for plan in plans:
        space = plan.step.parameterSpace
        definitions = space.taskParameterDefinitions if space is not None else {}
        columns[plan.name] = [(name, str(d.type.value)) for name, d in definitions.items()]
    return columns


def _first_error(
    tasks: Sequence[TaskOutcome],
    environments: Sequence[EnvironmentOutcome],
    first_not_run: TaskOutcome | None = None,
) -> str | None:
    problems = [t for t in tasks if t.state != "success"]
    if first_not_run is not None and first_not_run.fail_message:
        problems.append(first_not_run)  # why a node handed tasks back: its environment failed
    if problems:
        task = problems[0]
        detail = task.fail_message or f"exit code {task.exit_code}"
        return f"{task.step}[{task.task}] {task.state}: {detail}"
    for environment in environments:
        if environment.state != "success":
            return f"environment {environment.name!r} on {environment.worker}: {environment.state}"
    return None


def _environment_model(template: Template) -> Any:
    model = template.model
    if not isinstance(model, EnvironmentTemplate):
        raise RunError(
            f"{template.name!r} is a job template; environments= takes environment templates."
        )
    return model.environment


def start_job(
    template: TemplateInput,
    parameters: Mapping[str, Any] | None = None,
    *,
    step: str | None = None,
    tasks: TasksSpec | None = None,
    max_tasks: int | None = None,
    run_dependencies: bool = True,
    workers: int = 1,
    environments: Sequence[TemplateInput] = (),
    path_mapping_rules: PathMappingInput = None,
    session_root: str | os.PathLike[str] | None = None,
    keep_workdir: bool = False,
    cancel_grace: float | None = None,
    on_event: Subscriber | Sequence[Subscriber] | None = None,
    runs_root: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
    hash_budget: int | None = None,
) -> JobRun:
    """Start running a job in the background and return its ``JobRun`` handle.

    Bad input raises here, before anything starts: ``ParameterError`` (listing what the
    template expects), ``TemplateError``, ``SelectionError``, ``PathMappingError``.

    PATH job parameters with ``dataFlow`` IN/INOUT are hashed before the first task and
    OUT/INOUT ones after the run (``JobResult.inputs``/``outputs``); ``hash_budget`` caps the
    bytes hashed per manifest (beyond it: size and mtime only).
    """
    options = RunOptions(
        parameters=dict(parameters or {}),
        step=step,
        tasks=tasks,
        max_tasks=max_tasks,
        run_dependencies=run_dependencies,
        workers=workers,
        environments=tuple(environments),
        path_mapping_rules=path_mapping_rules,
        session_root=Path(session_root) if session_root is not None else None,
        keep_workdir=keep_workdir,
        cancel_grace=cancel_grace,
        hash_budget=hash_budget,
        runs_root=Path(runs_root) if runs_root is not None else None,
        executor=repr(executor) if executor is not None else None,
    )
    subscribers = [on_event] if callable(on_event) else list(on_event or [])
    job_template = _as_template(template, "template")
    prepared = _prepare(job_template, options)
    return JobRun(job_template, options, executor or LocalExecutor(workers), subscribers, prepared)


def run_job(
    template: TemplateInput, parameters: Mapping[str, Any] | None = None, **options: Any
) -> JobResult:
    """Run a job to its end and return the ``JobResult`` (``start_job(...).wait()``).

    Bad input raises before anything runs, as for ``start_job``.
    """
    return start_job(template, parameters, **options).wait()
