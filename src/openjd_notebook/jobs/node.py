"""A render node: one session that takes tasks one at a time.

A node enters the job's environments when it takes its first task, and a step's
environments when it takes its first task of that step (leaving the previous step's
environments first). A node that never gets a task enters nothing. ``close`` exits
whatever is entered, in reverse, even after a failure or a cancel.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from openjd.model import Job, JobParameterValues, RevisionExtensions, Step

from ..sessions import ActionState, ActionStatus, PathMappingRule, Session, SessionState
from ..sessions._types import EnvironmentModel
from .action_logs import environment_log_name, task_log_name
from .events import (
    ActionSource,
    EnvironmentEntered,
    EnvironmentExited,
    EventSink,
    TaskProgress,
    TaskStarted,
    TaskStatus,
)
from .outcomes import EnvironmentOutcome, EnvironmentScope, TaskOutcome, TaskState
from .selection import TaskItem, typed_parameters

__all__ = ["Node", "RunContext"]

# Why a task stopped, for a table row, when the action itself did not say.
_STOP_REASONS: Mapping[TaskState, str] = {
    "timeout": "ran past its timeout",
    "canceled": "stopped while running",
}
_ACTION_STATES: Mapping[ActionState, TaskState] = {
    ActionState.SUCCESS: "success",
    ActionState.FAILED: "failed",
    ActionState.CANCELED: "canceled",
    ActionState.TIMEOUT: "timeout",
}


@dataclass(frozen=True)
class RunContext:
    """Everything a node needs to run its share of one job: plain values, so it can travel."""

    run_id: str
    job: Job
    parameter_values: JobParameterValues
    revision_extensions: RevisionExtensions
    job_symbol_table: Any
    step_symbol_tables: Mapping[str, Any]
    external_environments: Sequence[EnvironmentModel]
    path_mapping_rules: Sequence[PathMappingRule]
    session_root: Path | None
    keep_workdir: bool
    steps: Mapping[str, Step] = field(default_factory=dict)


@dataclass
class _Entered:
    identifier: str
    name: str
    scope: EnvironmentScope
    step: str | None
    started: datetime
    log_path: str
    entered_ok: bool


class _ActionLog(logging.Handler):
    """Publishes the session's records as log lines of the current action."""

    def __init__(self, worker: str, events: EventSink) -> None:
        super().__init__()
        self._events = events
        self._idle = ActionSource(worker, None)
        self._source = self._idle

    def switch(self, source: ActionSource | None) -> None:
        self.acquire()
        try:
            self._source = source or self._idle
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        self._events.publish_line(self._source, record.getMessage())

    def note(self, text: str) -> None:
        """A line of the runner's own in the current action's log."""
        self._events.publish_line(self._source, text)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Node:
    """One worker of a run; not thread-safe except for ``cancel``."""

    def __init__(self, name: str, context: RunContext, events: EventSink) -> None:
        self.name = name
        self._context = context
        self._events = events
        self._steps = context.steps or {step.name: step for step in context.job.steps}
        self._lock = threading.Lock()
        self._session: Session | None = None
        self._log = _ActionLog(name, events)
        self._entered: list[_Entered] = []
        self._step: str | None = None
        self._environment_outcomes: list[EnvironmentOutcome] = []
        self._canceled = False
        self._current: TaskItem | None = None
        self._last_status = ActionStatus(ActionState.RUNNING)
        self._broken: str | None = None
        # Environment exits are cleanup: a graceful cancel lets a running one finish, and
        # bounds it (and every later one) by the cancel's grace period instead.
        self._exit_running: str | None = None
        self._exit_serial = 0
        self._cleanup_grace_s: float | None = None
        self._exit_timer: threading.Timer | None = None

    # ---- tasks ---------------------------------------------------------------------------

    def run(self, item: TaskItem) -> TaskOutcome:
        """Run one task, entering environments first as needed."""
        if self._canceled:
            return self._not_run(item, "canceled", None)
        self._prepare_for(item.step)
        if self._broken is not None:
            return self._not_run(item, "not_run", self._broken)
        return self._run_task(item)

    def _run_task(self, item: TaskItem) -> TaskOutcome:
        session = self._ensure_session()
        self._log.switch(ActionSource(self.name, item.step, item.index))
        started = _now()
        self._current = item
        self._last_status = ActionStatus(ActionState.RUNNING)
        self._events.publish(
            TaskStarted(
                item.step, item.index, typed_parameters(item.parameters), self.name, started
            )
        )
        step = self._steps[item.step]
        status = self._run_action(
            lambda: session.run_task(
                step_script=step.script,
                task_parameter_values=dict(item.parameters),
                step_name=item.step,
                resolved_symtab=self._context.step_symbol_tables.get(item.step),
            )
        )
        self._current = None
        self._log.switch(None)
        return self._task_outcome(item, status, started, task_log_name(item.step, item.index))

    def _task_outcome(
        self, item: TaskItem, status: ActionStatus | None, started: datetime, log_path: str
    ) -> TaskOutcome:
        if status is None:
            return self._not_run(item, "canceled", "canceled before it started")
        state = _ACTION_STATES[status.state]
        return TaskOutcome(
            step=item.step,
            task=item.index,
            parameters=typed_parameters(item.parameters),
            state=state,
            exit_code=status.exit_code,
            started=status.started_at or started,
            ended=status.ended_at or _now(),
            progress=status.progress,
            status_message=status.status_message,
            fail_message=status.fail_message or status.launch_error or _STOP_REASONS.get(state),
            worker=self.name,
            log_path=log_path,
            attempts=1,
        )

    def _not_run(self, item: TaskItem, state: TaskState, reason: str | None) -> TaskOutcome:
        return TaskOutcome(
            step=item.step,
            task=item.index,
            parameters=typed_parameters(item.parameters),
            state=state,
            fail_message=reason,
            worker=self.name,
        )

    def _on_status(self, _session_id: str, status: ActionStatus) -> None:
        item = self._current
        if item is None or status.state != ActionState.RUNNING:
            return
        events = self._events
        # Each callback carries both fields: publish only the one that changed.
        previous, self._last_status = self._last_status, status
        if status.progress is not None and status.progress != previous.progress:
            events.publish(TaskProgress(item.step, item.index, self.name, status.progress))
        message = status.status_message
        if message is not None and message != previous.status_message:
            events.publish(TaskStatus(item.step, item.index, self.name, message))

    # ---- environments --------------------------------------------------------------------

    def _prepare_for(self, step: str) -> None:
        """Enter the job environments once, and this step's environments."""
        if self._broken is not None or (self._session is not None and self._step == step):
            return
        if self._session is None:
            self._ensure_session()
            for environment in self._context.external_environments:
                self._enter(environment, "external", None)
            for environment in self._context.job.jobEnvironments or []:
                self._enter(environment, "job", None)
        self._leave_step()
        self._step = step
        for environment in self._steps[step].stepEnvironments or []:
            self._enter(environment, "step", step)

    def _enter(
        self, environment: EnvironmentModel, scope: EnvironmentScope, step: str | None
    ) -> None:
        if self._broken is not None or self._canceled:
            return
        session = self._ensure_session()
        relative = environment_log_name(environment.name, scope, step, self.name)
        self._log.switch(ActionSource(self.name, step, None, environment.name, scope))
        started = _now()
        symtab = (
            self._context.step_symbol_tables.get(step) if step else self._context.job_symbol_table
        )
        identifiers: list[str] = []
        status = self._run_action(
            lambda: identifiers.append(
                session.enter_environment(
                    environment=environment, step_name=step, resolved_symtab=symtab
                )
            )
        )
        self._log.switch(None)
        ok = status is not None and status.state == ActionState.SUCCESS
        if identifiers:
            self._entered.append(
                _Entered(identifiers[0], environment.name, scope, step, started, relative, ok)
            )
        self._events.publish(
            EnvironmentEntered(environment.name, scope, step, self.name, ok, _now())
        )
        if not ok:
            reason = status.fail_message if status and status.fail_message else _describe(status)
            self._broken = f"Environment {environment.name!r} failed to enter: {reason}"

    def _leave_step(self) -> None:
        while self._entered and self._entered[-1].scope == "step":
            self._exit(self._entered.pop(), keep_session_running=True)
        self._step = None

    def _exit(self, entered: _Entered, *, keep_session_running: bool) -> None:
        session = self._ensure_session()
        self._log.switch(ActionSource(self.name, entered.step, None, entered.name, entered.scope))
        status = self._run_action(
            lambda: session.exit_environment(
                identifier=entered.identifier, keep_session_running=keep_session_running
            ),
            exiting=entered.name,
        )
        self._log.switch(None)
        exit_state: TaskState = _ACTION_STATES[status.state] if status else "canceled"
        state: TaskState = exit_state if entered.entered_ok else "failed"
        outcome = EnvironmentOutcome(
            name=entered.name,
            scope=entered.scope,
            step=entered.step,
            worker=self.name,
            state=state,
            started=entered.started,
            ended=_now(),
            log_path=entered.log_path,
        )
        self._environment_outcomes.append(outcome)
        self._events.publish(EnvironmentExited(outcome))
        if exit_state != "success" and self._broken is None:
            self._broken = f"Environment {entered.name!r} failed to exit: {_describe(status)}"

    # ---- actions -------------------------------------------------------------------------

    def _ensure_session(self) -> Session:
        if self._session is None:
            context = self._context
            self._session = Session(
                session_id=f"{context.run_id}/{self.name}",
                job_parameter_values=context.parameter_values,
                job_name=context.job.name,
                path_mapping_rules=list(context.path_mapping_rules) or None,
                retain_working_dir=context.keep_workdir,
                callback=self._on_status,
                session_root_directory=context.session_root,
                revision_extensions=context.revision_extensions,
                log_handlers=[self._log],
            )
        return self._session

    def _run_action(
        self, start: Callable[[], None], *, exiting: str | None = None
    ) -> ActionStatus | None:
        """Start an action unless the node was canceled first; wait for its end.

        ``exiting`` names the environment whose exit this is: exits run even after a
        cancel, within its grace period.
        """
        session = self._ensure_session()
        with self._lock:
            if self._canceled and exiting is None:
                return None
            start()
            if exiting is not None:
                self._exit_running = exiting
                self._exit_serial += 1
                if self._canceled:
                    self._bound_exit_locked(self._cleanup_grace_s)
        try:
            return session.wait()
        finally:
            with self._lock:
                self._exit_running = None
                if self._exit_timer is not None:
                    self._exit_timer.cancel()
                    self._exit_timer = None

    def cancel(self, *, force: bool, grace_s: float | None) -> None:
        """Stop the running task (its own cancelation, grace capped) and take no more tasks.

        A running environment exit is cleanup: a graceful cancel lets it finish within
        ``grace_s``; ``force`` kills whatever runs. Safe from any thread, any number of
        times; an action is notified once however often it is canceled.
        """
        with self._lock:
            self._canceled = True
            # A forced cancel kills what runs now; the exits after it still get the grace.
            if grace_s is not None and not force:
                previous = self._cleanup_grace_s
                self._cleanup_grace_s = grace_s if previous is None else min(previous, grace_s)
            session = self._session
            if session is None or session.state != SessionState.RUNNING:
                return
            if self._exit_running is not None and not force:
                self._bound_exit_locked(grace_s)
                return
            limit = 0.0 if force else grace_s
            # RuntimeError: the action ended between the state check and the request.
            with contextlib.suppress(RuntimeError):
                session.cancel_action(
                    time_limit=timedelta(seconds=limit) if limit is not None else None
                )

    def _bound_exit_locked(self, grace_s: float | None) -> None:
        """Kill the running environment exit if it is still running ``grace_s`` from now."""
        if grace_s is None or self._exit_running is None:
            return
        if self._exit_timer is not None:
            self._exit_timer.cancel()
        serial = self._exit_serial
        timer = threading.Timer(grace_s, self._end_overdue_exit, args=(serial, grace_s))
        timer.daemon = True
        timer.name = f"openjd-{self.name}-exit-grace"
        self._exit_timer = timer
        timer.start()

    def _end_overdue_exit(self, serial: int, grace_s: float) -> None:
        with self._lock:
            session = self._session
            name = self._exit_running
            if serial != self._exit_serial or name is None or session is None:
                return
            self._log.note(
                f"openjd-notebook: {name}'s exit ran past the cancel grace period "
                f"({grace_s:g} s); stopping it."
            )
            with contextlib.suppress(RuntimeError):
                session.cancel_action(time_limit=timedelta(seconds=0))

    def close(self) -> list[EnvironmentOutcome]:
        """Exit every entered environment in reverse, end the session, return the outcomes."""
        while self._entered:
            self._exit(self._entered.pop(), keep_session_running=False)
        if self._session is not None:
            self._session.cleanup()
        self._log.close()
        return list(self._environment_outcomes)


def _describe(status: ActionStatus | None) -> str:
    if status is None:
        return "canceled before it started"
    if status.fail_message:
        return status.fail_message
    return f"{status.state.value} (exit code {status.exit_code})"
