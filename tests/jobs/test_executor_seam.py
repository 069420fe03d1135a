"""The executor seam with an in-process fake: what any executor gets and must give back."""

from __future__ import annotations

import collections
from pathlib import Path

import yaml

from openjd_notebook import Template, load_run, run_job
from openjd_notebook.jobs import LogLines, TaskOutcome
from openjd_notebook.jobs.events import EventSink
from openjd_notebook.jobs.executor import ExecutorRun
from openjd_notebook.jobs.node import Node, RunContext
from openjd_notebook.jobs.outcomes import EnvironmentOutcome
from openjd_notebook.jobs.selection import TaskItem

JOB = Template.from_text(
    yaml.safe_dump(
        {
            "specificationVersion": "jobtemplate-2023-09",
            "name": "Seam",
            "jobEnvironments": [
                {
                    "name": "Env",
                    "script": {
                        "actions": {
                            "onEnter": {"command": "/bin/sh", "args": ["-c", "echo enter"]},
                            "onExit": {"command": "/bin/sh", "args": ["-c", "echo exit"]},
                        }
                    },
                }
            ],
            "steps": [
                {
                    "name": "Say",
                    "parameterSpace": {
                        "taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-3"}]
                    },
                    "script": {
                        "actions": {
                            "onRun": {
                                "command": "/bin/sh",
                                "args": ["-c", "echo say {{Task.Param.N}}"],
                            }
                        }
                    },
                }
            ],
        },
        sort_keys=False,
    )
)


class InlineExecutor:
    """Runs each task as it is submitted, on one node, in the runner's own thread."""

    def __init__(self) -> None:
        self.contexts: list[RunContext] = []

    def open(self, context: RunContext, events: EventSink) -> ExecutorRun:
        self.contexts.append(context)
        return _InlineRun(Node("inline", context, events))


class _InlineRun:
    def __init__(self, node: Node) -> None:
        self._node = node
        self._done: collections.deque[TaskOutcome] = collections.deque()

    @property
    def capacity(self) -> int:
        return 1

    def submit(self, item: TaskItem) -> None:
        self._done.append(self._node.run(item))

    def next_outcome(self) -> TaskOutcome | None:
        return self._done.popleft() if self._done else None

    def cancel(self, *, force: bool, grace_s: float | None) -> None:
        self._node.cancel(force=force, grace_s=grace_s)

    def close(self) -> list[EnvironmentOutcome]:
        return self._node.close()


class BrokenExecutor:
    def open(self, context: RunContext, events: EventSink) -> ExecutorRun:
        raise ConnectionError("no cluster here")


def test_any_executor_gets_the_same_records_logs_and_events(tmp_path: Path) -> None:
    events: list[object] = []
    executor = InlineExecutor()
    result = run_job(JOB, executor=executor, runs_root=tmp_path, on_event=events.append)

    assert result.ok, result.error
    assert list(result.tasks["worker"]) == ["inline"] * 3
    assert "say 2" in result.log("Say", 1)
    assert "enter" in result.environment_log("Env") and "exit" in result.environment_log("Env")
    said = [
        line
        for e in events
        if isinstance(e, LogLines)
        for line in e.lines
        if line.startswith("say ")
    ]
    assert said == ["say 1", "say 2", "say 3"]
    assert load_run(result.run_dir).tasks.equals(result.tasks)
    assert executor.contexts[0].run_id == result.run_id


def test_an_executor_that_cannot_start_fails_the_run_and_finishes_its_record(
    tmp_path: Path,
) -> None:
    result = run_job(JOB, executor=BrokenExecutor(), runs_root=tmp_path)

    assert result.state == "failed"
    assert result.error == "ConnectionError: no cluster here"
    assert result.tasks.empty and result.not_run == {"Say": 3}
    recorded = load_run(result.run_dir)
    assert recorded.state == "failed" and recorded.error == result.error
