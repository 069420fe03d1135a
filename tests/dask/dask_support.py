"""Shared pieces of the Dask executor tests: templates, event capture, process checks."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from openjd_notebook import Template
from openjd_notebook.jobs import (
    EnvironmentEntered,
    EnvironmentExited,
    Event,
    LogLines,
    TaskEnded,
    TaskProgress,
    TaskStarted,
    TaskStatus,
)


def local_cluster() -> Any:
    """Two single-threaded worker processes: two render nodes, named "0" and "1"."""
    from distributed import LocalCluster

    # A port of its own for the scheduler's HTTP server: 8787 may be taken on this host.
    return LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    )


def sh(script: str, **extra: Any) -> dict[str, Any]:
    return {"command": "/bin/sh", "args": ["-c", script], **extra}


def environment(name: str, enter: str, exit: str) -> dict[str, Any]:
    return {"name": name, "script": {"actions": {"onEnter": sh(enter), "onExit": sh(exit)}}}


def template(steps: list[dict[str, Any]], **extra: Any) -> Template:
    document = {"specificationVersion": "jobtemplate-2023-09", "name": "DaskTest", **extra}
    document["steps"] = steps
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


def frames_step(name: str, count: int, script: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "parameterSpace": {
            "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": f"1-{count}"}]
        },
        "script": {"actions": {"onRun": sh(script)}},
        **extra,
    }


class Recorder:
    """Collects a run's events (on the run's event thread) for later assertions."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[Event]], bool], timeout_s: float = 30) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self.events), timeout_s):
                raise TimeoutError(f"condition not met within {timeout_s} s")

    def of(self, kind: type[Any]) -> list[Any]:
        with self._changed:
            return [event for event in self.events if isinstance(event, kind)]

    def lines(self, step: str | None = None, task: int | None = None) -> list[str]:
        found = []
        for event in self.of(LogLines):
            if step is None or (event.step == step and event.task == task):
                found.extend(event.lines)
        return found

    def task_story(self) -> dict[tuple[str, int], list[Any]]:
        """Per task: progress, status and end, in the order they arrived (workers left out)."""
        story: dict[tuple[str, int], list[Any]] = {}
        for event in self.of((TaskStarted, TaskProgress, TaskStatus, TaskEnded)):
            if isinstance(event, TaskEnded):
                key, entry = (event.outcome.step, event.outcome.task), ("end", event.outcome.state)
            elif isinstance(event, TaskProgress):
                key, entry = (event.step, event.task), ("progress", event.progress)
            elif isinstance(event, TaskStatus):
                key, entry = (event.step, event.task), ("status", event.status_message)
            else:
                key, entry = (event.step, event.task), ("start", dict(event.parameters))
            story.setdefault(key, []).append(entry)
        return story

    def environment_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(worker, environment) -> (times entered, times exited)."""
        counts: dict[tuple[str, str], tuple[int, int]] = {}
        for event in self.of((EnvironmentEntered, EnvironmentExited)):
            if isinstance(event, EnvironmentEntered):
                key = (event.worker, event.name)
                entered, exited = counts.get(key, (0, 0))
                counts[key] = (entered + 1, exited)
            else:
                key = (event.outcome.worker, event.outcome.name)
                entered, exited = counts.get(key, (0, 0))
                counts[key] = (entered, exited + 1)
        return counts

    def working_directories(self, worker: str | None = None) -> list[Path]:
        """The sessions' working directories (of one worker's nodes when ``worker`` is given)."""
        prefix = "Session Working Directory: "
        found = []
        for event in self.of(LogLines):
            if worker is None or event.worker == worker:
                found.extend(
                    Path(line[len(prefix) :]) for line in event.lines if line.startswith(prefix)
                )
        return found


_PIDS = re.compile(r"\bpid:? \d+")


def without_pids(text: str) -> str:
    """A log with its process ids blanked: they differ from run to run."""
    return _PIDS.sub("pid N", text)


def read_pids(directory: Path, pattern: str) -> list[int]:
    return [int(path.read_text()) for path in sorted(directory.glob(pattern)) if path.read_text()]
