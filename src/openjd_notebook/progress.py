"""A run's progress as frozen values, and the text every frontend shows for it.

The CLI, the notebook dashboard and the console view fold a run's events into these values
with pure ``with_event`` methods and format them with the functions below; nothing here
knows about terminals, threads or widgets, so tests call it directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .jobs.events import (
    EnvironmentEntered,
    Event,
    LogLines,
    ManifestProgress,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskProgress,
    TaskStarted,
    TaskStatus,
)
from .jobs.outcomes import TaskOutcome

__all__ = [
    "HASHING_SHOWN_FROM_BYTES",
    "CancelRequest",
    "LiveRun",
    "LogTail",
    "RunProgress",
    "RunningTask",
    "StepProgress",
    "action_output",
    "bar_style",
    "format_bar",
    "format_cancel",
    "format_elapsed",
    "format_hashing",
    "format_header",
    "format_parameters",
    "format_progress",
    "format_rate",
    "format_running_label",
    "format_running_task",
    "format_state",
    "format_step_counts",
    "format_step_line",
    "format_step_status",
    "format_task_problem",
    "is_protocol_line",
    "step_rate",
]

_BAR_WIDTH = 24
_OUTPUT_START = "Output:"
_OUTPUT_END = re.compile(r"^Process pid \d+ exited with code: (?P<code>-?\d+)")
_PROBLEM_STATES = ("failed", "timeout", "canceled")
_FAILURE_STATES = ("failed", "timeout")
_FINAL_STATES = ("success", "failed", "canceled")
_SEPARATOR = " \u00b7 "  # a middle dot, as between tqdm's fields
# Progress and status reports: the dashboard shows them in the running rows already.
_PROTOCOL_LINE = re.compile(r"^(?:\[[^\]]*\] )?\s*openjd_(?:progress|status):")


# ---- progress per step --------------------------------------------------------------------


@dataclass(frozen=True)
class StepProgress:
    """One step's tasks so far: how many ended in each state, and how many are running."""

    name: str
    total: int | None
    """Tasks (or chunks) planned; None while adaptive chunking decides."""
    ended: Mapping[str, int] = field(default_factory=dict)
    running: int = 0
    not_run: int = 0
    """Selected tasks that did not run: known (and counted, never listed) once the run ended."""
    started: datetime | None = None
    """When the step's first task started: the start of its rate."""
    last_ended: datetime | None = None
    """When its latest task ended."""

    @property
    def done(self) -> int:
        return sum(self.ended.values())

    @property
    def failed(self) -> int:
        """Tasks that failed or timed out; counts only grow, so a red bar stays red."""
        return sum(self.ended.get(state, 0) for state in _FAILURE_STATES)


@dataclass(frozen=True)
class RunProgress:
    """Every selected step's progress, in run order. ``with_event`` returns the next value."""

    steps: tuple[StepProgress, ...] = ()

    @classmethod
    def started(cls, event: RunStarted) -> RunProgress:
        return cls(tuple(StepProgress(name, event.task_counts.get(name)) for name in event.steps))

    def with_event(self, event: Event) -> RunProgress:
        if isinstance(event, RunStarted):
            return RunProgress.started(event)
        if isinstance(event, TaskStarted):
            return self._with_step(event.step, lambda s: _started(s, event.time))
        if isinstance(event, TaskEnded):
            return self._with_step(event.outcome.step, lambda s: _ended(s, event.outcome))
        if isinstance(event, RunEnded):
            counts = _not_run_counts(event.result)
            return RunProgress(tuple(replace(s, not_run=counts.get(s.name, 0)) for s in self.steps))
        return self

    def step(self, name: str) -> StepProgress | None:
        return next((s for s in self.steps if s.name == name), None)

    def _with_step(self, name: str, change: Callable[[StepProgress], StepProgress]) -> RunProgress:
        return RunProgress(tuple(change(s) if s.name == name else s for s in self.steps))


def _not_run_counts(result: Any) -> Mapping[str, int]:
    """The result's not-run count per step (``JobResult.not_run``), {} for anything else."""
    counts = getattr(result, "not_run", None)
    return counts if isinstance(counts, Mapping) else {}


def _started(step: StepProgress, time: datetime) -> StepProgress:
    first = time if step.started is None else min(step.started, time)
    return replace(step, running=step.running + 1, started=first)


def _ended(step: StepProgress, outcome: TaskOutcome) -> StepProgress:
    ended = dict(step.ended)
    ended[outcome.state] = ended.get(outcome.state, 0) + 1
    last = step.last_ended
    if outcome.ended is not None and (last is None or outcome.ended > last):
        last = outcome.ended
    # A task canceled before it started never counted as running.
    return replace(step, ended=ended, running=max(step.running - 1, 0), last_ended=last)


# ---- what a live view shows beyond the counts ---------------------------------------------


@dataclass(frozen=True)
class RunningTask:
    """A task that started and has not ended, with what it last reported."""

    step: str
    task: int
    worker: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    progress: float | None = None
    status_message: str | None = None


@dataclass(frozen=True)
class LogTail:
    """The last ``limit`` lines the actions printed, without the sessions' banners around them."""

    limit: int = 200
    lines: tuple[str, ...] = ()
    total: int = 0
    """Lines shown so far, including those that fell out of the tail."""
    open_outputs: frozenset[str] = frozenset()
    """Workers whose current batch ended inside an action's output (see ``action_output``)."""
    hide_protocol: bool = False
    """Leave out ``openjd_progress:`` and ``openjd_status:`` lines (``is_protocol_line``)."""

    def with_lines(self, worker: str, lines: Iterable[str], prefix: bool = False) -> LogTail:
        shown, still_open = action_output(lines, worker in self.open_outputs)
        if self.hide_protocol:
            shown = [line for line in shown if not is_protocol_line(line)]
        if prefix:
            shown = [f"[{worker}] {line}" for line in shown]
        opened = self.open_outputs | {worker} if still_open else self.open_outputs - {worker}
        return replace(
            self,
            lines=_last(self.lines + tuple(shown[-self.limit :]), self.limit),
            total=self.total + len(shown),
            open_outputs=opened,
        )


def _last(lines: tuple[str, ...], limit: int) -> tuple[str, ...]:
    # lines[-0:] would keep everything.
    return lines[-limit:] if limit > 0 else ()


@dataclass(frozen=True)
class CancelRequest:
    """A user's cancel: graceful with a grace period, or forced (kill now)."""

    force: bool
    requested: datetime
    grace_s: float | None = None
    """Seconds the actions may take to stop before they are killed; None when not known."""

    def remaining_s(self, now: datetime) -> float | None:
        if self.force or self.grace_s is None:
            return None
        waited = (now - self.requested).total_seconds()
        return min(max(0.0, self.grace_s - waited), self.grace_s)

    def escalated(self, force: bool, grace_s: float | None, now: datetime) -> CancelRequest:
        """The request after another one: force sticks, the first countdown keeps running."""
        if force and not self.force:
            return replace(self, force=True, requested=now)
        grace = self.grace_s if self.grace_s is not None else grace_s
        return replace(self, grace_s=grace)


@dataclass(frozen=True)
class LiveRun:
    """Everything a live view of one run shows, folded from its events one at a time."""

    job_name: str
    state: str = "starting"
    """starting, running, then the run's final state (success, failed or canceled)."""
    run_dir: Path | None = None
    started: datetime | None = None
    ended_at: datetime | None = None
    progress: RunProgress = RunProgress()
    running: tuple[RunningTask, ...] = ()
    ended: tuple[TaskOutcome, ...] = ()
    """The last ``ended_limit`` tasks that ended, oldest first."""
    ended_limit: int = 50
    log: LogTail = LogTail()
    workers: frozenset[str] = frozenset()
    expected_workers: int = 1
    cancel: CancelRequest | None = None
    hashing: ManifestProgress | None = None
    """The manifest being hashed, while a large one is (see ``format_hashing``)."""

    @classmethod
    def create(
        cls,
        job_name: str,
        log_tail_lines: int = 200,
        ended_limit: int = 50,
        *,
        hide_protocol_lines: bool = False,
    ) -> LiveRun:
        tail = LogTail(log_tail_lines, hide_protocol=hide_protocol_lines)
        return cls(job_name, log=tail, ended_limit=ended_limit)

    @property
    def finished(self) -> bool:
        return self.state in _FINAL_STATES

    @property
    def ended_count(self) -> int:
        return sum(step.done for step in self.progress.steps)

    @property
    def prefix_workers(self) -> bool:
        """Whether output lines need ``[worker-N]``: more than one worker runs."""
        return max(self.expected_workers, len(self.workers)) > 1

    def with_event(self, event: Event) -> LiveRun:
        match event:
            case RunStarted():
                return self._started(event)
            case TaskStarted():
                return self._task_started(event)
            case TaskProgress():
                return self._with_running(event.step, event.task, progress=event.progress)
            case TaskStatus():
                return self._with_running(
                    event.step, event.task, status_message=event.status_message
                )
            case TaskEnded():
                return self._task_ended(event.outcome)
            case LogLines():
                return self._logged(event)
            case EnvironmentEntered():
                return replace(self, workers=self.workers | {event.worker})
            case ManifestProgress():
                return replace(self, hashing=None if event.done else event)
            case RunEnded():
                progress = self.progress.with_event(event)
                return replace(
                    self, state=event.state, ended_at=event.ended, running=(), progress=progress
                )
        return self

    def with_cancel(self, *, force: bool, grace_s: float | None, now: datetime) -> LiveRun:
        if self.finished:
            return self
        if self.cancel is None:
            return replace(self, cancel=CancelRequest(force, now, grace_s))
        return replace(self, cancel=self.cancel.escalated(force, grace_s, now))

    def with_workers(self, count: int) -> LiveRun:
        return replace(self, expected_workers=count)

    def elapsed_s(self, now: datetime) -> float:
        if self.started is None:
            return 0.0
        return max(0.0, ((self.ended_at or now) - self.started).total_seconds())

    def whole_second(self, now: datetime) -> datetime:
        """``now`` rounded down to a whole second of the run, so displayed times tick together."""
        if self.started is None or self.ended_at is not None:
            return now
        return self.started + timedelta(seconds=math.floor(self.elapsed_s(now)))

    def _started(self, event: RunStarted) -> LiveRun:
        return replace(
            self,
            job_name=event.job_name,
            state="running",
            run_dir=event.run_dir,
            started=event.started,
            progress=RunProgress.started(event),
        )

    def _task_started(self, event: TaskStarted) -> LiveRun:
        task = RunningTask(event.step, event.task, event.worker, event.parameters)
        return replace(
            self,
            progress=self.progress.with_event(event),
            running=(*self.running, task),
            workers=self.workers | {event.worker},
        )

    def _with_running(self, step: str, task: int, **changes: Any) -> LiveRun:
        running = tuple(
            replace(t, **changes) if (t.step, t.task) == (step, task) else t for t in self.running
        )
        return replace(self, running=running)

    def _task_ended(self, outcome: TaskOutcome) -> LiveRun:
        running = tuple(t for t in self.running if (t.step, t.task) != (outcome.step, outcome.task))
        ended = (*self.ended, outcome)[-self.ended_limit :] if self.ended_limit > 0 else ()
        return replace(
            self,
            progress=self.progress.with_event(TaskEnded(outcome)),
            running=running,
            ended=ended,
        )

    def _logged(self, event: LogLines) -> LiveRun:
        workers = self.workers | {event.worker}
        prefix = max(self.expected_workers, len(workers)) > 1
        return replace(
            self, workers=workers, log=self.log.with_lines(event.worker, event.lines, prefix)
        )


# ---- formatters ---------------------------------------------------------------------------


def format_bar(done: int, total: int | None, width: int = _BAR_WIDTH) -> str:
    """``[#######.....]``: filled in proportion; all ``?`` when the total is unknown."""
    if total is None:
        return "[" + "?" * width + "]"
    filled = width if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def format_step_counts(step: StepProgress, separator: str = "  ") -> str:
    """``7/12  2 failed, 1 running``: tasks ended of planned, then what needs attention
    (and, once the run ended, ``3 not run``)."""
    notes = _step_notes(step)
    return _done_of_total(step) + (separator + ", ".join(notes) if notes else "")


def _done_of_total(step: StepProgress) -> str:
    return f"{step.done}/{'?' if step.total is None else step.total}"


def _step_notes(step: StepProgress) -> list[str]:
    notes = [f"{step.ended[s]} {s}" for s in _PROBLEM_STATES if step.ended.get(s)]
    if step.running:
        notes.append(f"{step.running} running")
    if step.not_run:
        notes.append(f"{step.not_run} not run")
    return notes


def step_rate(step: StepProgress, now: datetime) -> float | None:
    """Tasks ended per second since the step's first task started; None before one ended.

    While no task of the step runs the clock stops at its last end, so a finished step
    keeps its rate instead of slowing down as the rest of the run goes on.
    """
    if step.started is None or step.done == 0:
        return None
    until = step.last_ended if step.running == 0 and step.last_ended is not None else now
    seconds = (until - step.started).total_seconds()
    return step.done / seconds if seconds > 0 else None


def format_rate(rate: float) -> str:
    """``6.2 tasks/s``, or ``12.5 s/task`` below one a second, as tqdm turns it around."""
    if rate >= 1:
        return f"{rate:.1f} tasks/s"
    return f"{1 / rate:.1f} s/task"


def format_step_status(step: StepProgress, now: datetime) -> str:
    """``102/200 · 51% · 6.2 tasks/s · ~0:15 left · 2 failed, 1 running``: as tqdm shows a
    bar, then what needs attention. The estimate assumes the rate so far holds."""
    parts = [_done_of_total(step)]
    if step.total:
        parts.append(f"{min(step.done * 100 // step.total, 100)}%")
    rate = step_rate(step, now)
    if rate is not None:
        parts.append(format_rate(rate))
        left = 0 if step.total is None else step.total - step.done
        # A problem stops new work, and tasks that did not run never will: no estimate then.
        stopped = step.not_run or any(step.ended.get(s) for s in _PROBLEM_STATES)
        if left > 0 and not stopped:
            parts.append(f"~{format_elapsed(left / rate)} left")
    notes = _step_notes(step)
    if notes:
        parts.append(", ".join(notes))
    return _SEPARATOR.join(parts)


def format_step_line(
    step: StepProgress,
    name_width: int = 0,
    bar_width: int = _BAR_WIDTH,
    now: datetime | None = None,
) -> str:
    """``Render  [#######.....] 7/12  2 failed, 1 running``; with ``now``, the percent, rate
    and estimate of ``format_step_status`` too."""
    bar = format_bar(step.done, step.total, bar_width)
    counts = format_step_counts(step) if now is None else format_step_status(step, now)
    return f"{step.name.ljust(name_width)}  {bar} {counts}"


def format_progress(progress: RunProgress, columns: int | None = None) -> list[str]:
    """One line per step, names aligned; cut to ``columns`` so a terminal never wraps them."""
    width = max((len(s.name) for s in progress.steps), default=0)
    lines = [format_step_line(step, width) for step in progress.steps]
    return lines if columns is None else [line[: max(columns - 1, 1)] for line in lines]


def format_task_problem(outcome: TaskOutcome) -> str:
    """``Render[3] failed: exit code 1`` (or the fail message and the exit code)."""
    code = f"exit code {outcome.exit_code}"
    if not outcome.fail_message:
        return f"{outcome.step}[{outcome.task}] {outcome.state}: {code}"
    suffix = f" ({code})" if outcome.exit_code is not None else ""
    return f"{outcome.step}[{outcome.task}] {outcome.state}: {outcome.fail_message}{suffix}"


def bar_style(step: StepProgress) -> str:
    """The widget bar style: red once a task failed, orange if canceled, green when complete."""
    if step.failed:
        return "danger"
    if step.ended.get("canceled"):
        return "warning"
    if step.total is not None and step.done >= step.total:
        return "success"
    return ""


def format_elapsed(seconds: float) -> str:
    """``0:07``, ``12:34``, ``1:02:03``: whole seconds, so the text changes once a second."""
    minutes, secs = divmod(int(max(seconds, 0.0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_cancel(cancel: CancelRequest, now: datetime) -> str:
    """``canceling, 7 s left before kill``, counting down in whole seconds, or ``killing``."""
    if cancel.force:
        return "killing"
    remaining = cancel.remaining_s(now)
    if remaining is None:
        return "canceling"
    if remaining <= 0:
        return "canceling, grace period over"
    return f"canceling, {math.ceil(remaining)} s left before kill"


def format_state(live: LiveRun, now: datetime) -> str:
    """The run's state in words, with the cancel countdown while one is pending."""
    if live.finished:
        return live.state
    if live.cancel is not None:
        return format_cancel(live.cancel, now)
    if live.state == "starting":
        return live.state
    if any(step.failed for step in live.progress.steps):
        return "stopping after a failure"
    return live.state


def format_header(live: LiveRun, now: datetime, hint: str = "") -> str:
    """``Job | running | 0:12 | stop button = cancel, twice = kill``; no hint once ended."""
    parts = [live.job_name, format_state(live, now), format_elapsed(live.elapsed_s(now))]
    if hint and not live.finished:
        parts.append(hint)
    return " | ".join(parts)


def format_parameters(parameters: Mapping[str, Any]) -> str:
    """``Frame=4 Scene=a.blend``."""
    return " ".join(f"{name}={value}" for name, value in parameters.items())


def format_running_label(task: RunningTask) -> str:
    """``worker-1: Render[102] Frame=103 · 20% · bucket 2 of 10``."""
    parts = [f"{task.worker}: {task.step}[{task.task}]"]
    if task.parameters:
        parts[0] += " " + format_parameters(task.parameters)
    if task.progress is not None:
        parts.append(f"{task.progress:.0f}%")
    if task.status_message:
        parts.append(task.status_message)
    return _SEPARATOR.join(parts)


def is_protocol_line(line: str) -> bool:
    """Whether an output line is an ``openjd_progress:`` or ``openjd_status:`` report
    (maybe after a ``[worker-N]`` prefix)."""
    return _PROTOCOL_LINE.match(line) is not None


def format_running_task(task: RunningTask) -> str:
    """``Render[3] Frame=4 on worker-1: 45% rendering tile 3``."""
    text = f"{task.step}[{task.task}]"
    if task.parameters:
        text += " " + format_parameters(task.parameters)
    text += f" on {task.worker}"
    reported = [f"{task.progress:.0f}%"] if task.progress is not None else []
    if task.status_message:
        reported.append(task.status_message)
    return text + (": " + " ".join(reported) if reported else "")


def action_output(
    lines: Iterable[str], in_output: bool, *, failed_exits: bool = False
) -> tuple[list[str], bool]:
    """The lines an action's process printed, without the session's banners around them.

    A session logs ``Output:`` before the process's lines and ``Process pid N exited with
    code: ...`` after them; ``in_output`` says whether the previous batch ended inside that
    window. With ``failed_exits`` that closing line is kept when the code is not 0, so a
    reader sees which process failed and how (as every OpenJD runner prints it). Returns the
    lines to show and whether the window is still open.
    """
    shown: list[str] = []
    for line in lines:
        if not in_output:
            in_output = line == _OUTPUT_START
            continue
        end = _OUTPUT_END.match(line)
        if end is None:
            shown.append(line)
            continue
        in_output = False
        if failed_exits and int(end.group("code")) != 0:
            shown.append(line)
    return shown, in_output


HASHING_SHOWN_FROM_BYTES = 256 * 1024 * 1024
"""Manifests smaller than this hash too fast to be worth a line."""


def format_hashing(event: ManifestProgress) -> str | None:
    """``hashing outputs: 512/1,000 files, 0.5/1.0 GiB`` for a large manifest, else None."""
    if event.bytes_total < HASHING_SHOWN_FROM_BYTES:
        return None
    gib = 1024**3
    return (
        f"hashing {event.kind}: {event.files_done:,}/{event.files_total:,} files, "
        f"{event.bytes_done / gib:.1f}/{event.bytes_total / gib:.1f} GiB"
    )
