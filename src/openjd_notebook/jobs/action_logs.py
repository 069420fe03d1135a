"""Action logs in the run record: where each action's log goes, and the writer that fills them.

Names are pure functions of the action's identity, so a node anywhere can name its logs
without access to the record directory. The files are written in the process that owns the
record, from the log lines the nodes publish, by ``ActionLogWriter``: an ``EventSink`` that
appends each line to its action's file before forwarding it to the run's event bus.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
from collections.abc import Callable
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
from .private_files import make_private_dirs, open_private

__all__ = [
    "ActionLogWriter",
    "LogWriteFailed",
    "environment_log_name",
    "safe_name",
    "task_log_name",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_NAME = 60
_ROOM_FOR_THE_RECORD = 256 * 1024
"""On a full disk, how much of the failing log's tail is given up so that the run's final
record (run.json, the tables) can still be written."""

LogWriteFailed = Callable[[str, str], None]
"""Told once per log that could not be written: (record-relative log name, reason)."""


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
    """One worker's open log. A worker runs one action at a time, so it has one at a time.

    A log that cannot be written (a full disk, a read-only folder) is given up, not retried:
    its later lines still reach the events, and ``on_failure`` hears of it once, so the run
    can fail that action with the reason instead of its output pump dying.
    """

    def __init__(self, run_dir: Path, on_failure: LogWriteFailed) -> None:
        self._run_dir = run_dir
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._source: ActionSource | None = None
        self._source_log: str | None = None
        self._name: str | None = None
        self._file: IO[str] | None = None
        self._failed: set[str] = set()

    def write(self, source: ActionSource, text: str) -> None:
        failure = None
        with self._lock:
            # Lines come in runs from one source object: check identity first.
            if source is not self._source and source != self._source:
                self._source, self._source_log = source, log_name(source)
            name = self._source_log
            if name is not None and name not in self._failed:
                try:
                    self._open(name).write(text + "\n")
                except OSError as exc:
                    failure = self._give_up_locked(name, exc)
        if failure is not None:
            self._on_failure(*failure)

    def touch(self, name: str) -> None:
        failure = None
        with self._lock:
            if name in self._failed:
                return
            try:
                self._open(name).flush()
            except OSError as exc:
                failure = self._give_up_locked(name, exc)
        if failure is not None:
            self._on_failure(*failure)

    def _give_up_locked(self, name: str, exc: OSError) -> tuple[str, str]:
        self._failed.add(name)
        if self._file is not None and self._name == name:
            file, self._file, self._name = self._file, None, None
            # Closing flushes what is buffered, which fails the same way.
            with contextlib.suppress(OSError):
                file.close()
        reason = (exc.strerror or str(exc)).lower()
        if exc.errno == errno.ENOSPC:
            self._make_room(name)
        return name, f"{reason} while writing the log"

    def _make_room(self, name: str) -> None:
        """Give up the failing log's tail, so the run's final record still fits."""
        path = self._run_dir / name
        try:
            size = path.stat().st_size
            kept = max(0, size - _ROOM_FOR_THE_RECORD)
            os.truncate(path, kept)
            with path.open("a", encoding="utf-8") as file:
                file.write(
                    f"\n[openjd-notebook: no space left on device; this log stops here and its "
                    f"last {size - kept} bytes were given up to keep the run record]\n"
                )
        except OSError:
            return  # nothing more can be done for this log

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
        make_private_dirs(path.parent, inside=self._run_dir)
        self._file, self._name = open_private(path), name
        return self._file


class ActionLogWriter:
    """Appends every published line to its action's log, then forwards it to ``events``.

    Thread-safe: several nodes publish at once, each worker's log behind its own lock (one
    shared lock would make the workers' output pumps wait on each other). A log stays open
    until its action ends (``TaskEnded``, ``EnvironmentExited``, or the worker's next action)
    or ``close``.
    """

    def __init__(
        self,
        run_dir: Path,
        events: EventSink,
        on_failure: LogWriteFailed | None = None,
    ) -> None:
        self._run_dir = run_dir
        self._events = events
        self._on_failure: LogWriteFailed = on_failure or (lambda _name, _reason: None)
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
                log = self._workers.setdefault(worker, _WorkerLog(self._run_dir, self._on_failure))
        return log
