"""What a node is on Dask: a worker thread by default, the whole worker with a resource."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_support import Recorder, environment, frames_step, template

from openjd_notebook import run_job

distributed = pytest.importorskip("distributed")

from openjd_notebook.jobs.dask_executor import DaskExecutor  # noqa: E402

JOB = template(
    [frames_step("Work", 3, "sleep 0.3")],
    jobEnvironments=[environment("JobEnv", "echo in", "echo out")],
)


@pytest.fixture(scope="module")
def three_thread_client() -> Iterator[Any]:
    """One worker process with three threads, offering one "openjd" slot."""
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=3,
            processes=True,
            resources={"openjd": 1},
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


def overlapping(result: Any) -> bool:
    """Whether a task started before the one before it ended."""
    tasks = result.tasks.sort_values("started")
    ends, starts = list(tasks["ended"]), list(tasks["started"])
    return any(starts[i + 1] < ends[i] for i in range(len(ends) - 1))


def test_a_resource_makes_the_whole_worker_one_node(
    three_thread_client: Any, tmp_path: Path
) -> None:
    recorder = Recorder()
    executor = DaskExecutor(three_thread_client, resources={"openjd": 1})
    result = run_job(JOB, executor=executor, runs_root=tmp_path, on_event=recorder)

    assert result.ok, result.error
    assert not overlapping(result)
    assert len(set(result.tasks["worker"])) == 1
    assert list(recorder.environment_counts().values()) == [(1, 1)]


def test_without_a_resource_each_busy_thread_is_a_node(
    three_thread_client: Any, tmp_path: Path
) -> None:
    recorder = Recorder()
    result = run_job(
        JOB, executor=DaskExecutor(three_thread_client), runs_root=tmp_path, on_event=recorder
    )

    assert result.ok, result.error
    assert overlapping(result)
    nodes = set(result.tasks["worker"])
    assert len(nodes) == 3 and all(name.startswith("0") for name in nodes)
    assert all(counts == (1, 1) for counts in recorder.environment_counts().values())
    assert len(result.environments) == 3


def test_executor_path_mapping_rules_apply_on_the_workers(client: Any, tmp_path: Path) -> None:
    rules = [
        {
            "source_path_format": "POSIX",
            "source_path": "/client/projects",
            "destination_path": "/worker/projects",
        }
    ]
    job = template(
        [frames_step("Render", 1, "echo scene {{Param.Scene}}")],
        parameterDefinitions=[{"name": "Scene", "type": "PATH"}],
    )
    executor = DaskExecutor(client, path_mapping_rules=rules)
    result = run_job(job, {"Scene": "/client/projects/a.ma"}, executor=executor, runs_root=tmp_path)

    assert result.ok, result.error
    assert "scene /worker/projects/a.ma" in result.log("Render", 0)
