"""The pure progress model and its text: folding events, bounded tails, bar styles, countdowns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from openjd_notebook import cli_output, progress
from openjd_notebook.jobs import (
    JobResult,
    LogLines,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskOutcome,
    TaskProgress,
    TaskStarted,
    TaskStatus,
)
from openjd_notebook.jobs.outcomes import TaskState
from openjd_notebook.progress import (
    CancelRequest,
    LiveRun,
    LogTail,
    RunningTask,
    StepProgress,
    bar_style,
    format_cancel,
    format_elapsed,
    format_header,
    format_running_label,
    format_running_task,
    format_state,
    format_step_counts,
    format_step_status,
    is_protocol_line,
    step_rate,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
HINT = "stop button = cancel, twice = kill"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def started(**counts: int | None) -> RunStarted:
    return RunStarted("r1", "Job", tuple(counts), counts, T0, Path("/runs/r1"))


def task_started(step: str, task: int, worker: str = "worker-1", **params: Any) -> TaskStarted:
    return TaskStarted(step, task, params, worker, at(1))


def task_ended(step: str, task: int, state: TaskState = "success", **extra: Any) -> TaskEnded:
    outcome = TaskOutcome(step, task, state=state, started=at(1), ended=at(2), **extra)
    return TaskEnded(outcome)


def fold(live: LiveRun, *events: Any) -> LiveRun:
    for event in events:
        live = live.with_event(event)
    return live


def action(*lines: str) -> tuple[str, ...]:
    """A session's log of one action: banners around what the process printed."""
    return ("Running command", "Output:", *lines, "Process pid 7 exited with code: 0 (0x0)")


def test_the_cli_output_module_still_exports_the_moved_names() -> None:
    for name in ("RunProgress", "StepProgress", "action_output", "format_bar", "format_progress"):
        assert getattr(cli_output, name) is getattr(progress, name)
    assert set(progress.__all__) <= set(dir(progress))


def test_events_fold_into_running_tasks_ended_rows_and_counts() -> None:
    live = fold(
        LiveRun.create("Template name"),
        started(Render=3, Encode=1),
        task_started("Render", 0, Frame=1),
        TaskProgress("Render", 0, "worker-1", 45.0),
        TaskStatus("Render", 0, "worker-1", "tile 3"),
    )
    assert live.job_name == "Job" and live.state == "running" and live.run_dir == Path("/runs/r1")
    assert live.running == (RunningTask("Render", 0, "worker-1", {"Frame": 1}, 45.0, "tile 3"),)
    assert format_running_task(live.running[0]) == "Render[0] Frame=1 on worker-1: 45% tile 3"

    live = fold(live, task_ended("Render", 0), task_started("Render", 1))
    assert [t.task for t in live.running] == [1]
    assert [t.task for t in live.ended] == [0] and live.ended_count == 1
    assert live.progress.step("Render") == StepProgress(
        "Render", 3, {"success": 1}, running=1, started=at(1), last_ended=at(2)
    )

    ended = fold(live, RunEnded("r1", "success", at(5), None))
    assert ended.state == "success" and ended.finished and ended.running == ()
    assert ended.elapsed_s(at(100)) == 5.0  # frozen at the end


def test_the_ended_rows_keep_only_the_last_ones() -> None:
    live = fold(LiveRun.create("J", ended_limit=3), started(Render=10))
    live = fold(live, *(task_ended("Render", i) for i in range(10)))
    assert [t.task for t in live.ended] == [7, 8, 9]
    assert live.ended_count == 10


def test_a_failed_bar_turns_red_and_stays_red() -> None:
    step = StepProgress("Render", 3)
    assert bar_style(step) == ""
    live = fold(LiveRun.create("J"), started(Render=3), task_ended("Render", 0, "failed"))
    live = fold(live, task_ended("Render", 1), task_ended("Render", 2))  # later successes
    render = live.progress.step("Render")
    assert render is not None and render.done == 3 and bar_style(render) == "danger"
    assert bar_style(StepProgress("R", 2, {"success": 2})) == "success"
    assert bar_style(StepProgress("R", 2, {"success": 1, "canceled": 1})) == "warning"
    assert bar_style(StepProgress("R", 2, {"timeout": 1})) == "danger"


def test_step_counts_say_what_needs_attention() -> None:
    step = StepProgress("Render", 12, {"success": 5, "failed": 2}, running=1)
    assert format_step_counts(step) == "7/12  2 failed, 1 running"
    assert format_step_counts(step, separator=", ") == "7/12, 2 failed, 1 running"
    assert format_step_counts(StepProgress("Chunks", None)) == "0/?"
    assert format_step_counts(StepProgress("R", 5, {"canceled": 1}, not_run=4)) == (
        "1/5  1 canceled, 4 not run"
    )


def test_step_status_reads_like_tqdm_percent_rate_and_time_left() -> None:
    step = StepProgress("Render", 200, {"success": 102}, running=2, started=T0, last_ended=at(16))
    assert format_step_status(step, at(16.4)) == (
        "102/200 · 51% · 6.2 tasks/s · ~0:15 left · 2 running"
    )
    slow = StepProgress("Render", 4, {"success": 1}, running=1, started=T0, last_ended=at(5))
    assert format_step_status(slow, at(5)) == "1/4 · 25% · 5.0 s/task · ~0:15 left · 1 running"
    # Finished: the clock stopped at the last end, and nothing is left to estimate.
    done = StepProgress("Render", 10, {"success": 10}, started=T0, last_ended=at(4))
    assert format_step_status(done, at(60)) == "10/10 · 100% · 2.5 tasks/s"
    assert step_rate(done, at(60)) == 2.5
    # A failure stops new work: no estimate; no rate before a task ended; unknown totals.
    failed = StepProgress("R", 10, {"success": 2, "failed": 1}, running=1, started=T0)
    assert format_step_status(failed, at(3)) == "3/10 · 30% · 1.0 tasks/s · 1 failed, 1 running"
    assert format_step_status(StepProgress("R", 10, running=2, started=T0), at(3)) == (
        "0/10 · 0% · 2 running"
    )
    assert format_step_status(StepProgress("Chunks", None), at(3)) == "0/?"


def test_the_fold_records_when_a_step_started_and_last_ended() -> None:
    live = fold(
        LiveRun.create("J"),
        started(Render=2),
        task_started("Render", 0),
        task_ended("Render", 0),
    )
    render = live.progress.step("Render")
    assert render is not None and (render.started, render.last_ended) == (at(1), at(2))


def test_running_tasks_read_as_labelled_rows() -> None:
    task = RunningTask("Render", 102, "worker-1", {"Frame": 103}, 20.0, "bucket 2 of 10")
    assert format_running_label(task) == "worker-1: Render[102] Frame=103 · 20% · bucket 2 of 10"
    assert format_running_label(RunningTask("Encode", 0, "worker-2")) == "worker-2: Encode[0]"


def test_progress_and_status_lines_can_be_left_out_of_the_tail() -> None:
    lines = action(
        "openjd_progress: 10", "frame 1", "openjd_status: tile 2", "  openjd_progress: 3"
    )
    kept = LogTail(10).with_lines("worker-1", lines)
    assert kept.lines == (
        "openjd_progress: 10",
        "frame 1",
        "openjd_status: tile 2",
        "  openjd_progress: 3",
    )
    hidden = LiveRun.create("J", hide_protocol_lines=True).log.with_lines("worker-1", lines)
    assert hidden.lines == ("frame 1",) and hidden.total == 1
    assert is_protocol_line("[worker-2] openjd_status: x")
    assert not is_protocol_line("openjd_fail: x") and not is_protocol_line("openjd_env: A=1")


def test_the_end_of_the_run_brings_the_not_run_counts() -> None:
    result = JobResult(
        job_name="Job",
        state="canceled",
        started=T0,
        ended=at(3),
        tasks=[TaskOutcome("Render", 0, state="canceled")],
        environments=[],
        parameter_columns={"Render": [], "Encode": []},
        run_dir=None,
        not_run={"Render": 999_999, "Encode": 1},
    )
    live = fold(LiveRun.create("Job"), started(Render=1_000_000, Encode=1))
    live = fold(
        live, task_ended("Render", 0, "canceled"), RunEnded("r1", "canceled", at(3), result)
    )
    render, encode = live.progress.steps
    assert (render.not_run, encode.not_run) == (999_999, 1)
    assert format_step_counts(render) == "1/1000000  1 canceled, 999999 not run"
    assert format_step_counts(encode) == "0/1  1 not run"
    # An end without a result (or with something else) counts nothing as not run.
    assert fold(live, RunEnded("r1", "canceled", at(4), None)).progress.steps[0].not_run == 0


def test_the_log_tail_drops_banners_and_keeps_the_last_lines() -> None:
    tail = LogTail(limit=3)
    tail = tail.with_lines("worker-1", action("a", "b")[:3])  # the window stays open
    assert tail.lines == ("a",) and tail.open_outputs == {"worker-1"}
    tail = tail.with_lines("worker-1", ("b", "c", "d", "Process pid 7 exited with code: 0"))
    assert tail.lines == ("b", "c", "d") and tail.total == 4 and not tail.open_outputs
    tail = tail.with_lines("worker-2", action("x"), prefix=True)
    assert tail.lines == ("c", "d", "[worker-2] x")
    assert LogTail(limit=0).with_lines("w", action("a")).lines == ()


def test_a_big_batch_keeps_the_tail_bounded() -> None:
    live = fold(LiveRun.create("J", log_tail_lines=200), started(Render=1))
    lines = action(*(f"line {i}" for i in range(10_000)))
    live = fold(
        live,
        *(
            LogLines("worker-1", "Render", 0, None, lines[i : i + 7])
            for i in range(0, len(lines), 7)
        ),
    )
    assert len(live.log.lines) == 200 and live.log.total == 10_000
    assert live.log.lines[0] == "line 9800" and live.log.lines[-1] == "line 9999"


def test_output_lines_get_worker_prefixes_once_several_workers_run() -> None:
    live = fold(LiveRun.create("J"), started(Render=2))
    live = fold(live, LogLines("worker-1", "Render", 0, None, action("one")))
    assert live.log.lines == ("one",) and not live.prefix_workers
    live = fold(live, task_started("Render", 1, worker="worker-2"))
    live = fold(live, LogLines("worker-1", "Render", 0, None, action("two")))
    assert live.log.lines[-1] == "[worker-1] two"
    bound = LiveRun.create("J").with_workers(2)
    assert fold(bound, LogLines("worker-1", None, None, "Env", action("x"))).log.lines == (
        "[worker-1] x",
    )


def test_cancel_counts_down_in_whole_seconds_then_kills() -> None:
    live = fold(LiveRun.create("J"), started(Render=1), task_started("Render", 0))
    live = live.with_cancel(force=False, grace_s=10, now=at(2))
    assert format_state(live, at(2)) == "canceling, 10 s left before kill"
    assert format_state(live, at(5.5)) == "canceling, 7 s left before kill"
    assert format_state(live, at(13)) == "canceling, grace period over"
    # A second graceful request keeps the first countdown; force sticks.
    again = live.with_cancel(force=False, grace_s=30, now=at(6))
    assert again.cancel == live.cancel
    killing = again.with_cancel(force=True, grace_s=None, now=at(7))
    assert format_state(killing, at(7)) == "killing"
    assert killing.with_cancel(force=False, grace_s=5, now=at(8)).cancel == killing.cancel
    assert format_cancel(CancelRequest(False, at(0)), at(3)) == "canceling"


def test_cancel_after_the_end_changes_nothing() -> None:
    ended = fold(LiveRun.create("J"), started(Render=1), RunEnded("r1", "failed", at(3), None))
    assert ended.with_cancel(force=True, grace_s=None, now=at(4)) == ended
    assert format_state(ended, at(4)) == "failed"


def test_the_header_says_state_elapsed_and_how_to_stop() -> None:
    live = LiveRun.create("My Job")
    assert format_header(live, at(0), HINT) == f"My Job | starting | 0:00 | {HINT}"
    live = fold(live, started(Render=2))
    assert format_header(live, at(75.9), HINT) == f"Job | running | 1:15 | {HINT}"
    live = fold(live, task_ended("Render", 0, "failed", fail_message="boom"))
    assert format_state(live, at(76)) == "stopping after a failure"
    live = fold(live, RunEnded("r1", "failed", at(80), None))
    assert format_header(live, at(200), HINT) == "Job | failed | 1:20"


def test_elapsed_time_and_the_run_clock_tick_in_whole_seconds() -> None:
    assert [format_elapsed(s) for s in (0, 9.99, 60, 3723)] == ["0:00", "0:09", "1:00", "1:02:03"]
    live = fold(LiveRun.create("J"), started(Render=1))
    assert live.whole_second(at(12.7)) == at(12)
    assert LiveRun.create("J").whole_second(at(12.7)) == at(12.7)  # not started: unchanged
