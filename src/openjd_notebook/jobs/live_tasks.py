"""The tasks of a run while it goes on: what ``JobRun.tasks`` and ``JobRun.wait_for_task`` read.

A ``TaskBoard`` subscribes to the run's events before anyone else, so by the time another
subscriber (or a waiting caller) hears of a task, the board knows it too. Waiting is on a
condition, in short slices, so Ctrl-C still reaches a caller on the main thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import JobsError
from .events import Event, RunEnded, RunStarted, TaskEnded, TaskProgress, TaskStarted, TaskStatus
from .outcomes import TASK_STATES, TaskOutcome
from .tables import ParameterColumns

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LIVE_STATES", "LiveTask", "NoSuchTaskError", "TaskBoard"]

LIVE_STATES = ("running", "ended", *(s for s in TASK_STATES if s != "not_run"))
"""What ``wait_for_task`` can wait for: started, ended in any state, or ended in this one."""
_SLICE_S = 0.1


class NoSuchTaskError(JobsError, LookupError):
    """The run ended and no task (of that step, with that index) reached the state."""


@dataclass(frozen=True)
class LiveTask:
    """A task that started: ``state`` is "running" until it ends, then its outcome's state."""

    step: str
    task: int
    parameters: Mapping[str, Any] = field(default_factory=dict)
    state: str = "running"
    worker: str | None = None
    started: datetime | None = None
    progress: float | None = None
    status_message: str | None = None
    outcome: TaskOutcome | None = None
    """How it ended, once it did."""

    def reached(self, state: str) -> bool:
        """Whether the task got to ``state``: every task that started was "running"."""
        if state == "running":
            return True
        if state == "ended":
            return self.outcome is not None
        return self.state == state

    def as_outcome(self) -> TaskOutcome:
        if self.outcome is not None:
            return self.outcome
        return TaskOutcome(
            step=self.step,
            task=self.task,
            parameters=self.parameters,
            started=self.started,
            progress=self.progress,
            status_message=self.status_message,
            worker=self.worker,
        )


class TaskBoard:
    """Folds one run's task events into the latest state of each task that started.

    ``handle`` runs on the run's event thread; every other method may be called from any
    thread.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._tasks: dict[tuple[str, int], LiveTask] = {}
        self._step_order: dict[str, int] = {}
        self._ended = False

    def handle(self, event: Event) -> None:
        with self._changed:
            self._fold(event)
            self._changed.notify_all()

    def _fold(self, event: Event) -> None:
        match event:
            case RunStarted():
                self._step_order = {step: index for index, step in enumerate(event.steps)}
            case TaskStarted():
                key = (event.step, event.task)
                self._tasks[key] = LiveTask(
                    step=event.step,
                    task=event.task,
                    parameters=dict(event.parameters),
                    worker=event.worker,
                    started=event.time,
                )
            case TaskProgress():
                self._change(event.step, event.task, progress=event.progress)
            case TaskStatus():
                self._change(event.step, event.task, status_message=event.status_message)
            case TaskEnded():
                outcome = event.outcome
                known = self._tasks.get((outcome.step, outcome.task))
                base = known or LiveTask(outcome.step, outcome.task, dict(outcome.parameters))
                self._tasks[(outcome.step, outcome.task)] = replace(
                    base, state=outcome.state, worker=outcome.worker, outcome=outcome
                )
            case RunEnded():
                self._ended = True

    def _change(self, step: str, task: int, **changes: Any) -> None:
        known = self._tasks.get((step, task))
        if known is not None and known.outcome is None:
            self._tasks[(step, task)] = replace(known, **changes)

    def snapshot(self) -> list[LiveTask]:
        """Every task that started, in plan order (steps as run, then task index)."""
        with self._changed:
            return self._ordered()

    def frame(self, parameter_columns: ParameterColumns) -> pd.DataFrame:
        """The snapshot as a DataFrame shaped like ``JobResult.tasks``, state "running" for
        the tasks that have not ended."""
        from .results import tasks_frame

        tasks = self.snapshot()
        frame = tasks_frame([task.as_outcome() for task in tasks], parameter_columns)
        running = [task.outcome is None for task in tasks]
        frame.loc[running, "state"] = "running"
        return frame

    def wait_for(
        self,
        matches: Callable[[LiveTask], bool],
        timeout: float | None,
        describe: str,
    ) -> LiveTask:
        """The first task (in plan order) for which ``matches`` holds, once one does.

        Raises ``TimeoutError`` after ``timeout`` seconds, ``NoSuchTaskError`` when the run
        ended first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((t for t in self._ordered() if matches(t)), None)
                if found is not None:
                    return found
                if self._ended:
                    raise NoSuchTaskError(f"the run ended and no task {describe}")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no task {describe} within {timeout} s")
                self._changed.wait(_SLICE_S if left is None else min(_SLICE_S, left))

    def _ordered(self) -> list[LiveTask]:
        order = self._step_order
        return sorted(
            self._tasks.values(), key=lambda t: (order.get(t.step, len(order)), t.step, t.task)
        )
