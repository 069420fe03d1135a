"""Run records: directory layout, run.json, CSV tables, load_run round trips and runs() listing."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from openjd_notebook.jobs.errors import JobsError
from openjd_notebook.jobs.outcomes import EnvironmentOutcome, TaskOutcome
from openjd_notebook.jobs.records import RUNS_COLUMNS, RunRecorder, RunRecordError, load_run, runs
from openjd_notebook.jobs.results import JobResult

T0 = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
COLUMNS = {
    "Render": [("Frame", "INT"), ("Scale", "FLOAT"), ("Camera", "STRING")],
    "Encode": [("Frames", "CHUNK[INT]"), ("Out", "PATH")],
}
TEMPLATE = "specificationVersion: jobtemplate-2023-09\nname: Demo\n"


def start(root: Path, job_name: str = "Demo", started: datetime = T0) -> RunRecorder:
    return RunRecorder.create(
        root=root,
        job_name=job_name,
        template_text=TEMPLATE,
        template_digest="sha256:abc",
        parameters={"Frames": "1-3"},
        options={"workers": 2, "session_root": Path("/tmp/s"), "tasks": (1, 2)},
        started=started,
    )


def outcomes(recorder: RunRecorder) -> tuple[list[TaskOutcome], list[EnvironmentOutcome]]:
    tasks = []
    for index in range(2):
        path, relative = recorder.log_path_for_task("Render", index)
        path.write_text(f"render {index}\n")
        tasks.append(
            TaskOutcome(
                step="Render",
                task=index,
                parameters={"Frame": index + 1, "Scale": 2.0, "Camera": "cam"},
                state="success",
                exit_code=0,
                started=T0 + timedelta(seconds=index),
                ended=T0 + timedelta(seconds=index + 1),
                progress=100.0,
                status_message="done",
                worker="worker-0",
                log_path=relative,
                attempts=1,
            )
        )
    tasks.append(
        TaskOutcome(step="Encode", task=0, parameters={"Frames": "1-2", "Out": "/o"}, state="failed",
                    exit_code=1, fail_message="boom", worker="worker-1")
    )  # fmt: skip
    tasks.append(TaskOutcome(step="Encode", task=1, parameters={"Frames": "3", "Out": "/o"}))
    path, relative = recorder.log_path_for_environment("Blender Env", "job", None, "worker-0")
    path.write_text("entered\n")
    env = EnvironmentOutcome(
        name="Blender Env", scope="job", step=None, worker="worker-0", state="success",
        started=T0, ended=T0 + timedelta(seconds=3), log_path=relative,
    )  # fmt: skip
    return tasks, [env]


def finish(recorder: RunRecorder, state: str = "failed") -> JobResult:
    tasks, envs = outcomes(recorder)
    return recorder.finish(
        state=state,  # type: ignore[arg-type]
        ended=recorder.started + timedelta(seconds=4),
        tasks=tasks,
        environments=envs,
        parameter_columns=COLUMNS,
        error="1 task failed",
    )


def read_run_json(run_dir: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
    return body


def test_create_makes_a_named_directory_with_a_running_record(tmp_path: Path) -> None:
    recorder = start(tmp_path)
    assert recorder.run_dir.parent == tmp_path
    stamp, name, short_id = recorder.run_dir.name.split("-")
    assert stamp == "20250301T120000Z" and name == "Demo"
    assert len(short_id) == 8 and int(short_id, 16) >= 0
    assert recorder.run_id == short_id
    body = read_run_json(recorder.run_dir)
    assert body["state"] == "running" and body["ended"] is None
    assert body["template"] == {"digest": "sha256:abc", "text": TEMPLATE}
    assert body["parameters"] == {"Frames": "1-3"}
    assert body["options"] == {"workers": 2, "session_root": "/tmp/s", "tasks": [1, 2]}
    assert set(body["versions"]) == {"openjd-notebook", "openjd-model", "python"}
    assert body["versions"]["openjd-model"].startswith("0.14")
    assert {"hostname", "platform", "cpu_count"} <= set(body["host"])
    assert body["started"] == T0.isoformat()


def test_start_time_is_written_in_utc(tmp_path: Path) -> None:
    tokyo = datetime(2025, 3, 1, 21, 0, 0, tzinfo=timezone(timedelta(hours=9)))
    assert start(tmp_path, started=tokyo).run_dir.name.startswith("20250301T120000Z-")


def test_default_root_is_openjd_runs_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    recorder = RunRecorder.create(
        root=None, job_name="J", template_text="", template_digest="", parameters={},
        options={}, started=T0,
    )  # fmt: skip
    assert recorder.run_dir.parent == tmp_path / "openjd-runs"
    assert recorder.run_dir.is_absolute()
    assert runs()["path"].tolist() == [recorder.run_dir]


def test_job_names_become_safe_directory_names(tmp_path: Path) -> None:
    run_dir = start(tmp_path, job_name="My Job/../x").run_dir
    assert run_dir.parent == tmp_path
    assert "/" not in run_dir.name and ".." not in run_dir.name
    assert run_dir.name.split("-")[1] == "My_Job_x"
    assert start(tmp_path, job_name="///").run_dir.name.split("-")[1] == "job"


def test_runs_started_in_the_same_second_get_different_directories(tmp_path: Path) -> None:
    dirs = [start(tmp_path).run_dir for _ in range(20)]
    assert len(set(dirs)) == 20


def test_a_given_run_id_names_the_directory_and_stays_unique(tmp_path: Path) -> None:
    first = RunRecorder.create(
        root=tmp_path, job_name="J", template_text="", template_digest="", parameters={},
        options={}, started=T0, run_id="0badcafe",
    )  # fmt: skip
    again = RunRecorder.create(
        root=tmp_path, job_name="J", template_text="", template_digest="", parameters={},
        options={}, started=T0, run_id="0badcafe",
    )  # fmt: skip
    assert first.run_dir.name == "20250301T120000Z-J-0badcafe"
    assert again.run_dir != first.run_dir
    assert first.run_id == again.run_id == "0badcafe"
    assert read_run_json(first.run_dir)["run_id"] == "0badcafe"


def test_log_paths_are_relative_safe_and_their_directories_exist(tmp_path: Path) -> None:
    recorder = start(tmp_path)
    path, relative = recorder.log_path_for_task("Render", 7)
    assert relative == "logs/Render/task-0007.log"
    assert path == recorder.run_dir / relative and path.parent.is_dir()
    path, relative = recorder.log_path_for_environment("Env", "step", "Render", "worker-1")
    assert relative == "logs/environments/worker-1.step.Render.Env.log"
    assert path.parent.is_dir()
    _, relative = recorder.log_path_for_environment("Env", "job", None, "worker-1")
    assert relative == "logs/environments/worker-1.job.job.Env.log"


def test_odd_step_names_stay_inside_the_record_and_apart(tmp_path: Path) -> None:
    recorder = start(tmp_path)
    odd = [recorder.log_path_for_task(step, 0) for step in ("a b", "a/b", "../..", "a_b")]
    for path, relative in odd:
        assert path.resolve().is_relative_to(recorder.run_dir.resolve())
        assert relative.count("/") == 2
    assert len({relative for _, relative in odd}) == 4
    _, env = recorder.log_path_for_environment("x.y", "step", "a.b", "w/1")
    assert env.count("/") == 2 and env.count(".") == 4


def test_finish_writes_tables_and_the_final_record(tmp_path: Path) -> None:
    recorder = start(tmp_path)
    result = finish(recorder)
    assert result.run_dir == recorder.run_dir and result.run_id == recorder.run_id
    body = read_run_json(recorder.run_dir)
    assert body["state"] == "failed" and body["duration_s"] == 4.0
    assert body["error"] == "1 task failed"
    assert body["parameter_columns"]["Encode"] == [["Frames", "CHUNK[INT]"], ["Out", "PATH"]]
    # Rows for the tasks that ran; the one that did not is counted.
    assert len(body["tasks"]) == 3 and body["tasks"][0]["parameters"]["Frame"] == 1
    assert body["not_run"] == {"Encode": 1}
    tasks_csv = pd.read_csv(recorder.run_dir / "tasks.csv")
    assert list(tasks_csv.columns) == list(result.tasks.columns)
    assert tasks_csv["state"].tolist() == ["success", "success", "failed"]
    envs_csv = pd.read_csv(recorder.run_dir / "environments.csv")
    assert envs_csv["name"].tolist() == ["Blender Env"]
    assert not list(recorder.run_dir.glob(".*.tmp"))


def test_load_run_round_trips_exactly(tmp_path: Path) -> None:
    result = finish(start(tmp_path))
    loaded = load_run(result.run_dir)  # type: ignore[arg-type]
    assert loaded == result
    assert loaded.run_dir == result.run_dir
    assert loaded.error == result.error and loaded.duration_s == 4.0
    assert type(loaded.tasks["Frame"].iloc[0]) is int
    assert type(loaded.tasks["Scale"].iloc[0]) is float
    assert loaded.tasks["Frames"].iloc[2] == "1-2"
    assert loaded.log("Render", 1) == "render 1\n"
    assert loaded.environment_log("Blender Env") == "entered\n"
    pd.testing.assert_frame_equal(loaded.tasks, result.tasks)
    pd.testing.assert_frame_equal(loaded.environments, result.environments)


def test_load_run_accepts_the_run_json_path_and_a_string(tmp_path: Path) -> None:
    result = finish(start(tmp_path), state="success")
    assert load_run(str(result.run_dir / "run.json")) == result  # type: ignore[operator]


def test_a_float_parameter_written_as_an_integer_loads_as_float(tmp_path: Path) -> None:
    recorder = start(tmp_path)
    task = TaskOutcome(
        step="Render", task=0, parameters={"Frame": 1, "Scale": 2, "Camera": "c"}, state="success"
    )
    recorder.finish(state="success", ended=T0, tasks=[task], environments=[],
                    parameter_columns=COLUMNS)  # fmt: skip
    assert type(load_run(recorder.run_dir).task_outcomes[0].parameters["Scale"]) is float


def test_a_crashed_run_loads_as_failed(tmp_path: Path) -> None:
    recorder = start(tmp_path)
    loaded = load_run(recorder.run_dir)
    assert loaded.state == "failed" and not loaded.ok
    assert loaded.error == "the run did not finish (record incomplete)"
    assert loaded.ended is None and loaded.task_outcomes == ()
    assert loaded.job_name == "Demo" and loaded.started == T0


def test_missing_run_json_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunRecordError, match=r"run\.json.*missing") as caught:
        load_run(tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert isinstance(caught.value, JobsError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "cannot read run record"),
        ("[1, 2]", "not a JSON object"),
        ('{"state": "success"}', "missing key 'job_name'"),
        ('{"state": "exploded", "job_name": "J", "started": "2025-01-01T00:00:00"}', "exploded"),
        ('{"state": "success", "job_name": "J", "started": "yesterday"}', "yesterday"),
    ],
)
def test_malformed_run_json_names_the_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(RunRecordError) as caught:
        load_run(tmp_path)
    assert str(tmp_path / "run.json") in str(caught.value)
    assert problem in str(caught.value)


def test_runs_lists_newest_first_and_skips_junk(tmp_path: Path) -> None:
    old = finish(start(tmp_path, job_name="Old", started=T0), state="success")
    new = finish(start(tmp_path, job_name="New", started=T0 + timedelta(hours=1)))
    running = start(tmp_path, job_name="Live", started=T0 + timedelta(minutes=5))
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{oops")
    (tmp_path / "not-a-dir.txt").write_text("x")
    with pytest.warns(UserWarning, match=r"skipped .*broken.run\.json: .*cannot read run record"):
        frame = runs(tmp_path)
    assert list(frame.columns) == list(RUNS_COLUMNS)
    assert frame["job_name"].tolist() == ["New", "Live", "Old"]
    assert frame["path"].tolist() == [new.run_dir, running.run_dir, old.run_dir]
    assert frame["run_id"].tolist() == [new.run_id, running.run_id, old.run_id]
    assert frame["state"].tolist() == ["failed", "running", "success"]
    assert frame["tasks"].tolist() == [4, 0, 4]
    assert frame["not_run"].tolist() == [1, 0, 1]
    assert frame["succeeded"].tolist() == [2, 0, 2]
    assert frame["failed"].tolist() == [1, 0, 1]
    # Only the broken record is reported: a directory without run.json is not a record.
    assert list(frame.attrs["skipped"]) == [str(tmp_path / "broken" / "run.json")]
    assert frame["template_digest"].tolist() == ["sha256:abc"] * 3
    assert str(frame["started"].dtype).startswith("datetime64") and frame["started"].dt.tz
    assert frame["duration_s"].tolist()[0] == 4.0 and pd.isna(frame["duration_s"].iloc[1])


def test_runs_of_an_empty_or_missing_root_is_an_empty_frame(tmp_path: Path) -> None:
    for root in (tmp_path, tmp_path / "nowhere"):
        frame = runs(root)
        assert frame.empty and list(frame.columns) == list(RUNS_COLUMNS)


def test_log_paths_can_be_taken_from_several_threads(tmp_path: Path) -> None:
    recorder = start(tmp_path)
    results: list[str] = []

    def take(worker: int) -> None:
        for task in range(20):
            results.append(recorder.log_path_for_task(f"Step {worker % 2}", worker * 20 + task)[1])

    threads = [threading.Thread(target=take, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 80


REAL_TEMPLATE = """\
specificationVersion: jobtemplate-2023-09
name: Real
parameterDefinitions: [{name: Last, type: INT}]
steps:
- name: Render
  parameterSpace:
    taskParameterDefinitions: [{name: Frame, type: INT, range: "1-{{Param.Last}}"}]
  script: {actions: {onRun: {command: "true"}}}
"""


def test_a_crashed_run_counts_what_did_not_run_from_its_template(tmp_path: Path) -> None:
    recorder = RunRecorder.create(
        root=tmp_path,
        job_name="Real",
        template_text=REAL_TEMPLATE,
        template_digest="sha256:real",
        # An external environment's parameter is recorded too; the job ignores it.
        parameters={"Last": "6", "EnvOnly": "x"},
        options={"step": None, "tasks": "Frame=2-5", "max_tasks": None},
        started=T0,
        parameter_columns={"Render": [("Frame", "INT")]},
    )
    recorder.append_task(TaskOutcome("Render", 1, {"Frame": 2}, state="success"))
    loaded = load_run(recorder.run_dir)
    assert loaded.state == "failed" and list(loaded.tasks["Frame"]) == [2]
    assert loaded.not_run == {"Render": 3}
    assert list(loaded.not_run_tasks()["Frame"]) == [3, 4, 5]
    # The listing does not re-create jobs: a running record counts nothing as not run.
    assert runs(tmp_path)[["state", "tasks", "not_run"]].values.tolist() == [["running", 1, 0]]


def test_a_record_whose_template_no_longer_makes_the_job_still_loads(tmp_path: Path) -> None:
    loaded = load_run(finish(start(tmp_path)).run_dir)  # type: ignore[arg-type]
    assert loaded.not_run == {"Encode": 1}
    with pytest.raises(RunRecordError, match="cannot list the tasks that did not run"):
        loaded.not_run_tasks()
