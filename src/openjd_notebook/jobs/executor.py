"""The seam between the runner and where nodes run.

The runner decides what runs (dependency order, chunking, failure policy); an executor
only runs tasks on nodes. ``LocalExecutor`` runs nodes on threads of this process; a
distributed executor runs the same ``Node`` code elsewhere behind the same two protocols.
"""

from __future__ import annotations

from typing import Protocol

from .events import EventSink
from .node import RunContext
from .outcomes import EnvironmentOutcome, TaskOutcome
from .selection import TaskItem

__all__ = ["Executor", "ExecutorRun"]


class ExecutorRun(Protocol):
    """One run's use of an executor."""

    @property
    def capacity(self) -> int:
        """How many tasks can run at once; the runner keeps at most this many in flight."""
        ...

    def submit(self, item: TaskItem) -> None:
        """Queue a task; its outcome comes back through ``next_outcome``."""
        ...

    def next_outcome(self) -> TaskOutcome | None:
        """Block for the next finished task; None when woken by ``cancel``."""
        ...

    def cancel(self, *, force: bool, grace_s: float | None) -> None:
        """Cancel running tasks with their own cancelation (grace capped), or kill them.

        Idempotent and safe from any thread; queued tasks come back as not run.
        """
        ...

    def close(self) -> list[EnvironmentOutcome]:
        """Exit every node's environments and end its session; returns what they did."""
        ...


class Executor(Protocol):
    def open(self, context: RunContext, events: EventSink) -> ExecutorRun:
        """Start one run: its nodes run ``context``'s tasks and publish into ``events``."""
        ...
