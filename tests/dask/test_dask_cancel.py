"""Canceling a run on a Dask cluster: every node's actions, their whole trees, environments."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from dask_support import Recorder, environment, read_pids, template

from helpers import alive, wait_until
from openjd_notebook import start_job

pytest.importorskip("distributed")

from openjd_notebook.jobs.dask_executor import DaskExecutor

# Each task starts a grandchild in a session of its own, traps TERM with a last line, and
# ticks until it is stopped.
WORK = (
    "trap 'echo got TERM {{Task.Param.Frame}}; exit 3' TERM;"
    " setsid sleep 600 & echo $! > '{{Param.Dir}}/grandchild-{{Task.Param.Frame}}.pid';"
    " echo $$ > '{{Param.Dir}}/action-{{Task.Param.Frame}}.pid';"
    " while true; do echo tick {{Task.Param.Frame}}; sleep 0.1; done"
)
JOB = template(
    [
        {
            "name": "Work",
            "parameterSpace": {
                "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": "1-2"}]
            },
            "script": {
                "actions": {
                    "onRun": {
                        "command": "/bin/sh",
                        "args": ["-c", WORK],
                        "cancelation": {
                            "mode": "NOTIFY_THEN_TERMINATE",
                            "notifyPeriodInSeconds": 5,
                        },
                    }
                }
            },
        }
    ],
    parameterDefinitions=[{"name": "Dir", "type": "PATH"}],
    jobEnvironments=[environment("JobEnv", "echo in", "echo out")],
)


def start_and_wait_for_both_tasks(client: Any, tmp_path: Path) -> tuple[Any, Recorder, list[int]]:
    recorder = Recorder()
    run = start_job(
        JOB,
        {"Dir": str(tmp_path)},
        executor=DaskExecutor(client),
        runs_root=tmp_path / "runs",
        on_event=recorder,
    )
    recorder.wait_for(
        lambda events: (
            {"tick 1", "tick 2"} <= {line for e in events for line in getattr(e, "lines", ())}
        )
    )
    pids = read_pids(tmp_path, "*.pid")
    assert len(pids) == 4 and all(alive(pid) for pid in pids)
    return run, recorder, pids


def test_cancel_runs_each_actions_own_cancelation_and_exits_every_environment(
    client: Any, tmp_path: Path
) -> None:
    run, recorder, pids = start_and_wait_for_both_tasks(client, tmp_path)

    run.cancel()
    result = run.wait(30)

    assert result.state == "canceled"
    assert set(result.tasks["state"]) == {"canceled"}
    lines = recorder.lines()
    assert "got TERM 1" in lines and "got TERM 2" in lines
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 1.0) is not None
    assert recorder.environment_counts() == {("0", "JobEnv"): (1, 1), ("1", "JobEnv"): (1, 1)}
    assert set(result.environments["state"]) == {"success"}


def test_force_cancel_kills_every_action_tree_at_once(client: Any, tmp_path: Path) -> None:
    run, recorder, pids = start_and_wait_for_both_tasks(client, tmp_path)

    started = time.monotonic()
    run.cancel(force=True)
    gone = wait_until(lambda: not any(alive(pid) for pid in pids), 1.0)
    result = run.wait(30)

    assert gone is not None, "a process of an action tree outlived a forced cancel by 1 s"
    assert time.monotonic() - started < 5
    assert result.state == "canceled"
    assert set(result.tasks["state"]) == {"canceled"}
    assert recorder.environment_counts() == {("0", "JobEnv"): (1, 1), ("1", "JobEnv"): (1, 1)}


def test_cancel_before_any_task_started(client: Any, tmp_path: Path) -> None:
    run = start_job(
        JOB, {"Dir": str(tmp_path)}, executor=DaskExecutor(client), runs_root=tmp_path / "runs"
    )
    run.cancel()
    result = run.wait(30)

    assert result.state == "canceled"
    assert set(result.tasks["state"]) <= {"canceled", "not_run"}
    assert not any(alive(pid) for pid in read_pids(tmp_path, "*.pid"))
