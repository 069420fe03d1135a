"""Worker side of the Dask executor: one run's render nodes on one Dask worker.

The run travels as a per-run ``WorkerPlugin`` (``RunPlugin``): registering it gives every
current and future worker the run's ``RunContext``; each worker then keeps its nodes, one
resident session per busy task thread, entered lazily by the node's first task and exited
when the run ends (``end_run``, or the plugin's teardown when it is unregistered or the
worker closes). A task that arrives after the end finds no plugin and comes back not run,
so nothing re-runs once a run has ended.

Cancelation reaches the sessions two ways: ``cancel_run`` (the run's own cancel, with its
force and grace), and the ``transition`` hook, which sees the scheduler take a running task
away (``Future.cancel``, or the client disconnecting) and cancels that task's action.
``RunReaper`` ends a run's environments on every worker when its client goes away.

Everything here holds its state on plugin instances: nothing at module level.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from distributed import Worker, WorkerPlugin, get_worker
from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.scheduler import Scheduler

from .dask_channel import EventChannel
from .node import Node, RunContext
from .outcomes import EnvironmentOutcome, TaskOutcome, TaskState
from .selection import TaskItem, typed_parameters

__all__ = [
    "VERSIONED_PACKAGES",
    "RunEnd",
    "RunPlugin",
    "RunReaper",
    "TaskResult",
    "cancel_run",
    "end_run",
    "forget_topic",
    "node_versions",
    "plugin_name",
    "reaper_name",
    "run_task",
    "topic_name",
]

VERSIONED_PACKAGES = ("openjd-notebook", "openjd-model", "distributed", "cloudpickle")
_LOG = logging.getLogger(__name__)
_RUNNING = ("executing", "long-running")
_TAKEN_AWAY = ("released", "cancelled")


def plugin_name(run_id: str) -> str:
    return f"openjd-run-{run_id}"


def reaper_name(run_id: str) -> str:
    return f"openjd-reaper-{run_id}"


def topic_name(run_id: str) -> str:
    return f"openjd-{run_id}"


@dataclass(frozen=True)
class TaskResult:
    """A task's outcome, and the event batch the client must have before recording it."""

    outcome: TaskOutcome
    channel: str | None
    seq: int


@dataclass(frozen=True)
class RunEnd:
    """What one worker's nodes did when the run ended there."""

    environments: list[EnvironmentOutcome]
    channel: str | None
    seq: int


class _NodePool:
    """A worker's nodes for one run: one per task running at once, reused between tasks."""

    def __init__(self, base_name: str, context: RunContext, channel: EventChannel) -> None:
        self._base_name = base_name
        self._context = context
        self._channel = channel
        self._changed = threading.Condition()
        self._nodes: list[Node] = []
        self._idle: list[Node] = []
        self._cancel: tuple[bool, float | None] | None = None
        self._ended = False

    def checkout(self) -> Node | None:
        """An idle node (or a new one); None once the run ended here."""
        with self._changed:
            if self._ended:
                return None
            if self._idle:
                return self._idle.pop()
            number = len(self._nodes) + 1
            name = self._base_name if number == 1 else f"{self._base_name}#{number}"
            node = Node(name, self._context, self._channel)
            self._nodes.append(node)
            if self._cancel is not None:
                node.cancel(force=self._cancel[0], grace_s=self._cancel[1])
            return node

    def checkin(self, node: Node) -> None:
        with self._changed:
            self._idle.append(node)
            self._changed.notify_all()

    def cancel(self, force: bool, grace_s: float | None) -> None:
        with self._changed:
            self._cancel = (force, grace_s)
            nodes = list(self._nodes)
        for node in nodes:
            node.cancel(force=force, grace_s=grace_s)

    def end(self) -> list[EnvironmentOutcome]:
        """Cancel running tasks (their own cancelation) and wait for them, then exit every
        node's environments. Idempotent."""
        with self._changed:
            if self._ended:
                return []
            self._ended = True
            busy = [node for node in self._nodes if node not in self._idle]
        for node in busy:
            node.cancel(force=False, grace_s=None)
        with self._changed:
            self._changed.wait_for(lambda: len(self._idle) == len(self._nodes))
            nodes = list(self._nodes)
        outcomes: list[EnvironmentOutcome] = []
        for node in nodes:
            try:
                outcomes.extend(node.close())
            except Exception:
                _LOG.exception("openjd-notebook: %s could not close its session", node.name)
        return outcomes


class RunPlugin(WorkerPlugin):
    """One run on every worker: its context, its nodes, their events, cancel and end."""

    def __init__(self, context: RunContext, flush_s: float) -> None:
        self.name = plugin_name(context.run_id)
        self.context = context
        self.flush_s = flush_s

    # ---- plugin hooks (the worker's event loop) -------------------------------------------

    def setup(self, worker: Worker) -> None:
        topic = topic_name(self.context.run_id)
        self._channel = EventChannel(lambda batch: worker.log_event(topic, batch), self.flush_s)
        self._channel.start()
        self._pool = _NodePool(_worker_label(worker), self.context, self._channel)
        self._running: dict[Hashable, Node] = {}
        self._lock = threading.Lock()

    async def teardown(self, worker: Worker) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.end)

    def transition(self, key: Hashable, start: str, finish: str, **kwargs: Any) -> None:
        if start not in _RUNNING or finish not in _TAKEN_AWAY:
            return
        with self._lock:
            node = self._running.get(key)
        if node is not None:
            # The template's own cancelation; never block the event loop on it.
            threading.Thread(
                target=node.cancel, kwargs={"force": False, "grace_s": None}, daemon=True
            ).start()

    # ---- the run (task threads and executor threads) ----------------------------------------

    def run(self, item: TaskItem, key: Hashable) -> TaskResult:
        node = self._pool.checkout()
        if node is None:
            return TaskResult(_not_run(item), None, 0)
        with self._lock:
            self._running[key] = node
        try:
            outcome = node.run(item)
        except Exception as error:
            _LOG.exception("openjd-notebook: %s failed to run %s[%d]", node.name, *_ids(item))
            outcome = _not_run(item, "failed", f"{type(error).__name__}: {error}", node.name)
        finally:
            with self._lock:
                self._running.pop(key, None)
            self._pool.checkin(node)
        return TaskResult(outcome, self._channel.channel_id, self._channel.flush())

    def cancel(self, force: bool, grace_s: float | None) -> None:
        self._pool.cancel(force, grace_s)

    def end(self) -> RunEnd:
        """End the run on this worker: exit every environment; idempotent."""
        environments = self._pool.end()
        return RunEnd(environments, self._channel.channel_id, self._channel.stop())


def _worker_label(worker: Worker) -> str:
    name = worker.name
    return str(name) if name is not None and name != worker.address else str(worker.address)


def _ids(item: TaskItem) -> tuple[str, int]:
    return item.step, item.index


def _not_run(
    item: TaskItem,
    state: TaskState = "not_run",
    reason: str | None = None,
    worker: str | None = None,
) -> TaskOutcome:
    return TaskOutcome(
        step=item.step,
        task=item.index,
        parameters=typed_parameters(item.parameters),
        state=state,
        fail_message=reason,
        worker=worker,
    )


def _plugin(run_id: str, worker: Worker) -> RunPlugin | None:
    plugin = worker.plugins.get(plugin_name(run_id))
    return plugin if isinstance(plugin, RunPlugin) else None


# ---- functions the client sends to workers ---------------------------------------------------


def run_task(run_id: str, item: TaskItem) -> TaskResult:
    """One OpenJD task as one Dask task, on this worker's node for the run."""
    worker = get_worker()
    plugin = _plugin(run_id, worker)
    if plugin is None:  # the run ended (or never started) here: never run late
        return TaskResult(_not_run(item, reason="the run had ended"), None, 0)
    return plugin.run(item, worker.get_current_task())


# ``Client.run`` passes the worker as ``dask_worker`` and runs these on its event loop, so
# they hand the work to a thread and keep the loop (heartbeats) free.


async def cancel_run(run_id: str, force: bool, grace_s: float | None, dask_worker: Worker) -> None:
    """Cancel the run's running actions on this worker and take no more of its tasks."""
    plugin = _plugin(run_id, dask_worker)
    if plugin is not None:
        await asyncio.get_running_loop().run_in_executor(None, plugin.cancel, force, grace_s)


async def end_run(run_id: str, dask_worker: Worker) -> RunEnd | None:
    """Exit the run's environments on this worker; returns what they did."""
    plugin = _plugin(run_id, dask_worker)
    if plugin is None:
        return None
    return await asyncio.get_running_loop().run_in_executor(None, plugin.end)


def forget_topic(topic: str, dask_scheduler: Scheduler) -> None:
    """Drop a finished run's events from the scheduler, which keeps each topic's tail.

    Distributed has no public call for this; if its internals change, the tail stays (it is
    bounded by ``distributed.admin.low-level-log-length`` events per topic).
    """
    topics = getattr(getattr(dask_scheduler, "_broker", None), "_topics", None)
    if isinstance(topics, dict):
        topics.pop(topic, None)


def node_versions() -> dict[str, str | None]:
    """The versions of the packages that must match between the client and its workers."""
    versions: dict[str, str | None] = {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}"
    }
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


class RunReaper(SchedulerPlugin):
    """On the scheduler: when the run's client goes away, end the run on every worker."""

    def __init__(self, run_id: str, client_id: str) -> None:
        self.name = reaper_name(run_id)
        self.run_id = run_id
        self.client_id = client_id
        self.ending: asyncio.Future[Any] | None = None

    def remove_client(self, scheduler: Scheduler, client: str) -> None:
        if client != self.client_id:
            return
        _LOG.info("openjd-notebook: client %s is gone; ending run %s", client, self.run_id)
        scheduler.remove_plugin(name=self.name)
        if plugin_name(self.run_id) in scheduler.worker_plugins:
            # Unregistering runs each worker's teardown, which exits the environments.
            self.ending = asyncio.ensure_future(
                scheduler.unregister_worker_plugin(None, name=plugin_name(self.run_id))
            )
