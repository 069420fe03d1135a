"""What one run produced, as frozen values: per task (or chunk) and per environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "ENVIRONMENT_SCOPES",
    "TASK_STATES",
    "EnvironmentOutcome",
    "EnvironmentScope",
    "RunState",
    "TaskOutcome",
    "TaskState",
]

TaskState = Literal["success", "failed", "canceled", "timeout", "not_run"]
TASK_STATES: tuple[TaskState, ...] = ("success", "failed", "canceled", "timeout", "not_run")
RunState = Literal["success", "failed", "canceled"]
EnvironmentScope = Literal["external", "job", "step"]
ENVIRONMENT_SCOPES: tuple[EnvironmentScope, ...] = ("external", "job", "step")


def _duration(started: datetime | None, ended: datetime | None) -> float | None:
    if started is None or ended is None:
        return None
    return (ended - started).total_seconds()


@dataclass(frozen=True)
class TaskOutcome:
    """One task (or one chunk of a chunked step) and how it ended."""

    step: str
    task: int
    """0-based index of the task (or chunk) within its step, in parameter-space order."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Typed values: INT as int, FLOAT as float, STRING and PATH as str, CHUNK[INT] as its range."""
    state: TaskState = "not_run"
    exit_code: int | None = None
    started: datetime | None = None
    ended: datetime | None = None
    progress: float | None = None
    status_message: str | None = None
    fail_message: str | None = None
    worker: str | None = None
    log_path: str | None = None
    """Path of the action's log, relative to the run's record directory."""
    attempts: int = 0

    @property
    def duration_s(self) -> float | None:
        return _duration(self.started, self.ended)


@dataclass(frozen=True)
class EnvironmentOutcome:
    """One environment entered (and exited) on one worker."""

    name: str
    scope: EnvironmentScope
    step: str | None
    worker: str
    state: TaskState
    """How the environment ended overall: its onEnter's failure, else its onExit's state."""
    started: datetime | None = None
    ended: datetime | None = None
    log_path: str | None = None

    @property
    def duration_s(self) -> float | None:
        return _duration(self.started, self.ended)
