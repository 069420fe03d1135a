"""Action logs in the run record: where each action's log goes, and the writer that fills them.

Names are pure functions of the action's identity, so a node anywhere can name its logs
without access to the record directory. The files are written in the process that owns the
record, from the log lines the nodes publish, by ``ActionLogWriter``: an ``EventSink`` that
appends each line to its action's file before forwarding it to the run's event bus.
"""

from __future__ import annotations

import re
import threading
from hashlib import sha256
from pathlib import Path
from typing import IO

from .events import (
    ActionSource,
    EnvironmentEntered,
    EnvironmentExited,
    Event,
    EventSink,
    TaskEnded,
    TaskStarted,
)

__all__ = ["ActionLogWriter", "environment_log_name", "safe_name", "task_log_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_NAME = 60


def safe_name(name: str) -> str:
    """``name`` as one safe path component: letters, digits, ``_`` and ``-`` only.

    A name that had to change gets a short digest of the original, so two different names
    ("a b" and "a/b") never share a file.
    """
    cleaned = _UNSAFE.sub("_", name).strip("_-")[:_MAX_NAME] or "unnamed"
    if cleaned == name:
        return cleaned
    return f"{cleaned}-{sha256(name.encode()).hexdigest()[:6]}"


def task_log_name(step: str, task: int) -> str:
    """Record-relative path of a task's log."""
    return f"logs/{safe_name(step)}/task-{task:04d}.log"


def environment_log_name(name: str, scope: str, step: str | None, worker: str) -> str:
    """Record-relative path of an environment's log (enter and exit) on one worker."""
    # Safe names never contain ".", so the dotted parts cannot run into each other.
    parts = [safe_name(worker), safe_name(scope), safe_name(step or "job"), safe_name(name)]
    return "logs/environments/" + ".".join(parts) + ".log"


def log_name(source: ActionSource) -> str | None:
    """The log of the action a line comes from; None for lines outside any action."""
    if source.step is not None and source.task is not None:
        return task_log_name(source.step, source.task)
    if source.environment is not None:
        return environment_log_name(
            source.environment, source.scope or "job", source.step, source.worker
        )
    return None


class _WorkerLog:
    """One worker's open log. A worker runs one action at a time, so it has one at a time."""

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir
        self._lock = threading.Lock()
        self._source: ActionSource | None = None
        self._source_log: str | None = None
        self._name: str | None = None
        self._file: IO[str] | None = None

    def write(self, source: ActionSource, text: str) -> None:
        with self._lock:
            # Lines come in runs from one source object: check identity first.
            if source is not self._source and source != self._source:
                self._source, self._source_log = source, log_name(source)
            if self._source_log is not None:
                self._open(self._source_log).write(text + "\n")

    def touch(self, name: str) -> None:
        with self._lock:
            self._open(name).flush()

    def close(self, name: str | None = None) -> None:
        """Close the open log (only if it is ``name``, when given)."""
        with self._lock:
            if self._file is not None and name in (None, self._name):
                self._file.close()
                self._file = self._name = None

    def _open(self, name: str) -> IO[str]:
        if self._file is not None and self._name == name:
            return self._file
        if self._file is not None:
            self._file.close()
        path = self._run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file, self._name = path.open("a", encoding="utf-8"), name
        return self._file


class ActionLogWriter:
    """Appends every published line to its action's log, then forwards it to ``events``.

    Thread-safe: several nodes publish at once, each worker's log behind its own lock (one
    shared lock would make the workers' output pumps wait on each other). A log stays open
    until its action ends (``TaskEnded``, ``EnvironmentExited``, or the worker's next action)
    or ``close``.
    """

    def __init__(self, run_dir: Path, events: EventSink) -> None:
        self._run_dir = run_dir
        self._events = events
        self._lock = threading.Lock()
        self._workers: dict[str, _WorkerLog] = {}

    def publish(self, event: Event) -> None:
        # An action's log exists from its start, even when it writes no line.
        if isinstance(event, TaskStarted):
            self._worker(event.worker).touch(task_log_name(event.step, event.task))
        elif isinstance(event, EnvironmentEntered):
            name = environment_log_name(event.name, event.scope, event.step, event.worker)
            self._worker(event.worker).touch(name)
        elif isinstance(event, (TaskEnded, EnvironmentExited)):
            outcome = event.outcome
            if outcome.worker and outcome.log_path:
                self._worker(outcome.worker).close(outcome.log_path)
        self._events.publish(event)

    def publish_line(self, source: ActionSource, text: str) -> None:
        self._worker(source.worker).write(source, text)
        self._events.publish_line(source, text)

    def close(self) -> None:
        """Close every open log; later lines open their file again."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.close()

    def _worker(self, worker: str) -> _WorkerLog:
        log = self._workers.get(worker)
        if log is None:
            with self._lock:
                log = self._workers.setdefault(worker, _WorkerLog(self._run_dir))
        return log
