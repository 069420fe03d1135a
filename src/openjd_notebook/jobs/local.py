"""``LocalExecutor``: render nodes on threads of this process, fed from one shared queue."""

from __future__ import annotations

import logging
import queue
import threading

from .events import EventSink
from .executor import ExecutorRun
from .node import Node, RunContext
from .outcomes import EnvironmentOutcome, TaskOutcome
from .selection import TaskItem, typed_parameters

__all__ = ["LocalExecutor"]

_STOP = None
_LOG = logging.getLogger(__name__)


class LocalExecutor:
    """Run ``workers`` nodes at once, each with its own session, on local threads."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers

    def open(self, context: RunContext, events: EventSink) -> ExecutorRun:
        return _LocalRun(context, events, self.workers)

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"


class _LocalRun:
    def __init__(self, context: RunContext, events: EventSink, workers: int) -> None:
        self._tasks: queue.SimpleQueue[TaskItem | None] = queue.SimpleQueue()
        self._outcomes: queue.SimpleQueue[TaskOutcome | None] = queue.SimpleQueue()
        names = [f"worker-{number}" for number in range(1, workers + 1)]
        self._nodes = [Node(name, context, events) for name in names]
        self._environment_outcomes: dict[str, list[EnvironmentOutcome]] = {}
        self._threads = [
            threading.Thread(
                target=self._work, args=(node,), name=f"openjd-{node.name}", daemon=True
            )
            for node in self._nodes
        ]
        for thread in self._threads:
            thread.start()

    @property
    def capacity(self) -> int:
        return len(self._nodes)

    def submit(self, item: TaskItem) -> None:
        self._tasks.put(item)

    def next_outcome(self) -> TaskOutcome | None:
        return self._outcomes.get()

    def cancel(self, *, force: bool, grace_s: float | None) -> None:
        for node in self._nodes:
            node.cancel(force=force, grace_s=grace_s)
        self._outcomes.put(None)  # wake the runner so it notices the cancel

    def close(self) -> list[EnvironmentOutcome]:
        for _ in self._threads:
            self._tasks.put(_STOP)
        for thread in self._threads:
            thread.join()
        return [
            outcome for node in self._nodes for outcome in self._environment_outcomes[node.name]
        ]

    def _work(self, node: Node) -> None:
        try:
            while (item := self._tasks.get()) is not _STOP:
                self._outcomes.put(_run_guarded(node, item))
        finally:
            # A node always exits what it entered, even when the run ends in failure.
            try:
                self._environment_outcomes[node.name] = node.close()
            except Exception:
                _LOG.exception("openjd-notebook: %s could not close its session", node.name)
                self._environment_outcomes[node.name] = []


def _run_guarded(node: Node, item: TaskItem) -> TaskOutcome:
    """The node's outcome; an unexpected error fails the task instead of hanging the run."""
    try:
        return node.run(item)
    except Exception as error:
        _LOG.exception("openjd-notebook: %s failed to run %s[%d]", node.name, item.step, item.index)
        return TaskOutcome(
            step=item.step,
            task=item.index,
            parameters=typed_parameters(item.parameters),
            state="failed",
            fail_message=f"{type(error).__name__}: {error}",
            worker=node.name,
        )
