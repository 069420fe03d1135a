"""Jobs on a real Dask LocalCluster (two worker processes) against the same jobs run locally."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dask_support import Recorder, environment, frames_step, sh, template, without_pids

from openjd_notebook import JobResult, Template, run_job
from openjd_notebook.jobs import RunStarted, TaskEnded, TaskStarted

distributed = pytest.importorskip("distributed")

from openjd_notebook.jobs import dask_executor  # noqa: E402
from openjd_notebook.jobs.dask_executor import (  # noqa: E402
    ClusterError,
    DaskExecutor,
    executor_for_cluster,
)
from openjd_notebook.jobs.dask_plugin import topic_name  # noqa: E402

SHOWCASE = Path(__file__).parents[1] / "jobs" / "templates" / "task-parameter-showcase.yaml"
TIMING_COLUMNS = ["started", "ended", "duration_s", "worker"]

PROBE = template(
    [
        {
            "name": "Render",
            "parameterSpace": {
                "taskParameterDefinitions": [
                    {"name": "Frame", "type": "INT", "range": "1-4"},
                    {"name": "Quality", "type": "STRING", "range": ["low", "high"]},
                ],
                "combination": "Frame * Quality",
            },
            "stepEnvironments": [
                environment("RenderEnv", "echo ENTER RenderEnv", "echo EXIT RenderEnv")
            ],
            "script": {
                "actions": {
                    "onRun": sh(
                        "echo frame {{Task.Param.Frame}} {{Task.Param.Quality}} $STAMP;"
                        " echo 'openjd_progress: 50';"
                        " echo 'openjd_status: half of {{Task.Param.Frame}}';"
                        " sleep 0.05; echo 'openjd_progress: 100'"
                    )
                }
            },
        },
        {
            "name": "Encode",
            "dependencies": [{"dependsOn": "Render"}],
            "parameterSpace": {
                "taskParameterDefinitions": [
                    {"name": "Scale", "type": "FLOAT", "range": ["0.5", "1.25"]},
                    {"name": "Out", "type": "PATH", "range": ["/out/a", "/out/b"]},
                ],
                "combination": "(Scale, Out)",
            },
            "script": {
                "actions": {"onRun": sh("echo encode {{Task.Param.Scale}} {{Task.Param.Out}}")}
            },
        },
        {
            "name": "Report",
            "dependencies": [{"dependsOn": "Encode"}],
            "script": {"actions": {"onRun": sh("echo 'openjd_status: reported'; exit 0")}},
        },
    ],
    jobEnvironments=[
        environment(
            "JobEnv", "echo ENTER JobEnv; echo 'openjd_env: STAMP=s1'", "echo EXIT JobEnv $STAMP"
        )
    ],
)


def comparable(result: JobResult) -> pd.DataFrame:
    return result.tasks.drop(columns=TIMING_COLUMNS)


def run_both(
    job: Template, tmp_path: Path, client: Any, parameters: dict[str, Any] | None = None
) -> tuple[tuple[JobResult, Recorder], tuple[JobResult, Recorder]]:
    runs = []
    for name, options in (("local", {"workers": 2}), ("dask", {"executor": DaskExecutor(client)})):
        recorder = Recorder()
        result = run_job(job, parameters, runs_root=tmp_path / name, on_event=recorder, **options)
        assert result.ok, result.error
        runs.append((result, recorder))
    return runs[0], runs[1]


@pytest.mark.parametrize("job", ["probe", "showcase"])
def test_a_dask_run_gives_the_local_result(job: str, client: Any, tmp_path: Path) -> None:
    if job == "probe":
        (local, local_events), (dask, dask_events) = run_both(PROBE, tmp_path, client)
    else:
        parameters = {"PathValue": "/mnt/drive/dir/path_file"}
        (local, local_events), (dask, dask_events) = run_both(
            Template.load(SHOWCASE), tmp_path, client, parameters
        )

    pd.testing.assert_frame_equal(comparable(dask), comparable(local))
    assert set(dask.tasks["worker"]) <= {"0", "1"}
    assert dask_events.task_story() == local_events.task_story()
    for step, task in zip(local.tasks["step"], local.tasks["task"], strict=True):
        assert without_pids(dask.log(step, task)) == without_pids(local.log(step, task))


def test_each_node_enters_its_environments_once_and_exits_them(client: Any, tmp_path: Path) -> None:
    recorder = Recorder()
    result = run_job(PROBE, executor=DaskExecutor(client), runs_root=tmp_path, on_event=recorder)

    assert result.ok, result.error
    nodes = set(result.tasks["worker"])
    assert nodes == {"0", "1"}
    counts = recorder.environment_counts()
    assert counts == {(node, env): (1, 1) for node in nodes for env in ("JobEnv", "RenderEnv")}
    environments = result.environments
    assert len(environments) == 4 and set(environments["state"]) == {"success"}
    for node in nodes:
        log = result.environment_log("JobEnv", node)
        assert "ENTER JobEnv" in log and "EXIT JobEnv s1" in log
    # The step environment exits before the job environment, on every node.
    exits = [e.outcome for e in recorder.events if type(e).__name__ == "EnvironmentExited"]
    for node in nodes:
        assert [o.name for o in exits if o.worker == node] == ["RenderEnv", "JobEnv"]
    directories = recorder.working_directories()
    assert len(directories) == 2
    assert not any(directory.exists() for directory in directories)


def test_a_50000_line_task_delivers_every_line_in_order(client: Any, tmp_path: Path) -> None:
    job = template([frames_step("Flood", 1, "seq 1 50000")])
    (local, _), (dask, events) = run_both(job, tmp_path, client)

    output = [line for line in events.lines("Flood", 0) if line.isdigit()]
    assert output == [str(number) for number in range(1, 50001)]
    assert without_pids(dask.log("Flood", 0)) == without_pids(local.log("Flood", 0))


def test_lines_arrive_while_the_task_runs(client: Any, tmp_path: Path) -> None:
    job = template(
        [
            frames_step(
                "Tick", 2, "for i in $(seq 1 10); do echo tick $(date +%s.%N); sleep 0.1; done"
            )
        ]
    )
    latencies: list[float] = []

    def on_event(event: Any) -> None:
        arrived = time.time()
        for line in getattr(event, "lines", ()):
            if line.startswith("tick "):
                latencies.append(arrived - float(line.split()[1]))

    result = run_job(job, executor=DaskExecutor(client), runs_root=tmp_path, on_event=on_event)

    assert result.ok and len(latencies) == 20
    latencies.sort()
    assert latencies[18] <= 0.25, latencies  # p95, printed -> event (measured about 50 ms)


def test_one_failed_task_stops_new_work_on_every_node(client: Any, tmp_path: Path) -> None:
    job = template(
        [
            frames_step(
                "Render",
                12,
                "if [ {{Task.Param.Frame}} = 2 ]; then exit 7; fi; sleep 0.3",
            ),
            frames_step("After", 2, "echo never", dependencies=[{"dependsOn": "Render"}]),
        ],
        jobEnvironments=[environment("JobEnv", "echo in", "echo out")],
    )
    recorder = Recorder()
    result = run_job(job, executor=DaskExecutor(client), runs_root=tmp_path, on_event=recorder)

    assert result.state == "failed"
    tasks = result.tasks
    assert not tasks.duplicated(["step", "task"]).any()
    failed = tasks[(tasks["step"] == "Render") & (tasks["task"] == 1)].iloc[0]
    assert failed["state"] == "failed" and failed["exit_code"] == 7
    # Tasks that never started have no rows; they are counted per step.
    assert "After" not in set(tasks["step"]) and result.not_run["After"] == 2
    assert sum(result.not_run.values()) >= 8 and len(tasks) + sum(result.not_run.values()) == 14
    assert len(recorder.of(TaskStarted)) <= 4
    assert set(result.environments["state"]) == {"success"}
    assert all(counts == (1, 1) for counts in recorder.environment_counts().values())


def test_a_redacted_value_reaches_no_event_and_no_record(client: Any, tmp_path: Path) -> None:
    secret = "hunter2-5f1c9e"
    job = template(
        [frames_step("Use", 2, "echo using $SECRET; echo 'openjd_status: have $SECRET'")],
        # The command line holds the secret in two pieces: it is logged before redaction.
        jobEnvironments=[
            environment("Vault", "echo 'openjd_redacted_env: SECRET=hunter2''-5f1c9e'", "echo bye")
        ],
        extensions=["REDACTED_ENV_VARS"],
    )
    recorder = Recorder()
    run_ids: list[str] = []
    on_scheduler: list[Any] = []

    def look_on_the_scheduler(event: Any) -> None:
        # What any client could read of the run's topic while the run goes on.
        if isinstance(event, RunStarted):
            run_ids.append(event.run_id)
        elif isinstance(event, TaskEnded):
            on_scheduler.append(client.get_events(topic_name(run_ids[0])))

    result = run_job(
        job,
        executor=DaskExecutor(client),
        runs_root=tmp_path,
        on_event=[recorder, look_on_the_scheduler],
    )

    assert result.ok, result.error
    assert "using ********" in result.log("Use", 0)
    assert all(secret not in repr(event) for event in recorder.events)
    assert on_scheduler and all(events for events in on_scheduler)
    assert secret not in repr(on_scheduler)
    assert client.get_events(topic_name(result.run_id)) == ()  # forgotten after the run
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_a_version_mismatch_names_both_versions(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dask_executor.local_versions()
    monkeypatch.setattr(
        dask_executor, "local_versions", lambda: {**real, "openjd-notebook": "0.0.0+client"}
    )

    with pytest.raises(ClusterError) as caught:
        DaskExecutor(client)

    message = str(caught.value)
    assert "0.0.0+client" in message and str(real["openjd-notebook"]) in message


def test_cluster_auto_without_a_client_fails_clearly_and_fast() -> None:
    started = time.monotonic()
    with pytest.raises(ClusterError, match="--cluster auto found no Dask client"):
        executor_for_cluster("auto")
    assert time.monotonic() - started < 5


def test_cluster_auto_uses_the_default_client(cluster: Any, tmp_path: Path) -> None:
    with distributed.Client(cluster) as default:
        executor = executor_for_cluster("auto", nodes=1)
        assert executor.client is default
        result = run_job(
            template([frames_step("A", 3, "true")]), executor=executor, runs_root=tmp_path
        )
    assert result.ok and len(set(result.tasks["worker"])) >= 1


def test_an_unreachable_scheduler_fails_clearly() -> None:
    started = time.monotonic()
    with pytest.raises(ClusterError, match="Could not connect to the Dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", connect_timeout_s=1)
    assert time.monotonic() - started < 5


def test_an_executor_made_from_an_address_owns_its_client(cluster: Any, tmp_path: Path) -> None:
    with DaskExecutor(cluster.scheduler_address) as executor:
        result = run_job(
            template([frames_step("A", 2, "true")]), executor=executor, runs_root=tmp_path
        )
        assert result.ok
    assert executor.client.status == "closed"
