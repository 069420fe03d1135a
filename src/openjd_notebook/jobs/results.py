"""The result of one job run: task and environment tables, logs, and notebook display."""

from __future__ import annotations

import contextlib
import copy
import os
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .compare import Verification
    from .selection import StepPlan

from ..progress import action_output
from . import result_display
from .errors import JobsError
from .manifests import MANIFEST_COLUMNS, ManifestEntry
from .outcomes import TASK_STATES, EnvironmentOutcome, RunState, TaskOutcome
from .tables import ENVIRONMENT_COLUMNS, TASK_OUTCOME_COLUMNS, tasks_table
from .timeline import Timeline

__all__ = [
    "ENVIRONMENT_COLUMNS",
    "LOG_READ_LIMIT",
    "TASK_COLUMNS_AFTER_PARAMETERS",
    "JobFailedError",
    "JobResult",
    "LogNotAvailableError",
    "NotRunTasksUnavailableError",
    "ParameterColumns",
    "SelectionSource",
    "TaskNotFoundError",
]

ParameterColumns = Mapping[str, Sequence[tuple[str, str]]]
"""Step name -> its task parameters as ``(name, openjd type)``, both in template order."""
SelectionSource = Callable[[], "Sequence[StepPlan]"]
"""Gives the run's step plans, to list the tasks that did not run; called only when asked."""

LOG_READ_LIMIT = 64 * 1024 * 1024
"""The most of one log that ``JobResult.log`` returns (64 MiB): a longer log is returned as
its last 64 MiB after a line saying so; the whole file is ``run_dir / log_path``."""

TASK_COLUMNS_AFTER_PARAMETERS: tuple[str, ...] = TASK_OUTCOME_COLUMNS
_FAILURE_STATES = ("failed", "timeout", "canceled")
_MAX_LISTED_FAILURES = 5


class TaskNotFoundError(JobsError, KeyError):
    """No task with that step and index in this result; the message lists what exists."""

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument, quotes and all.
        return str(self.args[0]) if self.args else ""


class LogNotAvailableError(JobsError, LookupError):
    """The action has no log to read: no record directory, it never ran, or the record's log
    path is missing, not a regular file or leads outside the record directory."""


class NotRunTasksUnavailableError(JobsError, LookupError):
    """The result counts tasks that did not run but cannot say which (it has no selection)."""


class JobFailedError(JobsError, RuntimeError):
    """Raised by :meth:`JobResult.raise_for_state` when a run did not succeed."""

    def __init__(self, message: str, result: JobResult) -> None:
        super().__init__(message)
        self.result = result


class JobResult:
    """What a finished run produced: per-task and per-environment outcomes and where its logs are.

    ``tasks`` and ``environments`` are pandas DataFrames built once from the outcomes; each access
    returns a copy, so editing a returned frame never changes the result.

    ``tasks`` has a row per task (or chunk) that ran, or was handed out and canceled, in plan
    order; it never holds "not_run" rows. The selected tasks that did not run (after a failure
    or a cancel) are counted per step in ``not_run`` (and in ``state_counts()``, the summary
    and the notebook display), and :meth:`not_run_tasks` lists them when asked: a canceled
    run of a million tasks stays as small as what it ran. ``not_run`` may be given (a run or a
    record knows it) or, with ``selection``, counted when first asked; "not_run" rows passed
    in ``tasks`` (records of earlier versions) are counted and listed from memory.
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
        not_run: Mapping[str, int] | None = None,
        selection: SelectionSource | None = None,
        inputs: Sequence[ManifestEntry] = (),
        outputs: Sequence[ManifestEntry] = (),
    ) -> None:
        self._job_name = job_name
        self._state: RunState = state
        self._started = started
        self._ended = ended
        # Rows are tasks that ran; "not_run" rows (from records of older versions) are counted.
        self._tasks = tuple(t for t in tasks if t.state != "not_run")
        self._not_run_rows = tuple(t for t in tasks if t.state == "not_run")
        # Entry order (when each environment was entered, then by worker) reads naturally.
        self._environments = tuple(sorted(environments, key=_entry_order))
        self._parameter_columns = _freeze_parameter_columns(parameter_columns)
        self._run_dir = run_dir
        self._run_id = run_id
        self._error = error
        self._given_not_run = dict(not_run) if not_run is not None else None
        self._selection = selection
        self._not_run: dict[str, int] | None = None
        self._tasks_frame: pd.DataFrame | None = None
        self._environments_frame: pd.DataFrame | None = None
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)
        self._verification: Verification | None = None

    # -- what went in and what came out ------------------------------------------------------

    @property
    def inputs(self) -> pd.DataFrame:
        """The input manifest: every file of the PATH parameters with ``dataFlow`` IN or INOUT,
        as found before the first task (parameter, path, size, mtime, sha256, state)."""
        return _manifest_frame(self._inputs)

    @property
    def outputs(self) -> pd.DataFrame:
        """The output manifest: every file of the OUT or INOUT PATH parameters after the run."""
        return _manifest_frame(self._outputs)

    @property
    def input_entries(self) -> tuple[ManifestEntry, ...]:
        return self._inputs

    @property
    def output_entries(self) -> tuple[ManifestEntry, ...]:
        return self._outputs

    @property
    def verification(self) -> Verification | None:
        """For ``rerun(..., verify=True)``: how this run's outputs compare with the record's."""
        return self._verification

    def _with_verification(self, verification: Verification) -> JobResult:
        copied = copy.copy(self)
        copied._verification = verification
        return copied

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
        """The tasks that ran (or were canceled once handed out), in plan order."""
        return self._tasks

    @property
    def not_run(self) -> dict[str, int]:
        """Per step, how many selected tasks (or chunks) did not run; steps with none left out.

        They have no rows in :attr:`tasks`; :meth:`not_run_tasks` lists them when asked.
        """
        if self._not_run is None:
            self._not_run = self._count_not_run()
        return dict(self._not_run)

    def _count_not_run(self) -> dict[str, int]:
        counts = Counter(t.step for t in self._not_run_rows)
        if self._given_not_run is not None:
            counts.update(self._given_not_run)
        elif self._selection is not None and not self._not_run_rows:
            # Not recorded (the run's process died): what the selection holds beyond the rows.
            from .selection import not_run_counts

            # A template that no longer instantiates leaves the count unknown.
            with contextlib.suppress(JobsError):
                counts.update(not_run_counts(self._selection(), self._tasks))
        order = self._steps()
        return {step: counts[step] for step in sorted(counts, key=order.index) if counts[step]}

    @property
    def environment_outcomes(self) -> tuple[EnvironmentOutcome, ...]:
        return self._environments

    @property
    def parameter_columns(self) -> Mapping[str, tuple[tuple[str, str], ...]]:
        return dict(self._parameter_columns)

    # -- tables -------------------------------------------------------------------------------

    @property
    def tasks(self) -> pd.DataFrame:
        """One row per task (or chunk) that ran, in plan order; a copy of a frame cached on
        first use. ``attrs["not_run"]`` holds :attr:`not_run`, the tasks without a row."""
        if self._tasks_frame is None:
            self._tasks_frame = tasks_frame(self._tasks, self._parameter_columns)
        frame = self._tasks_frame.copy()
        frame.attrs["not_run"] = self.not_run
        return frame

    @property
    def environments(self) -> pd.DataFrame:
        """One row per environment entered on a worker; a copy of a cached frame."""
        if self._environments_frame is None:
            self._environments_frame = environments_frame(self._environments)
        return self._environments_frame.copy()

    @property
    def failures(self) -> pd.DataFrame:
        """The rows of :attr:`tasks` whose state is failed, timeout or canceled;
        ``attrs["not_run"]`` counts the tasks that did not run, per step."""
        frame = self.tasks
        failed = frame[frame["state"].isin(_FAILURE_STATES)]
        failed.attrs["not_run"] = self.not_run
        return failed

    def not_run_tasks(self, step: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """The selected tasks that did not run (of ``step``, or every step), at most ``limit``.

        Shaped like :attr:`tasks`, state "not_run", only the parameter columns filled. Built
        on demand from the run's selection: a result of this process asks its step plans; a
        loaded record re-creates the job from the template text and parameter values it holds
        (with an adaptively chunked step, the chunks are of the template's default size, less
        the frames that ran). Listing a million tasks takes a while: ``limit`` bounds it.
        """
        if step is not None and step not in self._steps():
            raise TaskNotFoundError(f"no step {step!r} in this result; steps: {self._step_list()}")
        rows = list(islice(self._not_run_outcomes(step), limit))
        return tasks_frame(rows, self._parameter_columns)

    def _not_run_outcomes(self, step: str | None) -> Iterator[TaskOutcome]:
        counts = self.not_run
        if not (counts.get(step, 0) if step is not None else counts):
            return iter(())
        if self._not_run_rows:  # a record of an older version listed them
            return (t for t in self._not_run_rows if step in (None, t.step))
        if self._selection is None:
            raise NotRunTasksUnavailableError(
                "this result counts tasks that did not run but has no selection to list them"
            )
        from .selection import not_run_outcomes

        return not_run_outcomes(self._selection(), self._tasks, step)

    def state_counts(self) -> dict[str, int]:
        """Number of tasks in each state that occurs, in the order of ``TASK_STATES``;
        "not_run" counts the selected tasks that did not run."""
        counts = {state: 0 for state in TASK_STATES}
        for task in self._tasks:
            counts[task.state] += 1
        counts["not_run"] += sum(self.not_run.values())
        return {state: n for state, n in counts.items() if n}

    def _steps(self) -> list[str]:
        """Every step of the run: planned (parameter columns), with rows, or not run."""
        planned = list(self._parameter_columns)
        return _unique([*planned, *(t.step for t in self._tasks), *self._not_run_steps()])

    def _not_run_steps(self) -> Iterable[str]:
        if self._given_not_run is not None:
            return self._given_not_run
        return (t.step for t in self._not_run_rows)

    def _step_list(self) -> str:
        return ", ".join(repr(s) for s in self._steps()) or "none"

    # -- logs ---------------------------------------------------------------------------------

    def log(self, step: str, task: int) -> str:
        """The text of one task's log, read from the record directory.

        Only a regular file inside the record directory is read (links followed), and at most
        its last ``LOG_READ_LIMIT`` bytes (64 MiB), after a line saying what was left out; a
        record's ``log_path`` that leads elsewhere raises ``LogNotAvailableError``.
        """
        return self._read_log(self._find_task(step, task).log_path, f"task {task} of step {step!r}")

    def output(self, step: str, task: int) -> str:
        """Only what the task's process printed: its log without the session's banners."""
        text = self.log(step, task)
        # A log cut to its tail most likely starts inside the output, past its "Output:" line.
        lines, _ = action_output(text.splitlines(), in_output=text.startswith(_CUT_NOTICE))
        return "\n".join(lines)

    def environment_log(self, name: str, worker: str | None = None) -> str:
        """The text of one environment's log (enter and exit); ``worker`` picks among workers."""
        found = self._find_environment(name, worker)
        return self._read_log(found.log_path, f"environment {name!r} on worker {found.worker!r}")

    def _find_task(self, step: str, task: int) -> TaskOutcome:
        if step not in self._steps():
            raise TaskNotFoundError(f"no step {step!r} in this result; steps: {self._step_list()}")
        in_step = [t for t in self._tasks if t.step == step]
        for outcome in in_step:
            if outcome.task == task:
                return outcome
        not_run = self.not_run.get(step, 0)
        if not_run:
            noun = "task" if not_run == 1 else "tasks"
            raise LogNotAvailableError(
                f"task {task} of step {step!r} has no log: it is not among the tasks that ran "
                f"({not_run} {noun} of the step did not run; "
                f"JobResult.not_run_tasks({step!r}) lists them)"
            )
        if not in_step:
            raise TaskNotFoundError(f"no task {task!r} in step {step!r}; it ran no task")
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
        return read_log_file(self._run_dir, log_path, what)

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
        if self.not_run:
            lines.append(f"  {self._not_run_text()}")
        return "\n".join(lines)

    # -- display ------------------------------------------------------------------------------

    def summary_line(self, base: str | os.PathLike[str] | None = None) -> str:
        """Job name, state, task counts per state, duration and record directory, as one line;
        the record relative to ``base`` when given (and inside it)."""
        return result_display.summary_line(self, _base(base))

    def summary_text(self, base: str | os.PathLike[str] | None = None) -> str:
        """Plain-text summary: the summary line, the error, counts per state per step, the
        tasks that need attention (failed, timed out, canceled) and those that did not run."""
        return result_display.summary_text(self, _base(base))

    def summary_html(self, base: str | os.PathLike[str] | None = None) -> str:
        """The HTML summary (``_repr_html_`` with the current directory as ``base``)."""
        return result_display.summary_html(self, _base(base))

    def timeline(self) -> Timeline:
        """The tasks per worker over time, a Gantt chart (self-contained SVG; ``str`` gives a
        text version). Hover a bar for its step, task, parameters and duration."""
        return Timeline.from_outcomes(self._job_name, self._tasks, self._started, self._ended)

    def __repr__(self) -> str:
        return (
            f"<JobResult {self._job_name!r} {self._state}: {self._counts_text()}, "
            f"{_format_duration(self.duration_s)}>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython's text/plain: the full summary, while repr() stays one line. The record is
        # shown relative to the kernel's directory, as in the HTML.
        printer.text(repr(self) if cycle else self.summary_text(Path.cwd()))

    def _repr_html_(self) -> str:
        return self.summary_html(Path.cwd())

    def _counts_text(self) -> str:
        return result_display.counts_text(self.state_counts())

    def _not_run_text(self) -> str:
        """``not run: 182 of Render, 1 of Encode (JobResult.not_run_tasks() lists them)``."""
        return result_display.not_run_text(self.not_run)

    # -- equality -----------------------------------------------------------------------------

    def _identity(self) -> tuple[Any, ...]:
        return (
            self._job_name,
            self._state,
            self._started,
            self._ended,
            self._run_id,
            self._tasks,
            self.not_run,
            self._environments,
            self._parameter_columns,
            self._inputs,
            self._outputs,
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

    table = tasks_table(tasks, parameter_columns)
    columns: dict[str, Any] = {}
    for name in table.columns:
        values = table.column(name)
        if name in ("step", "state", "status_message", "fail_message", "worker", "log_path"):
            columns[name] = _text(values)
        elif name == "task":
            columns[name] = pd.Series(values, dtype="int64")
        elif name == "exit_code":
            columns[name] = pd.array(values, dtype="Int64")
        elif name in ("started", "ended"):
            columns[name] = _timestamps(values)
        elif name in ("duration_s", "progress"):
            columns[name] = _floats(values)
        else:
            # object dtype keeps ints as ints next to None (a step without that parameter).
            columns[name] = pd.Series(values, dtype=object)
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


# -- logs on disk -----------------------------------------------------------------------------

_CUT_NOTICE = "[... the first "
_LOG_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in opens at once instead of waiting
    | getattr(os, "O_NOFOLLOW", 0)  # the path was resolved: a link swapped in is refused
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def read_log_file(run_dir: Path, log_path: str, what: str, limit: int = LOG_READ_LIMIT) -> str:
    """The text of a log inside ``run_dir``; its last ``limit`` bytes when it is longer.

    A record is plain files anyone can edit: ``log_path`` must resolve (links followed)
    inside the record directory and be a regular file, else ``LogNotAvailableError``.
    """
    path = _log_inside(run_dir, log_path, what)
    try:
        fd = os.open(path, _LOG_OPEN_FLAGS)
    except OSError as exc:
        raise LogNotAvailableError(f"the log of {what} cannot be opened ({exc})") from exc
    size = os.fstat(fd)
    if not stat.S_ISREG(size.st_mode):
        os.close(fd)
        raise LogNotAvailableError(f"the log of {what} ({path}) is not a regular file")
    with open(fd, "rb", closefd=True) as file:
        if size.st_size <= limit:
            return file.read(limit).decode("utf-8", errors="replace")
        file.seek(size.st_size - limit)
        tail = file.read(limit)
    # Start at a whole line, which also skips a UTF-8 sequence cut in half.
    tail = tail[tail.find(b"\n") + 1 :]
    omitted = size.st_size - len(tail)
    notice = f"{_CUT_NOTICE}{omitted} bytes of this log are left out; the whole log is {path}]"
    return notice + "\n" + tail.decode("utf-8", errors="replace")


def _log_inside(run_dir: Path, log_path: str, what: str) -> Path:
    root = run_dir.resolve()
    try:
        path = (root / log_path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError) as exc:  # a loop of links, a NUL in the path
        raise LogNotAvailableError(f"the log of {what} is missing ({log_path}: {exc})") from exc
    if not path.is_relative_to(root):
        raise LogNotAvailableError(
            f"the log of {what} would be read from {path}, outside the record directory "
            f"{root}; a record's log path ({log_path!r}) must stay inside it"
        )
    return path


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
    return result_display.format_duration(seconds)


def _base(base: str | os.PathLike[str] | None) -> Path | None:
    return Path(base) if base is not None else None


def _entry_order(environment: EnvironmentOutcome) -> tuple[float, str]:
    started = environment.started.timestamp() if environment.started is not None else 0.0
    return (started, environment.worker)


def _manifest_frame(entries: Sequence[ManifestEntry]) -> pd.DataFrame:
    import pandas as pd

    rows = [entry.as_row() for entry in entries]
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS), dtype=object)
    frame["size"] = pd.array(list(frame["size"]), dtype="Int64")
    frame["mtime"] = _timestamps(list(frame["mtime"]))
    return frame
