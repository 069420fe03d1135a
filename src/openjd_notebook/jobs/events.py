"""Typed events of a run, and the bus that delivers them in order from one thread.

Nodes publish through the small ``EventSink`` protocol, so the same node code can publish
into this process's bus or into a channel back to the client from another machine.

Publishing never blocks the publisher (a session's pump or a node): events wait in a queue
and one dispatcher thread per run hands them to subscribers. Consecutive log lines from
the same action are delivered as one ``LogLines`` batch, so a slow subscriber sees bigger
batches instead of slowing the actions down.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .outcomes import EnvironmentOutcome, EnvironmentScope, RunState, TaskOutcome

__all__ = [
    "ActionSource",
    "EnvironmentEntered",
    "EnvironmentExited",
    "Event",
    "EventBus",
    "EventSink",
    "LogLines",
    "ManifestProgress",
    "RunEnded",
    "RunStarted",
    "Subscriber",
    "TaskEnded",
    "TaskProgress",
    "TaskStarted",
    "TaskStatus",
]

_LOG = logging.getLogger(__name__)
_MAX_BATCH = 5000


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    job_name: str
    steps: tuple[str, ...]
    task_counts: Mapping[str, int | None]
    """Tasks (or chunks) planned per step; None while adaptive chunking decides."""
    started: datetime
    run_dir: Path | None


@dataclass(frozen=True)
class RunEnded:
    run_id: str
    state: RunState
    ended: datetime
    result: Any
    """The run's ``JobResult``."""


@dataclass(frozen=True)
class EnvironmentEntered:
    name: str
    scope: EnvironmentScope
    step: str | None
    worker: str
    ok: bool
    time: datetime


@dataclass(frozen=True)
class EnvironmentExited:
    outcome: EnvironmentOutcome


@dataclass(frozen=True)
class TaskStarted:
    step: str
    task: int
    parameters: Mapping[str, Any]
    worker: str
    time: datetime


@dataclass(frozen=True)
class TaskProgress:
    step: str
    task: int
    worker: str
    progress: float


@dataclass(frozen=True)
class TaskStatus:
    step: str
    task: int
    worker: str
    status_message: str


@dataclass(frozen=True)
class TaskEnded:
    outcome: TaskOutcome


@dataclass(frozen=True)
class ManifestProgress:
    """Hashing the run's inputs (before the first task) or outputs (after the last)."""

    kind: str
    """"inputs" or "outputs"."""
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int

    @property
    def done(self) -> bool:
        return self.files_done >= self.files_total


@dataclass(frozen=True)
class ActionSource:
    """Which action a log line comes from: a task, or an environment's enter or exit."""

    worker: str
    step: str | None
    task: int | None = None
    environment: str | None = None
    scope: EnvironmentScope | None = None


@dataclass(frozen=True)
class LogLines:
    """Consecutive log lines of one action (a task, or an environment's enter or exit)."""

    worker: str
    step: str | None
    task: int | None
    environment: str | None
    lines: tuple[str, ...] = field(default=())
    scope: EnvironmentScope | None = None
    """For an environment's lines: whether it is an external, job or step environment."""

    @property
    def source(self) -> ActionSource:
        return ActionSource(self.worker, self.step, self.task, self.environment, self.scope)


Event = (
    RunStarted
    | RunEnded
    | EnvironmentEntered
    | EnvironmentExited
    | TaskStarted
    | TaskProgress
    | TaskStatus
    | TaskEnded
    | LogLines
    | ManifestProgress
)
Subscriber = Callable[[Event], None]


class EventSink(Protocol):
    """Where a node publishes: events, and its actions' log lines one at a time."""

    def publish(self, event: Event) -> None: ...

    def publish_line(self, source: ActionSource, text: str) -> None: ...


@dataclass(frozen=True)
class _Line:
    source: ActionSource
    text: str


_STOP = object()


def _same(source: ActionSource, other: ActionSource) -> bool:
    # A node reuses one source object for all of an action's lines: check identity first.
    return source is other or source == other


class EventBus:
    """Delivers a run's events to its subscribers, in order, on one dispatcher thread."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._dispatch, name=f"openjd-events-{name}")
        self._thread.daemon = True
        self._thread.start()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def publish(self, event: Event) -> None:
        self._queue.put(event)

    def publish_line(self, source: ActionSource, text: str) -> None:
        self._queue.put(_Line(source, text))

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, then stop the dispatcher."""
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _dispatch(self) -> None:
        pending: object | None = None
        while True:
            item = pending if pending is not None else self._queue.get()
            pending = None
            if item is _STOP:
                return
            if isinstance(item, _Line):
                item, pending = self._batch(item)
            self._deliver(item)  # type: ignore[arg-type]

    def _batch(self, first: _Line) -> tuple[LogLines, object | None]:
        lines = [first.text]
        following: object | None = None
        while len(lines) < _MAX_BATCH:
            try:
                following = self._queue.get_nowait()
            except queue.Empty:
                following = None
                break
            if not isinstance(following, _Line) or not _same(following.source, first.source):
                break
            lines.append(following.text)
            following = None
        source = first.source
        batch = LogLines(
            source.worker, source.step, source.task, source.environment, tuple(lines), source.scope
        )
        return batch, following

    def _deliver(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                # One broken subscriber must not stop the others or the run.
                _LOG.exception("openjd-notebook event subscriber %r failed", subscriber)
