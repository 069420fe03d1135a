"""Losing a client or a worker mid-run: nothing the lost side started survives it, and a
task whose worker died runs again elsewhere (or fails with "worker lost")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_support import Recorder, environment, frames_step, local_cluster, read_pids, template

from helpers import alive, wait_until
from openjd_notebook import run_job, start_job
from openjd_notebook.jobs import TaskStarted

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from openjd_notebook.jobs.dask_executor import DaskExecutor  # noqa: E402

# The first attempt starts a grandchild in a session of its own, then waits in silence: a
# dead pipe never reaches either of them. A later attempt succeeds at once.
FIRST_ATTEMPT_HANGS = (
    "if [ -e '{{Param.Dir}}/first' ]; then echo second attempt; exit 0; fi;"
    " touch '{{Param.Dir}}/first';"
    " setsid sleep 600 & echo $! > '{{Param.Dir}}/grandchild.pid';"
    " echo $$ > '{{Param.Dir}}/action.pid';"
    " echo started; exec sleep 600"
)
LOSS_JOB = template(
    [frames_step("Work", 1, FIRST_ATTEMPT_HANGS)],
    parameterDefinitions=[{"name": "Dir", "type": "PATH"}],
    jobEnvironments=[environment("JobEnv", "echo in", "echo out")],
)

CLIENT = textwrap.dedent(
    """
    import sys, time
    from openjd_notebook import Template, start_job
    from openjd_notebook.jobs.dask_executor import DaskExecutor

    address, directory, text = sys.argv[1:4]
    run = start_job(
        Template.from_text(text),
        {"Dir": directory},
        executor=DaskExecutor(address),
        runs_root=directory + "/runs",
    )
    time.sleep(600)
    """
)


@pytest.fixture(scope="module")
def fragile_cluster() -> Iterator[Any]:
    """A cluster of its own: these tests kill its workers (its nannies restart them)."""
    with local_cluster() as cluster:
        yield cluster


@pytest.fixture
def fragile_client(fragile_cluster: Any) -> Iterator[Any]:
    with distributed.Client(fragile_cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


def worker_pid(client: Any, name: str) -> int:
    names = {
        address: str(info["name"]) for address, info in client.scheduler_info()["workers"].items()
    }
    pids = client.run(os.getpid)
    return next(pids[address] for address, worker in names.items() if worker == name)


def test_a_task_whose_worker_dies_runs_again_on_another_node(
    fragile_client: Any, tmp_path: Path
) -> None:
    recorder = Recorder()
    run = start_job(
        LOSS_JOB,
        {"Dir": str(tmp_path)},
        executor=DaskExecutor(fragile_client),
        runs_root=tmp_path / "runs",
        on_event=recorder,
    )
    recorder.wait_for(
        lambda events: "started" in {line for e in events for line in getattr(e, "lines", ())}
    )
    killed = recorder.of(TaskStarted)[0].worker
    pids = read_pids(tmp_path, "*.pid")
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    directories = recorder.working_directories(killed)

    os.kill(worker_pid(fragile_client, killed), signal.SIGKILL)

    assert wait_until(lambda: not any(alive(pid) for pid in pids), 2.0) is not None
    assert wait_until(lambda: not any(d.exists() for d in directories), 2.0) is not None
    result = run.wait(60)
    assert result.ok, result.error
    task = result.task_outcomes[0]
    assert task.attempts == 2
    assert "second attempt" in result.log("Work", 0)
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["tasks"][0]["attempts"] == 2
    entered = [e.worker for e in recorder.events if type(e).__name__ == "EnvironmentEntered"]
    assert entered == [killed, task.worker]


def test_a_task_fails_with_worker_lost_once_dask_gives_up(tmp_path: Path) -> None:
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        local_cluster() as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        recorder = Recorder()
        run = start_job(
            LOSS_JOB,
            {"Dir": str(tmp_path)},
            executor=DaskExecutor(client),
            runs_root=tmp_path / "runs",
            on_event=recorder,
        )
        recorder.wait_for(lambda events: bool([e for e in events if isinstance(e, TaskStarted)]))
        wait_until(lambda: len(read_pids(tmp_path, "*.pid")) == 2, 10)
        os.kill(worker_pid(client, recorder.of(TaskStarted)[0].worker), signal.SIGKILL)
        result = run.wait(60)

    assert result.state == "failed"
    task = result.task_outcomes[0]
    assert task.state == "failed" and "worker lost" in (task.fail_message or "")
    assert not any(alive(pid) for pid in read_pids(tmp_path, "*.pid"))


def test_nothing_runs_again_after_the_run_ended(fragile_client: Any, tmp_path: Path) -> None:
    count = tmp_path / "count"
    job = template([frames_step("Work", 4, f"echo ran >> '{count}'")])
    result = run_job(job, executor=DaskExecutor(fragile_client), runs_root=tmp_path / "runs")
    assert result.ok and len(count.read_text().splitlines()) == 4

    worker = str(result.tasks["worker"].iloc[0])
    os.kill(worker_pid(fragile_client, worker), signal.SIGKILL)
    fragile_client.wait_for_workers(2, timeout=60)
    time.sleep(0.5)

    assert len(count.read_text().splitlines()) == 4


def test_killing_the_client_kills_its_actions_and_exits_its_environments(
    fragile_cluster: Any, tmp_path: Path
) -> None:
    job = template(
        [frames_step("Work", 1, FIRST_ATTEMPT_HANGS)],
        parameterDefinitions=[{"name": "Dir", "type": "PATH"}],
        jobEnvironments=[environment("JobEnv", "echo in", "echo out > '{{Param.Dir}}/exited'")],
    )
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, fragile_cluster.scheduler_address, str(tmp_path), job.text]
    )
    try:
        assert wait_until(lambda: len(read_pids(tmp_path, "*.pid")) == 2, 30) is not None
        pids = read_pids(tmp_path, "*.pid")
        assert all(alive(pid) for pid in pids)

        client.send_signal(signal.SIGKILL)
        client.wait()

        assert wait_until(lambda: not any(alive(pid) for pid in pids), 2.0) is not None
        assert wait_until((tmp_path / "exited").exists, 5.0) is not None
    finally:
        client.kill()
        client.wait()
