"""JobResult: table shapes and dtypes, logs, display and equality, from hand-built outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from openjd_notebook.jobs.errors import JobsError
from openjd_notebook.jobs.outcomes import EnvironmentOutcome, TaskOutcome
from openjd_notebook.jobs.results import (
    JobFailedError,
    JobResult,
    LogNotAvailableError,
    TaskNotFoundError,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
COLUMNS = {
    "Render": [("Frame", "INT"), ("Scale", "FLOAT"), ("Camera", "STRING")],
    "Encode": [("Frames", "CHUNK[INT]"), ("Out", "PATH")],
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def render_task(index: int, **extra: object) -> TaskOutcome:
    values: dict[str, object] = {
        "state": "success",
        "exit_code": 0,
        "started": at(index),
        "ended": at(index + 1.5),
        "progress": 100.0,
        "worker": "worker-0",
        "log_path": f"logs/Render/task-{index:04d}.log",
    }
    values.update(extra)
    parameters = {"Frame": index + 1, "Scale": 0.5 * index, "Camera": f"cam{index}"}
    return TaskOutcome(step="Render", task=index, parameters=parameters, **values)  # type: ignore[arg-type]


def encode_task() -> TaskOutcome:
    return TaskOutcome(
        step="Encode",
        task=0,
        parameters={"Frames": "1-3", "Out": "/tmp/out.mp4"},
        state="failed",
        exit_code=3,
        started=at(10),
        ended=at(12),
        fail_message="encoder crashed",
        worker="worker-1",
        log_path="logs/Encode/task-0000.log",
    )


def environment() -> EnvironmentOutcome:
    return EnvironmentOutcome(
        name="Blender",
        scope="job",
        step=None,
        worker="worker-0",
        state="success",
        started=at(0),
        ended=at(13),
        log_path="logs/environments/worker-0.job.job.Blender.log",
    )


def make_result(run_dir: Path | None = None, **extra: object) -> JobResult:
    values: dict[str, object] = {
        "job_name": "Demo",
        "state": "failed",
        "started": T0,
        "ended": at(13),
        "tasks": [render_task(0), render_task(1), render_task(2), encode_task()],
        "environments": [environment()],
        "parameter_columns": COLUMNS,
        "run_dir": run_dir,
        "run_id": "run-1",
        "error": "1 task failed",
    }
    values.update(extra)
    return JobResult(**values)  # type: ignore[arg-type]


def test_task_columns_are_in_design_order() -> None:
    assert list(make_result().tasks.columns) == [
        "step", "task", "Frame", "Scale", "Camera", "Frames", "Out",
        "state", "exit_code", "started", "ended", "duration_s", "progress",
        "status_message", "fail_message", "worker", "log_path",
    ]  # fmt: skip


def test_task_dtypes() -> None:
    frame = make_result().tasks
    assert frame["task"].dtype == "int64"
    assert str(frame["exit_code"].dtype) == "Int64"
    assert str(frame["started"].dtype) == "datetime64[us, UTC]"
    assert str(frame["ended"].dtype) == "datetime64[us, UTC]"
    assert frame["duration_s"].dtype == "float64"
    assert frame["progress"].dtype == "float64"
    for name in ("Frame", "Scale", "Camera", "Frames", "Out"):
        assert frame[name].dtype == object


def test_parameter_columns_hold_typed_values_and_none_for_other_steps() -> None:
    frame = make_result().tasks
    render, encode = frame.iloc[1], frame.iloc[3]
    assert render["Frame"] == 2 and type(render["Frame"]) is int
    assert render["Scale"] == 0.5 and type(render["Scale"]) is float
    assert render["Camera"] == "cam1"
    assert render["Frames"] is None and render["Out"] is None
    assert encode["Frames"] == "1-3"
    assert encode["Out"] == "/tmp/out.mp4"
    assert encode["Frame"] is None


def test_outcome_values_reach_the_table() -> None:
    frame = make_result().tasks
    assert frame["step"].tolist() == ["Render", "Render", "Render", "Encode"]
    assert frame["state"].tolist() == ["success", "success", "success", "failed"]
    assert frame["exit_code"].tolist() == [0, 0, 0, 3]
    assert frame["duration_s"].tolist() == [1.5, 1.5, 1.5, 2.0]
    assert frame["started"].iloc[0] == pd.Timestamp(T0)
    assert pd.isna(frame["progress"].iloc[3])
    assert frame["fail_message"].iloc[3] == "encoder crashed"


def test_missing_values_are_missing() -> None:
    frame = make_result(tasks=[TaskOutcome(step="Render", task=0, state="canceled")]).tasks
    row = frame.iloc[0]
    assert row["state"] == "canceled"
    for column in ("exit_code", "started", "ended", "duration_s", "progress", "worker", "log_path"):
        assert pd.isna(row[column]), column


def test_tasks_frame_is_a_copy() -> None:
    result = make_result()
    frame = result.tasks
    frame.loc[0, "state"] = "edited"
    assert result.tasks["state"].iloc[0] == "success"


def test_parameter_named_like_an_outcome_column_gets_its_own_column() -> None:
    task = TaskOutcome(step="S", task=0, parameters={"state": "ready"}, state="success")
    frame = make_result(tasks=[task], parameter_columns={"S": [("state", "STRING")]}).tasks
    assert frame["state (parameter)"].tolist() == ["ready"]
    assert frame["state"].tolist() == ["success"]


def test_empty_result_has_all_columns() -> None:
    result = make_result(tasks=[], environments=[], parameter_columns={})
    assert len(result.tasks) == 0
    assert list(result.tasks.columns)[:2] == ["step", "task"]
    assert "name" in result.environments.columns


def test_environments_table() -> None:
    frame = make_result().environments
    assert list(frame.columns) == [
        "name", "scope", "step", "worker", "state", "started", "ended", "duration_s",
    ]  # fmt: skip
    assert frame["name"].tolist() == ["Blender"]
    assert pd.isna(frame["step"].iloc[0])
    assert frame["duration_s"].tolist() == [13.0]


def test_plain_attributes() -> None:
    result = make_result()
    assert result.state == "failed" and not result.ok
    assert result.duration_s == 13.0
    assert result.job_name == "Demo" and result.run_id == "run-1"
    assert result.error == "1 task failed"
    assert make_result(state="success", error=None).ok
    assert make_result(ended=None).duration_s is None


def test_failures_and_raise_for_state() -> None:
    result = make_result()
    assert result.failures["step"].tolist() == ["Encode"]
    with pytest.raises(JobFailedError, match="Encode\\[0\\] failed: encoder crashed") as caught:
        result.raise_for_state()
    assert caught.value.result is result
    ok = make_result(state="success", tasks=[render_task(0)])
    assert ok.raise_for_state() is ok


def write_log(run_dir: Path, relative: str, text: str) -> None:
    path = run_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_log_reads_the_task_log(tmp_path: Path) -> None:
    write_log(tmp_path, "logs/Render/task-0001.log", "frame 2 rendered\n")
    write_log(tmp_path, "logs/environments/worker-0.job.job.Blender.log", "entered\n")
    result = make_result(tmp_path)
    assert result.log("Render", 1) == "frame 2 rendered\n"
    assert result.environment_log("Blender") == "entered\n"
    assert result.environment_log("Blender", worker="worker-0") == "entered\n"


def test_unknown_step_names_the_available_steps(tmp_path: Path) -> None:
    with pytest.raises(KeyError) as caught:
        make_result(tmp_path).log("Rendr", 0)
    assert str(caught.value) == "no step 'Rendr' in this result; steps: 'Render', 'Encode'"
    assert isinstance(caught.value, TaskNotFoundError) and isinstance(caught.value, JobsError)


def test_unknown_task_names_the_task_range(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match=r"no task 7 in step 'Render'; its tasks are 0\.\.2"):
        make_result(tmp_path).log("Render", 7)


def test_unknown_environment_is_a_lookup_error(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match=r"no environment 'Maya'.*'Blender' on 'worker-0'"):
        make_result(tmp_path).environment_log("Maya")


def test_log_without_a_record_directory_says_so() -> None:
    with pytest.raises(LogNotAvailableError, match="no record directory"):
        make_result(None).log("Render", 0)


def test_log_of_a_task_that_did_not_run(tmp_path: Path) -> None:
    result = make_result(tmp_path, tasks=[TaskOutcome(step="Render", task=0)])
    with pytest.raises(LogNotAvailableError, match="did not run"):
        result.log("Render", 0)


def test_html_repr_has_summary_and_table() -> None:
    page = make_result(Path("/records/demo"))._repr_html_()
    assert "<b>Demo</b>" in page
    assert ">failed</span>" in page and "color:#c62828" in page
    assert "4 tasks: 3 success, 1 failed" in page
    assert "13.0 s" in page and "/records/demo" in page
    assert "<table" in page and "encoder crashed" in page and "cam2" in page


def test_html_repr_escapes_user_text() -> None:
    task = render_task(0, status_message="<script>alert(1)</script>", fail_message="<b>x</b>")
    page = make_result(job_name="<i>job</i>", tasks=[task], error="a < b")._repr_html_()
    assert "<script>" not in page and "<b>x</b>" not in page and "<i>job</i>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "&lt;i&gt;job&lt;/i&gt;" in page
    assert "a &lt; b" in page


def test_text_reprs() -> None:
    result = make_result(Path("/records/demo"))
    assert repr(result) == "<JobResult 'Demo' failed: 4 tasks: 3 success, 1 failed, 13.0 s>"
    text = result.summary_text()
    first, second = text.splitlines()[:2]
    assert first == "Demo: failed | 4 tasks: 3 success, 1 failed | 13.0 s | record /records/demo"
    assert second == "error: 1 task failed"
    assert "encoder crashed" in text


def test_long_durations_read_in_minutes() -> None:
    assert "2 min 5 s" in repr(make_result(ended=at(125)))
    assert "1 h 1 min" in repr(make_result(ended=at(3660)))


def test_equality_covers_outcomes_and_ignores_run_dir(tmp_path: Path) -> None:
    assert make_result(tmp_path) == make_result(None)
    assert make_result() != make_result(state="canceled")
    assert make_result() != make_result(tasks=[render_task(0)])
    assert make_result() != make_result(run_id="other")
    assert make_result() != make_result(parameter_columns={"Render": [("Frame", "INT")]})
    assert make_result() != "not a result"


# ---- tasks that did not run: counted, listed on demand ---------------------------------------


def test_not_run_counts_join_every_count_shown() -> None:
    result = make_result(Path("/records/demo"), not_run={"Render": 182, "Encode": 1})
    assert result.not_run == {"Render": 182, "Encode": 1}
    assert result.state_counts() == {"success": 3, "failed": 1, "not_run": 183}
    assert repr(result) == (
        "<JobResult 'Demo' failed: 187 tasks: 3 success, 1 failed, 183 not run, 13.0 s>"
    )
    text = result.summary_text()
    assert "187 tasks: 3 success, 1 failed, 183 not run" in text.splitlines()[0]
    assert text.splitlines()[-1] == (
        "not run: 182 of Render, 1 of Encode (JobResult.not_run_tasks() lists them)"
    )
    assert "not run: 182 of Render, 1 of Encode" in result._repr_html_()
    assert len(result.tasks) == 4  # rows only for the tasks that ran
    assert result.tasks.attrs["not_run"] == result.not_run
    assert result.failures.attrs["not_run"] == result.not_run
    with pytest.raises(JobFailedError, match="not run: 182 of Render"):
        result.raise_for_state()


def test_not_run_rows_of_older_records_are_counted_and_listed() -> None:
    legacy = [TaskOutcome(step="Render", task=i, parameters={"Frame": i + 1}) for i in (3, 4)]
    result = make_result(tasks=[render_task(0), *legacy])
    assert list(result.tasks["task"]) == [0] and result.not_run == {"Render": 2}
    listed = result.not_run_tasks()
    assert list(listed["task"]) == [3, 4] and set(listed["state"]) == {"not_run"}
    assert list(listed.columns) == list(result.tasks.columns)
    assert list(result.not_run_tasks(limit=1)["Frame"]) == [4]
    assert result.not_run_tasks("Encode").empty


def test_not_run_tasks_need_a_selection_to_be_listed() -> None:
    counted = make_result(not_run={"Render": 3})
    with pytest.raises(LookupError, match="no selection"):
        counted.not_run_tasks()
    assert make_result().not_run_tasks().empty  # nothing to list needs no selection
    with pytest.raises(TaskNotFoundError, match="no step 'Nope'"):
        counted.not_run_tasks("Nope")


def test_a_task_that_did_not_run_has_no_log(tmp_path: Path) -> None:
    result = make_result(tmp_path, not_run={"Render": 5})
    with pytest.raises(LogNotAvailableError, match=r"task 9 of step 'Render' has no log.*5 tasks"):
        result.log("Render", 9)
    with pytest.raises(TaskNotFoundError, match=r"no task 9 in step 'Encode'; its tasks are 0"):
        result.log("Encode", 9)


def test_equality_covers_the_not_run_counts() -> None:
    assert make_result(not_run={"Render": 2}) != make_result(not_run={"Render": 3})
    assert make_result(not_run={"Render": 0}) == make_result()


# ---- the summaries: counts per step, the tasks that need attention, the whole table folded ---


def big_canceled_run(run_dir: Path | None = None) -> JobResult:
    """200 frames on two workers: 15 done, 2 canceled mid-frame, the rest never started."""
    tasks = [render_task(i, worker=f"worker-{1 + i % 2}", progress=None) for i in range(15)]
    tasks += [
        render_task(i, state="canceled", exit_code=None, worker=f"worker-{1 + i % 2}",
                    fail_message="canceled by the user")
        for i in (15, 16)
    ]  # fmt: skip
    return make_result(
        run_dir,
        state="canceled",
        ended=at(20),
        tasks=tasks,
        not_run={"Render": 183},
        error="canceled",
    )


def test_the_text_summary_counts_per_step_then_lists_only_what_needs_attention() -> None:
    text = big_canceled_run().summary_text()
    lines = text.splitlines()
    assert lines[0] == "Demo: canceled | 200 tasks: 15 success, 2 canceled, 183 not run | 20.0 s"
    assert lines[2].split() == ["step", "tasks", "success", "canceled", "not_run"]
    assert lines[3].split() == ["Render", "200", "15", "2", "183"]
    assert lines[4] == "needs attention:"
    attention = [line for line in lines if "Render" in line and "canceled by the user" in line]
    assert len(attention) == 2  # the two canceled tasks, not the 15 that succeeded
    assert len(lines) == 9 and lines[-1].startswith("not run: 183 of Render")
    assert "NaN" not in text and "<NA>" not in text and "None" not in text


def test_the_record_is_shown_relative_to_a_base_and_never_as_a_home_path(tmp_path: Path) -> None:
    run_dir = tmp_path / "openjd-runs" / "20260101-Demo-1"
    result = make_result(run_dir)
    assert result.summary_line(tmp_path).endswith("| record openjd-runs/20260101-Demo-1")
    assert result.summary_line().endswith(f"| record {run_dir}")  # the CLI: as it is
    page = result.summary_html(tmp_path)
    assert "href='openjd-runs/20260101-Demo-1/run.json'" in page
    assert "<code style='white-space:nowrap'>openjd-runs/20260101-Demo-1</code>" in page
    elsewhere = make_result(Path.home() / "elsewhere" / "run").summary_line(tmp_path)
    assert elsewhere.endswith("| record ~/elsewhere/run")


def test_the_html_summary_groups_counts_and_folds_the_full_table(tmp_path: Path) -> None:
    page = big_canceled_run(tmp_path / "run").summary_html(tmp_path)
    steps = page.split("<table class='openjd-steps'", 1)[1].split("</table>", 1)[0]
    assert ">not run</th>" in steps and "color:#ef6c00'>2</td>" in steps  # canceled, orange
    attention = page.split("<table class='openjd-attention'", 1)[1].split("</table>", 1)[0]
    assert attention.count("<tr>") == 3  # the header and the two canceled tasks
    assert "Needs attention: 2 tasks" in page
    assert "<details><summary style='cursor:pointer'>All 17 tasks that ran</summary>" in page
    full = page.split("<table class='openjd-all-tasks'", 1)[1]
    assert full.count("<tr>") == 18
    assert "href='run/logs/Render/task-0000.log'" in full
    assert "NaN" not in page and "&lt;NA&gt;" not in page and "None" not in page
    # Two workers ran: a small timeline of the tasks per worker.
    assert "<svg" in page and "result.timeline()" in page


def test_a_successful_one_worker_run_has_no_attention_table_and_no_timeline() -> None:
    page = make_result(state="success", tasks=[render_task(0), render_task(1)])._repr_html_()
    assert "openjd-attention" not in page and "<svg" not in page
    assert "All 2 tasks that ran" in page


# ---- the timeline -----------------------------------------------------------------------------


def test_the_timeline_has_a_lane_per_worker_and_a_bar_per_task() -> None:
    result = big_canceled_run()
    timeline = result.timeline()
    assert timeline.workers == ("worker-1", "worker-2")
    assert len(timeline.bars) == 17 and timeline.duration_s == 20.0
    svg = timeline.to_svg()
    assert svg.startswith("<svg") and svg.count("class='openjd-task'") == 17
    assert "<title>Render[15] Frame=16 Scale=7.5 Camera=cam15\ncanceled, 1.5 s on worker-2" in svg
    assert "style='fill:#ef6c00" in svg  # canceled bars in orange
    assert "<script" not in svg
    text = str(timeline)
    assert text.splitlines()[0] == "Demo: 17 tasks on 2 workers in 20 s"
    lane = text.splitlines()[1]
    assert lane.startswith("worker-1 |#") and "~" in text
    assert "openjd-timeline" in timeline._repr_html_()


def test_a_timeline_leaves_out_tasks_that_never_started() -> None:
    never = TaskOutcome(step="Render", task=9, state="canceled")
    timeline = make_result(tasks=[render_task(0), never]).timeline()
    assert [bar.task for bar in timeline.bars] == [0]
    assert make_result(tasks=[]).timeline().to_svg().count("openjd-task") == 0
