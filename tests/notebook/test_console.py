"""The text view outside a kernel: real runs, printed to stdout."""

from __future__ import annotations

import io
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from openjd_notebook import Template, start_job
from openjd_notebook.jobs import JobResult, LogLines, RunStarted, TaskEnded, TaskOutcome
from openjd_notebook.jobs.outcomes import TaskState
from openjd_notebook.notebook.console import ConsoleView
from openjd_notebook.notebook.views import RunView, SummaryView, ViewOptions, in_kernel, make_view


def frames(count: int, code: str, name: str = "Render") -> dict[str, Any]:
    return {
        "name": name,
        "parameterSpace": {
            "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": f"1-{count}"}]
        },
        "script": {"actions": {"onRun": {"command": sys.executable, "args": ["-c", code]}}},
    }


def template(*steps: dict[str, Any]) -> Template:
    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Test Job",
        "steps": list(steps),
    }
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "sessions").mkdir()
    return {"runs_root": tmp_path / "runs", "session_root": tmp_path / "sessions"}


def run_with(view: RunView, job: Template, **options: Any) -> JobResult:
    run = start_job(job, on_event=view.handle, **options)
    view.bind(run)
    result = run.wait()
    view.finish(result)
    return result


def test_outside_a_kernel_the_view_is_text() -> None:
    assert not in_kernel()
    assert isinstance(make_view("Job", ViewOptions()), ConsoleView)
    assert isinstance(make_view("Job", ViewOptions(quiet=True)), SummaryView)


def test_a_run_prints_its_output_progress_and_summary(
    capsys: pytest.CaptureFixture[str], roots: dict[str, Any]
) -> None:
    view = make_view("Test Job", ViewOptions())
    result = run_with(view, template(frames(3, "print('frame {{Task.Param.Frame}}')")), **roots)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"Running 'Test Job': 1 step(s), 3 task(s), record {result.run_dir} "
        "(Ctrl-C = cancel, twice = kill)"
    )
    assert [line for line in lines if line.startswith("frame")] == ["frame 1", "frame 2", "frame 3"]
    assert not any(line.startswith(("Output:", "Process pid", "Running command")) for line in lines)
    assert any(line.startswith("Render  [" + "#" * 24 + "] 3/3 · 100% · ") for line in lines)
    assert lines[-len(result.summary_text().splitlines()) :] == result.summary_text().splitlines()
    assert any(line.startswith("Test Job: success | 3 tasks: 3 success | ") for line in lines)


def test_a_failure_prints_the_problem_and_a_failed_summary(
    capsys: pytest.CaptureFixture[str], roots: dict[str, Any]
) -> None:
    code = "import sys; sys.exit(3 if {{Task.Param.Frame}} == 2 else 0)"
    result = run_with(ConsoleView("Test Job", ViewOptions()), template(frames(3, code)), **roots)
    out = capsys.readouterr().out
    assert result.state == "failed"
    assert "Render[1] failed: " in out
    assert re.search(r"2/3 · 66% · [\d.]+ (tasks/s|s/task) · 1 failed", out), out
    assert out.rstrip().endswith(result.summary_text().rstrip())
    assert "Test Job: failed" in out


def test_tasks_that_did_not_run_are_counted_in_the_summary(
    capsys: pytest.CaptureFixture[str], roots: dict[str, Any]
) -> None:
    code = "import sys; sys.exit(3 if {{Task.Param.Frame}} == 1 else 0)"
    result = run_with(ConsoleView("Test Job", ViewOptions()), template(frames(5, code)), **roots)
    out = capsys.readouterr().out
    assert result.not_run == {"Render": 4}
    assert "5 tasks: 1 failed, 4 not run" in out
    assert "not run: 4 of Render (JobResult.not_run_tasks() lists them)" in out


def test_several_workers_prefix_their_output(
    capsys: pytest.CaptureFixture[str], roots: dict[str, Any]
) -> None:
    code = "import time; print('frame {{Task.Param.Frame}}'); time.sleep(0.3)"
    job = template(frames(4, code))
    run_with(ConsoleView("Test Job", ViewOptions()), job, workers=2, **roots)
    shown = [line for line in capsys.readouterr().out.splitlines() if "frame" in line]
    assert len(shown) == 4
    assert all(line.startswith(("[worker-1] frame ", "[worker-2] frame ")) for line in shown)
    assert {line.split()[0] for line in shown} == {"[worker-1]", "[worker-2]"}


def test_interrupt_feedback_and_a_summary_printed_once(
    capsys: pytest.CaptureFixture[str], roots: dict[str, Any]
) -> None:
    view = ConsoleView("Test Job", ViewOptions())
    view.show_cancel(force=False, grace_s=5)
    view.show_cancel(force=True, grace_s=5)
    result = run_with(view, template(frames(1, "print('x')")), **roots)
    view.finish(result)
    out = capsys.readouterr().out
    assert "Test Job | canceling, 5 s left before kill | 0:00 (interrupt again to kill)\n" in out
    assert "Test Job | killing | 0:00\n" in out
    assert out.count(result.summary_line()) == 1


def test_a_no_block_run_prints_its_summary_when_it_ends(
    capsys: pytest.CaptureFixture[str], roots: dict[str, Any]
) -> None:
    view = ConsoleView("Test Job", ViewOptions(blocking=False))
    run = start_job(template(frames(2, "print('hi')")), on_event=view.handle, **roots)
    view.bind(run)
    result = run.wait()  # returns once every event, RunEnded included, was handled
    out = capsys.readouterr().out
    assert "Ctrl-C" not in out
    assert out.rstrip().endswith(result.summary_text().rstrip())
    view.finish(result)
    assert capsys.readouterr().out == ""


def test_quiet_prints_only_the_summary(
    capsys: pytest.CaptureFixture[str], roots: dict[str, Any]
) -> None:
    view = make_view("Test Job", ViewOptions(quiet=True))
    result = run_with(view, template(frames(2, "print('loud')")), **roots)
    view.finish(result)
    assert capsys.readouterr().out == result.summary_text() + "\n"


def test_progress_lines_are_throttled_per_step_but_problems_and_the_end_always_show() -> None:
    stream = io.StringIO()
    view = ConsoleView("J", ViewOptions(), stream=stream, clock=lambda: 100.0)  # time stands still
    view.handle(RunStarted("r", "J", ("Render",), {"Render": 4}, datetime.now(timezone.utc), None))
    states: tuple[TaskState, ...] = ("success", "success", "failed", "success")
    for task, state in enumerate(states):
        view.handle(TaskEnded(TaskOutcome("Render", task, state=state, exit_code=0)))
    view.handle(LogLines("worker-1", "Render", 3, None, ("Output:", "late line")))
    written = stream.getvalue().splitlines()
    steps = [line for line in written if line.startswith("Render  [")]
    assert [line.split("] ")[1] for line in steps] == [
        "1/4 · 25%",
        "3/4 · 75% · 1 failed",
        "4/4 · 100% · 1 failed",
    ]
    assert "Render[2] failed: exit code 0" in written and written[-1] == "late line"
