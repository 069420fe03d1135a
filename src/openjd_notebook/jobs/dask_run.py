# mypy: disallow-untyped-calls=False
# (distributed leaves some of its public methods unannotated.)
"""Client side of one run on a Dask cluster: the ``ExecutorRun`` of ``DaskExecutor``.

Each OpenJD task is one Dask task with the key ``("openjd-<step>-<run id>", index)``, so the
Dask dashboard groups progress by step. A finished task's future is released as soon as its
outcome is read: a finished task must never be recomputed when a worker is lost later. Its
outcome is handed to the runner only once every event its node published before it ended
has arrived (``ChannelReceiver.wait_for``), so ``TaskEnded`` follows the task's last line.

A worker lost mid-task is Dask's to handle: it runs the task again on another worker, whose
node enters the environments itself. The outcome then records how many nodes started the
task (``attempts``); when Dask gives up, the task fails with "worker lost".
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Hashable, Mapping
from dataclasses import replace
from typing import Any

from distributed import Client, Future
from distributed.scheduler import KilledWorker

from .dask_channel import ChannelReceiver
from .dask_plugin import (
    RunEnd,
    RunPlugin,
    RunReaper,
    TaskResult,
    cancel_run,
    end_run,
    forget_topic,
    plugin_name,
    reaper_name,
    run_task,
    topic_name,
)
from .events import EventSink
from .node import RunContext
from .outcomes import EnvironmentOutcome, TaskOutcome, TaskState
from .selection import TaskItem, typed_parameters

__all__ = ["DaskRun"]

_LOG = logging.getLogger(__name__)
_EVENTS_TIMEOUT_S = 10.0
"""How long an outcome waits for its node's last events before it is recorded anyway."""


class DaskRun:
    """One run's use of a Dask cluster; ``close`` ends it on every worker."""

    def __init__(
        self,
        client: Client,
        context: RunContext,
        events: EventSink,
        *,
        capacity: int,
        resources: Mapping[str, float] | None,
        flush_s: float,
    ) -> None:
        self._client = client
        self._run_id = context.run_id
        self._capacity = capacity
        self._resources = dict(resources) if resources else None
        self._receiver = ChannelReceiver(events)
        self._finished: queue.SimpleQueue[Future[TaskResult] | None] = queue.SimpleQueue()
        self._items: dict[Hashable, tuple[TaskItem, Future[TaskResult]]] = {}
        self._lock = threading.Lock()
        self._cancel_threads: list[threading.Thread] = []
        self._closed = False
        client.subscribe_topic(topic_name(self._run_id), self._receiver.handle)
        try:
            self._start_reaper()
            client.register_plugin(RunPlugin(context, flush_s), name=plugin_name(self._run_id))
        except BaseException:
            self._release_cluster_state()
            raise

    def _start_reaper(self) -> None:
        try:
            self._client.register_plugin(
                RunReaper(self._run_id, self._client.id), name=reaper_name(self._run_id)
            )
        except Exception as error:  # e.g. openjd-notebook is not installed on the scheduler
            _LOG.warning(
                "openjd-notebook: the scheduler cannot end run %s if this client goes away "
                "(%s); its environments would stay entered until the workers close.",
                self._run_id,
                error,
            )

    # ---- ExecutorRun ----------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._capacity

    def submit(self, item: TaskItem) -> None:
        key = (f"openjd-{item.step}-{self._run_id}", item.index)
        future = self._client.submit(
            run_task,
            self._run_id,
            item,
            key=key,
            pure=False,
            retries=0,
            resources=self._resources,
        )
        with self._lock:
            self._items[future.key] = (item, future)
        future.add_done_callback(self._finished.put)

    def next_outcome(self) -> TaskOutcome | None:
        future = self._finished.get()
        if future is None:
            return None
        with self._lock:
            item, _ = self._items.pop(future.key)
        return self._outcome(item, future)

    def cancel(self, *, force: bool, grace_s: float | None) -> None:
        with self._lock:
            if self._closed:
                return
            # The RPC waits for the workers; the caller (maybe the client's own loop) must not.
            thread = threading.Thread(
                target=self._cancel_on_workers, args=(force, grace_s), daemon=True
            )
            thread.name = f"openjd-cancel-{self._run_id}"
            self._cancel_threads.append(thread)
            thread.start()
        self._finished.put(None)  # wake the runner so it notices the cancel

    def close(self) -> list[EnvironmentOutcome]:
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            leftovers = [future for _, future in self._items.values()]
            threads = list(self._cancel_threads)
        try:
            if leftovers:
                self._client.cancel(leftovers)
            for thread in threads:
                thread.join()
            return self._end_on_workers()
        finally:
            self._release_cluster_state()

    # ---- helpers --------------------------------------------------------------------------

    def _outcome(self, item: TaskItem, future: Future[TaskResult]) -> TaskOutcome:
        status = future.status
        try:
            if status == "finished":
                return self._finished_outcome(future.result())
            if status == "error":
                return self._error_outcome(item, future.exception())
            return _outcome_without_node(item, "canceled", None)
        finally:
            future.release()  # a finished task must never be recomputed

    def _finished_outcome(self, result: TaskResult) -> TaskOutcome:
        outcome = result.outcome
        if result.channel is not None and not self._receiver.wait_for(
            result.channel, result.seq, _EVENTS_TIMEOUT_S
        ):
            _LOG.warning(
                "openjd-notebook: the last events of %s[%d] did not arrive within %.0f s",
                outcome.step,
                outcome.task,
                _EVENTS_TIMEOUT_S,
            )
        starts = self._receiver.starts(outcome.step, outcome.task)
        return replace(outcome, attempts=starts) if starts > outcome.attempts else outcome

    def _error_outcome(self, item: TaskItem, error: BaseException | None) -> TaskOutcome:
        if isinstance(error, KilledWorker):
            attempts = max(error.allowed_failures + 1, self._receiver.starts(item.step, item.index))
            message = f"worker lost: the task's worker died {attempts} times"
            return replace(_outcome_without_node(item, "failed", message), attempts=attempts)
        return _outcome_without_node(item, "failed", f"{type(error).__name__}: {error}")

    def _cancel_on_workers(self, force: bool, grace_s: float | None) -> None:
        try:
            answers = self._client.run(cancel_run, self._run_id, force, grace_s, on_error="return")
        except Exception:
            _LOG.exception("openjd-notebook: could not cancel run %s on the workers", self._run_id)
            return
        _log_failures(answers, "cancel")

    def _end_on_workers(self) -> list[EnvironmentOutcome]:
        answers = self._client.run(end_run, self._run_id, on_error="return")
        _log_failures(answers, "end")
        environments: list[EnvironmentOutcome] = []
        for address in sorted(answers):
            end = answers[address]
            if isinstance(end, RunEnd):
                environments.extend(end.environments)
                if end.channel is not None:
                    self._receiver.wait_for(end.channel, end.seq, _EVENTS_TIMEOUT_S)
        return environments

    def _release_cluster_state(self) -> None:
        # Unregistering the plugin stops its event channel on every worker.
        with contextlib.suppress(Exception):
            self._client.unregister_worker_plugin(plugin_name(self._run_id))
        with contextlib.suppress(Exception):
            self._client.unregister_scheduler_plugin(reaper_name(self._run_id))
        with contextlib.suppress(Exception):
            self._client.unsubscribe_topic(topic_name(self._run_id))
        with contextlib.suppress(Exception):
            self._client.run_on_scheduler(forget_topic, topic_name(self._run_id))


def _outcome_without_node(item: TaskItem, state: TaskState, reason: str | None) -> TaskOutcome:
    return TaskOutcome(
        step=item.step,
        task=item.index,
        parameters=typed_parameters(item.parameters),
        state=state,
        fail_message=reason,
    )


def _log_failures(answers: Mapping[str, Any], what: str) -> None:
    for address, answer in answers.items():
        if isinstance(answer, BaseException):
            _LOG.warning("openjd-notebook: %s on worker %s failed: %r", what, address, answer)
