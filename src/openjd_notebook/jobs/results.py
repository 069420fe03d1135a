"""The result of one job run: task and environment tables, logs, and notebook display."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from ..progress import action_output
from .errors import JobsError
from .outcomes import TASK_STATES, EnvironmentOutcome, RunState, TaskOutcome

__all__ = [
    "ENVIRONMENT_COLUMNS",
    "TASK_COLUMNS_AFTER_PARAMETERS",
    "JobFailedError",
    "JobResult",
    "LogNotAvailableError",
    "ParameterColumns",
    "TaskNotFoundError",
]

ParameterColumns = Mapping[str, Sequence[tuple[str, str]]]
"""Step name -> its task parameters as ``(name, openjd type)``, both in template order."""

TASK_COLUMNS_AFTER_PARAMETERS: tuple[str, ...] = (
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
)
ENVIRONMENT_COLUMNS: tuple[str, ...] = (
    "name",
    "scope",
    "step",
    "worker",
    "state",
    "started",
    "ended",
    "duration_s",
)
_FAILURE_STATES = ("failed", "timeout", "canceled")
_STATE_COLOURS = {"success": "#2e7d32", "failed": "#c62828", "canceled": "#ef6c00"}
_HTML_MAX_ROWS = 60
_TEXT_MAX_ROWS = 30
_MAX_LISTED_FAILURES = 5


class TaskNotFoundError(JobsError, KeyError):
    """No task with that step and index in this result; the message lists what exists."""

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument, quotes and all.
        return str(self.args[0]) if self.args else ""


class LogNotAvailableError(JobsError, LookupError):
    """The action exists but has no log to read (no record directory, or it never ran)."""


class JobFailedError(JobsError, RuntimeError):
    """Raised by :meth:`JobResult.raise_for_state` when a run did not succeed."""

    def __init__(self, message: str, result: JobResult) -> None:
        super().__init__(message)
        self.result = result


class JobResult:
    """What a finished run produced: per-task and per-environment outcomes and where its logs are.

    ``tasks`` and ``environments`` are pandas DataFrames built once from the outcomes; each access
    returns a copy, so editing a returned frame never changes the result.
    """

    def __init__(
        self,
        *,
        job_name: str,
        state: RunState,
        started: datetime,
        ended: datetime | None,
        tasks: Sequence[TaskOutcome],
        environments: Sequence[EnvironmentOutcome],
        parameter_columns: ParameterColumns,
        run_dir: Path | None,
        run_id: str = "",
        error: str | None = None,
    ) -> None:
        self._job_name = job_name
        self._state: RunState = state
        self._started = started
        self._ended = ended
        self._tasks = tuple(tasks)
        # Entry order (when each environment was entered, then by worker) reads naturally.
        self._environments = tuple(sorted(environments, key=_entry_order))
        self._parameter_columns = _freeze_parameter_columns(parameter_columns)
        self._run_dir = run_dir
        self._run_id = run_id
        self._error = error
        self._tasks_frame: pd.DataFrame | None = None
        self._environments_frame: pd.DataFrame | None = None

    # -- plain attributes ---------------------------------------------------------------------

    @property
    def job_name(self) -> str:
        return self._job_name

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def ok(self) -> bool:
        return self._state == "success"

    @property
    def started(self) -> datetime:
        return self._started

    @property
    def ended(self) -> datetime | None:
        return self._ended

    @property
    def duration_s(self) -> float | None:
        if self._ended is None:
            return None
        return (self._ended - self._started).total_seconds()

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def error(self) -> str | None:
        """A one-line summary of what went wrong, or None."""
        return self._error

    @property
    def task_outcomes(self) -> tuple[TaskOutcome, ...]:
        return self._tasks

    @property
    def environment_outcomes(self) -> tuple[EnvironmentOutcome, ...]:
        return self._environments

    @property
    def parameter_columns(self) -> Mapping[str, tuple[tuple[str, str], ...]]:
        return dict(self._parameter_columns)

    # -- tables -------------------------------------------------------------------------------

    @property
    def tasks(self) -> pd.DataFrame:
        """One row per task (or chunk); a copy of a frame cached on first use."""
        if self._tasks_frame is None:
            self._tasks_frame = tasks_frame(self._tasks, self._parameter_columns)
        return self._tasks_frame.copy()

    @property
    def environments(self) -> pd.DataFrame:
        """One row per environment entered on a worker; a copy of a cached frame."""
        if self._environments_frame is None:
            self._environments_frame = environments_frame(self._environments)
        return self._environments_frame.copy()

    @property
    def failures(self) -> pd.DataFrame:
        """The rows of :attr:`tasks` whose state is failed, timeout or canceled."""
        frame = self.tasks
        return frame[frame["state"].isin(_FAILURE_STATES)]

    def state_counts(self) -> dict[str, int]:
        """Number of tasks in each state that occurs, in the order of ``TASK_STATES``."""
        counts = {state: 0 for state in TASK_STATES}
        for task in self._tasks:
            counts[task.state] += 1
        return {state: n for state, n in counts.items() if n}

    # -- logs ---------------------------------------------------------------------------------

    def log(self, step: str, task: int) -> str:
        """The text of one task's log, read from the record directory."""
        return self._read_log(self._find_task(step, task).log_path, f"task {task} of step {step!r}")

    def output(self, step: str, task: int) -> str:
        """Only what the task's process printed: its log without the session's banners."""
        lines, _ = action_output(self.log(step, task).splitlines(), in_output=False)
        return "\n".join(lines)

    def environment_log(self, name: str, worker: str | None = None) -> str:
        """The text of one environment's log (enter and exit); ``worker`` picks among workers."""
        found = self._find_environment(name, worker)
        return self._read_log(found.log_path, f"environment {name!r} on worker {found.worker!r}")

    def _find_task(self, step: str, task: int) -> TaskOutcome:
        in_step = [t for t in self._tasks if t.step == step]
        if not in_step:
            steps = ", ".join(repr(s) for s in _unique(t.step for t in self._tasks)) or "none"
            raise TaskNotFoundError(f"no step {step!r} in this result; steps: {steps}")
        for outcome in in_step:
            if outcome.task == task:
                return outcome
        indices = sorted(t.task for t in in_step)
        raise TaskNotFoundError(
            f"no task {task!r} in step {step!r}; its tasks are {_describe_indices(indices)}"
        )

    def _find_environment(self, name: str, worker: str | None) -> EnvironmentOutcome:
        matches = [e for e in self._environments if e.name == name and worker in (None, e.worker)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            workers = ", ".join(repr(e.worker) for e in matches)
            raise TaskNotFoundError(f"environment {name!r} ran on several workers ({workers})")
        known = ", ".join(f"{e.name!r} on {e.worker!r}" for e in self._environments) or "none"
        raise TaskNotFoundError(f"no environment {name!r} here; environments: {known}")

    def _read_log(self, log_path: str | None, what: str) -> str:
        if self._run_dir is None:
            raise LogNotAvailableError(f"this run has no record directory, so no log of {what}")
        if log_path is None:
            raise LogNotAvailableError(f"{what} has no log (it did not run)")
        return (self._run_dir / log_path).read_text(encoding="utf-8", errors="replace")

    # -- outcome of the whole run -------------------------------------------------------------

    def raise_for_state(self) -> JobResult:
        """Return self when the run succeeded, else raise :class:`JobFailedError` summarising it."""
        if self.ok:
            return self
        raise JobFailedError(self._failure_message(), self)

    def _failure_message(self) -> str:
        lines = [
            f"job {self._job_name!r} {self._state}" + (f": {self._error}" if self._error else "")
        ]
        failed = [t for t in self._tasks if t.state in _FAILURE_STATES]
        for task in failed[:_MAX_LISTED_FAILURES]:
            detail = task.fail_message or f"exit code {task.exit_code}"
            lines.append(f"  {task.step}[{task.task}] {task.state}: {detail}")
        if len(failed) > _MAX_LISTED_FAILURES:
            lines.append(f"  ... and {len(failed) - _MAX_LISTED_FAILURES} more")
        return "\n".join(lines)

    # -- display ------------------------------------------------------------------------------

    def summary_line(self) -> str:
        """Job name, state, task counts per state, duration and record directory, as one line."""
        parts = [f"{self._job_name}: {self._state}", self._counts_text()]
        parts.append(_format_duration(self.duration_s))
        if self._run_dir is not None:
            parts.append(f"record {self._run_dir}")
        return " | ".join(parts)

    def summary_text(self) -> str:
        """Plain-text summary: the summary line, the error if any, and a compact task table."""
        lines = [self.summary_line()]
        if self._error:
            lines.append(f"error: {self._error}")
        if self._tasks:
            lines.append(self._compact_tasks().to_string(index=False, max_rows=_TEXT_MAX_ROWS))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<JobResult {self._job_name!r} {self._state}: {self._counts_text()}, "
            f"{_format_duration(self.duration_s)}>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython's text/plain: the full summary, while repr() stays one line.
        printer.text(repr(self) if cycle else self.summary_text())

    def _repr_html_(self) -> str:
        table = ""
        if self._tasks:
            table = self._compact_tasks().to_html(
                index=False, escape=True, max_rows=_HTML_MAX_ROWS, na_rep="", border=0
            )
        return f"<div class='openjd-job-result'>{self._summary_html()}{table}</div>"

    def _summary_html(self) -> str:
        colour = _STATE_COLOURS.get(self._state, "inherit")
        parts = [
            f"<b>{html.escape(self._job_name)}</b>",
            f"<span style='color:{colour};font-weight:bold'>{html.escape(self._state)}</span>",
            html.escape(self._counts_text()),
            html.escape(_format_duration(self.duration_s)),
        ]
        if self._run_dir is not None:
            parts.append(f"record <code>{html.escape(str(self._run_dir))}</code>")
        error = f"<br><span>error: {html.escape(self._error)}</span>" if self._error else ""
        return f"<p>{' &middot; '.join(parts)}{error}</p>"

    def _counts_text(self) -> str:
        counts = ", ".join(f"{n} {state}" for state, n in self.state_counts().items())
        noun = "task" if len(self._tasks) == 1 else "tasks"
        return f"{len(self._tasks)} {noun}" + (f": {counts}" if counts else "")

    def _compact_tasks(self) -> pd.DataFrame:
        frame = self.tasks
        hidden = ["started", "ended", "progress", "log_path", "status_message"]
        if frame["fail_message"].isna().all():
            hidden.append("fail_message")
        # Hundredths of a second are as precise as a summary needs to be.
        return frame.drop(columns=hidden).round({"duration_s": 2})

    # -- equality -----------------------------------------------------------------------------

    def _identity(self) -> tuple[Any, ...]:
        return (
            self._job_name,
            self._state,
            self._started,
            self._ended,
            self._run_id,
            self._tasks,
            self._environments,
            self._parameter_columns,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobResult):
            return NotImplemented
        return self._identity() == other._identity()

    __hash__ = None  # type: ignore[assignment]  # equal results may hold unhashable mappings


# -- frames -----------------------------------------------------------------------------------


def tasks_frame(tasks: Sequence[TaskOutcome], parameter_columns: ParameterColumns) -> pd.DataFrame:
    """The tasks table: step, task, one column per task parameter, then the outcome columns."""
    import pandas as pd

    names = _parameter_names(tasks, parameter_columns)
    columns: dict[str, Any] = {
        "step": _text([t.step for t in tasks]),
        "task": pd.Series([t.task for t in tasks], dtype="int64"),
    }
    for name, column in zip(names, _parameter_column_names(names), strict=True):
        # object dtype keeps ints as ints next to None (a step without that parameter).
        columns[column] = pd.Series([t.parameters.get(name) for t in tasks], dtype=object)
    columns.update(
        state=_text([t.state for t in tasks]),
        exit_code=pd.array([t.exit_code for t in tasks], dtype="Int64"),
        started=_timestamps([t.started for t in tasks]),
        ended=_timestamps([t.ended for t in tasks]),
        duration_s=_floats([t.duration_s for t in tasks]),
        progress=_floats([t.progress for t in tasks]),
        status_message=_text([t.status_message for t in tasks]),
        fail_message=_text([t.fail_message for t in tasks]),
        worker=_text([t.worker for t in tasks]),
        log_path=_text([t.log_path for t in tasks]),
    )
    return _frame(columns)


def environments_frame(environments: Sequence[EnvironmentOutcome]) -> pd.DataFrame:
    """The environments table, one row per environment entered on a worker."""
    envs = environments
    columns: dict[str, Any] = {
        "name": _text([e.name for e in envs]),
        "scope": _text([e.scope for e in envs]),
        "step": _text([e.step for e in envs]),
        "worker": _text([e.worker for e in envs]),
        "state": _text([e.state for e in envs]),
        "started": _timestamps([e.started for e in envs]),
        "ended": _timestamps([e.ended for e in envs]),
        "duration_s": _floats([e.duration_s for e in envs]),
    }
    return _frame(columns)


def _frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    # Plain lists and arrays get a fresh RangeIndex, so the columns line up row by row.
    import pandas as pd

    return pd.DataFrame(
        {name: pd.Series(values).reset_index(drop=True) for name, values in columns.items()}
    )


def _parameter_names(
    tasks: Sequence[TaskOutcome], parameter_columns: ParameterColumns
) -> list[str]:
    declared = (name for params in parameter_columns.values() for name, _ in params)
    # Parameters a task carries but the template did not declare still get a column, last.
    seen = (name for t in tasks for name in t.parameters)
    return _unique([*declared, *seen])


def _parameter_column_names(names: Sequence[str]) -> list[str]:
    # A task parameter may legally be called "state" or "step"; keep it apart from ours.
    reserved = {"step", "task", *TASK_COLUMNS_AFTER_PARAMETERS}
    return [f"{name} (parameter)" if name in reserved else name for name in names]


def _text(values: Sequence[str | None]) -> pd.Series:
    import pandas as pd

    return pd.Series(values, dtype="str")


def _floats(values: Sequence[float | None]) -> pd.Series:
    import pandas as pd

    return pd.Series([float("nan") if v is None else v for v in values], dtype="float64")


def _timestamps(values: Sequence[datetime | None]) -> pd.Series:
    # Microseconds hold a datetime exactly; UTC makes runs from different hosts comparable.
    import pandas as pd

    stamps = pd.to_datetime(pd.Series(list(values), dtype=object), utc=True)
    return stamps.astype("datetime64[us, UTC]")


# -- small helpers ----------------------------------------------------------------------------


def _freeze_parameter_columns(
    parameter_columns: ParameterColumns,
) -> dict[str, tuple[tuple[str, str], ...]]:
    return {
        step: tuple((str(name), str(kind)) for name, kind in params)
        for step, params in parameter_columns.items()
    }


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _describe_indices(indices: Sequence[int]) -> str:
    if indices == list(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}..{indices[-1]}"
    return ", ".join(str(i) for i in indices)


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "not finished"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _entry_order(environment: EnvironmentOutcome) -> tuple[float, str]:
    started = environment.started.timestamp() if environment.started is not None else 0.0
    return (started, environment.worker)
