"""Whole-job runs with real processes: order, workers, failure, cancel, events, records."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from helpers import PYTHON
from openjd_notebook import ParameterError, Template, load_run, run_job, start_job
from openjd_notebook.jobs import (
    EnvironmentEntered,
    EnvironmentExited,
    Event,
    LogLines,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskStarted,
)
from openjd_notebook.jobs.selection import SelectionError


def py(code: str, **extra: Any) -> dict[str, Any]:
    return {"command": PYTHON, "args": ["-c", code], **extra}


def env(name: str, enter: str | None = None, exit: str | None = None) -> dict[str, Any]:
    actions = {}
    if enter:
        actions["onEnter"] = py(enter)
    if exit:
        actions["onExit"] = py(exit)
    return {"name": name, "script": {"actions": actions}}


def template(steps: list[dict[str, Any]], **extra: Any) -> Template:
    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Test Job",
        "steps": steps,
        **extra,
    }
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


def frames(count: int, code: str, name: str = "Render", **step: Any) -> dict[str, Any]:
    return {
        "name": name,
        "parameterSpace": {
            "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": f"1-{count}"}]
        },
        "script": {"actions": {"onRun": py(code)}},
        **step,
    }


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "sessions").mkdir()
    return {"runs_root": tmp_path / "runs", "session_root": tmp_path / "sessions"}


def test_steps_run_in_dependency_order_and_results_are_typed(roots: dict[str, Path]) -> None:
    job = template(
        [
            frames(3, "print('encode')", name="Encode", dependencies=[{"dependsOn": "Render"}]),
            frames(4, "print('frame {{Task.Param.Frame}}')"),
        ]
    )
    result = run_job(job, **roots)
    assert result.ok and result.state == "success" and result.error is None
    tasks = result.tasks
    assert list(tasks.columns) == [
        "step",
        "task",
        "Frame",
        "state",
        "exit_code",
        "started",
        "ended",
        "duration_s",
        "progress",
        "status_message",
        "fail_message",
        "worker",
        "log_path",
    ]
    assert (
        list(tasks["step"]) == ["Encode"] * 3 + ["Render"] * 4
        or list(tasks["step"]) == ["Render"] * 4 + ["Encode"] * 3
    )
    render = tasks[tasks["step"] == "Render"]
    encode = tasks[tasks["step"] == "Encode"]
    assert render["ended"].max() <= encode["started"].min()
    assert list(render["Frame"]) == [1, 2, 3, 4] and isinstance(render["Frame"].iloc[0], int)
    assert "\nframe 3\n" in result.log("Render", 2)


def test_a_failure_stops_new_work_and_environments_still_exit(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    marker = tmp_path / "exited.txt"
    job = template(
        [frames(6, "import sys; sys.exit(3 if {{Task.Param.Frame}} == 2 else 0)")],
        jobEnvironments=[env("JobEnv", "print('in')", f"open({str(marker)!r}, 'w').write('out')")],
    )
    result = run_job(job, **roots)
    assert result.state == "failed"
    # The four frames that never started have no rows: they are counted, and listed on demand.
    assert list(result.tasks["state"]) == ["success", "failed"]
    assert result.not_run == {"Render": 4}
    assert list(result.not_run_tasks()["Frame"]) == [3, 4, 5, 6]
    assert result.tasks["exit_code"].iloc[1] == 3
    assert "Render[1] failed" in (result.error or "")
    assert marker.read_text() == "out"
    assert list(result.environments["state"]) == ["success"]


def _wait_for(events: list[Event], kind: type, timeout: float = 20) -> None:
    give_up = time.monotonic() + timeout
    while not any(isinstance(e, kind) for e in events):
        assert time.monotonic() < give_up, f"no {kind.__name__} event"
        time.sleep(0.02)


def test_cancel_in_the_middle_cancels_running_tasks_and_exits_environments(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    marker = tmp_path / "exited.txt"
    events: list[Event] = []
    job = template(
        [frames(5, "import time; print('start', flush=True); time.sleep(30)")],
        jobEnvironments=[env("JobEnv", "print('in')", f"open({str(marker)!r}, 'w').write('out')")],
    )
    run = start_job(job, on_event=events.append, **roots)
    _wait_for(events, TaskStarted)
    time.sleep(0.3)
    run.cancel()
    run.cancel()  # harmless
    result = run.wait(timeout=30)
    assert result.state == "canceled"
    assert list(result.tasks["state"]) == ["canceled"]
    assert result.not_run == {"Render": 4}
    assert result.state_counts() == {"canceled": 1, "not_run": 4}
    assert result.tasks["fail_message"].iloc[0] == "stopped while running"
    assert marker.read_text() == "out"
    assert run.state.value == "canceled"


def test_a_timed_out_task_says_why(roots: dict[str, Path]) -> None:
    step = frames(1, "import time; time.sleep(30)")
    step["script"]["actions"]["onRun"]["timeout"] = 1
    result = run_job(template([step]), **roots)
    assert result.state == "failed"
    row = result.tasks.iloc[0]
    assert (row["state"], row["fail_message"]) == ("timeout", "ran past its timeout")


def test_graceful_cancel_respects_cancel_grace_and_force_kills(roots: dict[str, Path]) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    step = frames(1, stubborn)
    step["script"]["actions"]["onRun"]["cancelation"] = {
        "mode": "NOTIFY_THEN_TERMINATE",
        "notifyPeriodInSeconds": 60,
    }
    events: list[Event] = []
    run = start_job(template([step]), cancel_grace=1, on_event=events.append, **roots)
    _wait_for(events, TaskStarted)
    time.sleep(0.5)
    started = time.monotonic()
    run.cancel()
    result = run.wait(timeout=30)
    assert time.monotonic() - started < 15  # capped at 1 s instead of the template's 60 s
    assert list(result.tasks["state"]) == ["canceled"]

    events.clear()
    run = start_job(template([step]), on_event=events.append, **roots)
    _wait_for(events, TaskStarted)
    time.sleep(0.5)
    started = time.monotonic()
    run.cancel(force=True)
    assert run.wait(timeout=30).state == "canceled"
    assert time.monotonic() - started < 10


def test_workers_run_in_parallel_and_enter_environments_lazily(roots: dict[str, Path]) -> None:
    job = template(
        [
            frames(
                4,
                "import time; time.sleep(0.5)",
                stepEnvironments=[env("StepEnv", "print('step in')", "print('step out')")],
            )
        ],
        jobEnvironments=[env("JobEnv", "print('in')", "print('out')")],
    )
    started = time.monotonic()
    result = run_job(job, workers=2, **roots)
    elapsed = time.monotonic() - started
    assert result.ok
    assert set(result.tasks["worker"]) == {"worker-1", "worker-2"}
    assert elapsed < 4 * 0.5 + 3  # would be >= 2 s of sleeping alone on one worker
    environments = result.environments
    assert sorted(zip(environments["name"], environments["worker"], strict=True)) == [
        ("JobEnv", "worker-1"),
        ("JobEnv", "worker-2"),
        ("StepEnv", "worker-1"),
        ("StepEnv", "worker-2"),
    ]


def test_a_node_that_gets_no_task_enters_nothing(roots: dict[str, Path]) -> None:
    job = template(
        [frames(1, "pass")], jobEnvironments=[env("JobEnv", "print('in')", "print('out')")]
    )
    result = run_job(job, workers=3, **roots)
    assert result.ok
    assert len(result.environments) == 1


def test_workers_switch_step_environments_between_steps(roots: dict[str, Path]) -> None:
    job = template(
        [
            frames(2, "pass", name="A", stepEnvironments=[env("EnvA", "pass", "pass")]),
            frames(
                2,
                "pass",
                name="B",
                stepEnvironments=[env("EnvB", "pass", "pass")],
                dependencies=[{"dependsOn": "A"}],
            ),
        ]
    )
    result = run_job(job, **roots)
    assert result.ok
    assert list(result.environments["name"]) == ["EnvA", "EnvB"]
    env_a, env_b = result.environments.iloc[0], result.environments.iloc[1]
    assert env_a["ended"] <= env_b["started"]


def test_task_selection(roots: dict[str, Path]) -> None:
    job = template([frames(10, "pass")])
    assert list(run_job(job, tasks="Frame=2-4", **roots).tasks["Frame"]) == [2, 3, 4]
    explicit = run_job(job, tasks=[{"Frame": 7}, {"Frame": 5}], **roots).tasks
    assert list(explicit["Frame"]) == [5, 7]  # the table follows the parameter space
    assert list(explicit["task"]) == [4, 6]
    assert list(run_job(job, max_tasks=2, **roots).tasks["Frame"]) == [1, 2]
    with pytest.raises(SelectionError, match="no task parameter 'Shot'"):
        run_job(job, tasks="Shot=1", **roots)


def test_step_selection_with_and_without_dependencies(roots: dict[str, Path]) -> None:
    job = template(
        [
            frames(2, "pass", name="A"),
            frames(1, "pass", name="B", dependencies=[{"dependsOn": "A"}]),
        ]
    )
    assert list(run_job(job, step="B", **roots).tasks["step"]) == ["A", "A", "B"]
    assert list(run_job(job, step="B", run_dependencies=False, **roots).tasks["step"]) == ["B"]
    with pytest.raises(SelectionError, match="no step named 'C'"):
        run_job(job, step="C", **roots)


def test_parameters_and_missing_parameter_error(roots: dict[str, Path]) -> None:
    job = template(
        [frames(1, "print('{{Param.Who}} {{Param.Count}}')")],
        parameterDefinitions=[
            {"name": "Who", "type": "STRING"},
            {"name": "Count", "type": "INT", "default": 2},
        ],
    )
    result = run_job(job, {"Who": "world", "Count": 5}, **roots)
    assert "world 5" in result.log("Render", 0)
    # Bad values raise at the call, before any thread or record exists, listing what the
    # template expects.
    for bad in ({}, {"Who": "w", "Count": "many"}, {"Who": "w", "Colour": "red"}):
        with pytest.raises(ParameterError) as raised:
            start_job(job, bad, **roots)
        assert "Who (STRING, required)" in str(raised.value)
        assert "Count (INT, default '2')" in str(raised.value)
    assert len(list(roots["runs_root"].iterdir())) == 1  # only the good run left a record


def test_adaptive_chunking_grows_chunks(roots: dict[str, Path]) -> None:
    step = {
        "name": "Render",
        "parameterSpace": {
            "taskParameterDefinitions": [
                {
                    "name": "Frame",
                    "type": "CHUNK[INT]",
                    "range": "1-60",
                    "chunks": {
                        "defaultTaskCount": 1,
                        "targetRuntimeSeconds": 5,
                        "rangeConstraint": "CONTIGUOUS",
                    },
                }
            ]
        },
        "script": {"actions": {"onRun": py("print('{{Task.Param.Frame}}')")}},
    }
    result = run_job(template([step], extensions=["TASK_CHUNKING"]), **roots)
    assert result.ok
    chunks = list(result.tasks["Frame"])
    assert _expand(chunks[0]) == [1]
    assert len(chunks) < 60  # fast tasks: chunks grew towards the 5 s target
    covered = [frame for chunk in chunks for frame in _expand(chunk)]
    assert covered == list(range(1, 61))


def _expand(chunk: str) -> list[int]:
    frames: list[int] = []
    for part in chunk.split(","):
        start, _, end = part.partition("-")
        frames.extend(range(int(start), int(end or start) + 1))
    return frames


def test_path_mapping_rules_from_a_file(roots: dict[str, Path], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "version": "pathmapping-1.0",
                "path_mapping_rules": [
                    {
                        "source_path_format": "WINDOWS",
                        "source_path": "C:\\Projects",
                        "destination_path": "/mnt/projects",
                    }
                ],
            }
        )
    )
    job = template(
        [frames(1, "print('{{Param.Scene}}')")],
        parameterDefinitions=[{"name": "Scene", "type": "PATH"}],
    )
    result = run_job(job, {"Scene": "C:\\Projects\\shot\\a.ma"}, path_mapping_rules=rules, **roots)
    assert "/mnt/projects/shot/a.ma" in result.log("Render", 0)


def test_external_environment_templates_are_entered_first(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    environment = tmp_path / "env.yaml"
    environment.write_text(
        yaml.safe_dump(
            {
                "specificationVersion": "environment-2023-09",
                "environment": {"name": "Outer", "variables": {"FROM_OUTER": "yes"}},
            }
        )
    )
    job = template(
        [frames(1, "import os; print('outer', os.environ['FROM_OUTER'])")],
        jobEnvironments=[env("JobEnv", "pass")],
    )
    result = run_job(job, environments=[environment], **roots)
    assert result.ok
    assert "outer yes" in result.log("Render", 0)
    assert list(result.environments["scope"]) == ["external", "job"]  # entry order


def test_events_are_ordered_and_complete(roots: dict[str, Path]) -> None:
    events: list[Event] = []
    job = template(
        [frames(3, "print('line one'); print('line two')")],
        jobEnvironments=[env("JobEnv", "pass", "pass")],
    )
    run_job(job, on_event=events.append, **roots)
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunEnded)
    assert events[0].task_counts == {"Render": 3}
    kinds = [type(e) for e in events]
    assert kinds.count(TaskStarted) == kinds.count(TaskEnded) == 3
    assert kinds.count(EnvironmentEntered) == kinds.count(EnvironmentExited) == 1
    for index, event in enumerate(events):
        if isinstance(event, TaskEnded):
            task_lines = [
                line
                for e in events[:index]
                if isinstance(e, LogLines) and e.task == event.outcome.task and e.step == "Render"
                for line in e.lines
            ]
            assert "line two" in task_lines  # a task's output arrives before its end


def test_a_slow_subscriber_does_not_slow_the_run(roots: dict[str, Path]) -> None:
    delivered = threading.Event()

    def slow(event: Event) -> None:
        time.sleep(0.05)
        if isinstance(event, RunEnded):
            delivered.set()

    job = template([frames(1, "for i in range(20000): print(i)")])
    started = time.monotonic()
    run = start_job(job, on_event=slow, **roots)
    result = run.wait(timeout=60)
    assert result.ok
    assert delivered.is_set()  # wait() returns once every event was delivered
    assert time.monotonic() - started < 30  # 20,000 lines one by one would take 1000 s


def test_records_round_trip_and_secrets_stay_out(roots: dict[str, Path]) -> None:
    job = template(
        [frames(2, "import os; print('secret is', os.environ['TOKEN'])")],
        # The secret is computed at run time, so the template text itself holds none of it.
        jobEnvironments=[
            env("Secrets", "print('openjd_redacted_env: TOKEN=' + 'eulav-terc3s-r3pus'[::-1])")
        ],
        extensions=["REDACTED_ENV_VARS"],
    )
    result = run_job(job, **roots)
    assert result.ok
    run_dir = result.run_dir
    assert run_dir is not None and run_dir.parent == roots["runs_root"]
    assert {p.name for p in run_dir.iterdir()} >= {
        "run.json",
        "tasks.csv",
        "environments.csv",
        "logs",
    }
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert "sup3r-s3cret-value" not in path.read_text()
    assert "secret is ********" in result.log("Render", 0)
    assert load_run(run_dir) == result
    record = json.loads((run_dir / "run.json").read_text())
    assert record["state"] == "success" and record["template"]["digest"] == job.digest


def test_keep_workdir_and_no_processes_left(roots: dict[str, Path]) -> None:
    job = template(
        [
            frames(
                1,
                "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)",
            )
        ]
    )
    before = {p.pid for p in psutil.process_iter()}
    result = run_job(job, keep_workdir=True, **roots)
    assert result.ok
    assert len(list(roots["session_root"].iterdir())) == 1  # the working directory is kept
    time.sleep(0.2)
    leftovers = [
        p
        for p in psutil.process_iter()
        if p.pid not in before and "time.sleep(60)" in " ".join(_cmdline(p))
    ]
    assert leftovers == []


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return list(process.cmdline())
    except psutil.Error:
        return []


def test_invalid_template_path_fails_clearly(roots: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "specificationVersion: jobtemplate-2023-09\nname: X\nsteps:\n- name: A\n  script: {}\n"
    )
    with pytest.raises(ValueError, match="line"):
        run_job(bad, **roots)
