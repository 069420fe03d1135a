"""Run records on disk: one directory per run with run.json, CSV tables and one log per action.

Layout of a record directory::

    <root>/<UTC start YYYYmmddTHHMMSSZ>-<job name>-<8 hex>/
        run.json            template, parameters, options, versions, host, timings, outcomes
        tasks.jsonl         one task row per line, appended as each task ends (crash-safe)
        tasks.csv           JobResult.tasks, for spreadsheets and grep
        environments.csv    JobResult.environments
        logs/<step>/task-0007.log
        logs/environments/<worker>.<scope>.<step or "job">.<name>.log

Every folder of a record is 0700 and every file 0600, whatever the umask: logs hold what actions
printed (see ``private_files``). run.json is the source of truth: :func:`load_run` rebuilds typed
values from it, never from CSV. Until the run ends (or when its process was killed) run.json says
"running" and the task rows come from tasks.jsonl, which survives the death of its writer.

run.json holds a row per task that ran and, under "not_run", how many selected tasks of each step
did not: a canceled run of a million tasks stays small. Records of earlier versions listed those
tasks as "not_run" rows; they load, counted. The list of tasks that did not run is re-created on
demand from the template text, parameter values and options the record holds.

A record is plain files anyone may edit or replace, so reading one is defensive: run.json is read
only when it is a regular file of at most ``MAX_RECORD_BYTES`` (a FIFO or ``/dev/zero`` cannot
hang or exhaust a reader), every field's type is checked, and :func:`runs` skips a bad record
with a warning instead of failing for the whole folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import socket
import stat
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import pandas as pd

    from .selection import StepPlan

from .action_logs import environment_log_name, safe_name, task_log_name
from .errors import InputFileError, JobsError
from .input_files import read_text_file
from .manifests import ManifestEntry, entries_from_json, entries_json, manifest_digest
from .outcome_json import INT as _INT
from .outcome_json import OPTIONAL_NUMBER as _OPTIONAL_NUMBER
from .outcome_json import as_list as _sequence
from .outcome_json import as_mapping as _mapping
from .outcome_json import as_optional_text as _optional_text
from .outcome_json import as_text as _text
from .outcome_json import environment_from_json, environment_json, task_from_json, task_json
from .outcome_json import is_kind as _is_kind
from .outcome_json import short as _short
from .outcomes import (
    EnvironmentOutcome,
    RunState,
    TaskOutcome,
)
from .private_files import PRIVATE_DIR_MODE, make_private_dirs, open_private
from .results import JobResult, ParameterColumns, SelectionSource
from .tables import environments_table, tasks_table

__all__ = [
    "DEFAULT_RUNS_ROOT",
    "MAX_RECORD_BYTES",
    "RECORD_FORMAT",
    "RUNS_COLUMNS",
    "RunRecordError",
    "RunRecorder",
    "load_run",
    "runs",
]

DEFAULT_RUNS_ROOT = Path("openjd-runs")
RECORD_FORMAT = "openjd-notebook-run/1"
RUN_FILE = "run.json"
TASK_ROWS_FILE = "tasks.jsonl"
RUNS_COLUMNS: tuple[str, ...] = (
    "run_id",
    "job_name",
    "state",
    "started",
    "duration_s",
    "tasks",
    "succeeded",
    "failed",
    "path",
    "template_digest",
    "not_run",
    "outputs_digest",
)
"""``tasks`` counts every selected task: those that ran and the ``not_run`` ones;
``outputs_digest`` is one hash over the output manifest (equal for equal outputs)."""
MAX_RECORD_BYTES = 512 * 1024 * 1024
"""The largest run.json (or tasks.jsonl) read: 512 MiB, about a million rows of tasks that ran."""
INCOMPLETE_ERROR = "the run did not finish (record incomplete)"
_RUNNING = "running"
_RUN_STATES = ("success", "failed", "canceled")
_FAILURE_STATES = ("failed", "timeout", "canceled")
_JOURNAL_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_NAME = 60


class RunRecordError(JobsError, ValueError):
    """A run record is missing or malformed; the message names the file and what is wrong."""


# -- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecorder:
    """Writes one run's record directory: run.json at start and end, a task row as each task
    ends, logs in between.

    Log path methods and ``append_task`` are safe to call from several threads.
    """

    run_dir: Path
    run_id: str
    job_name: str
    started: datetime
    header: Mapping[str, Any]
    """Everything in run.json known at start (template, parameters, options, versions, host)."""
    selection: SelectionSource | None = None
    """The run's step plans, to count and list the tasks that did not run."""
    manifests: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    """The input manifest once captured, and the output manifest at the end (as JSON)."""

    @classmethod
    def create(
        cls,
        *,
        root: Path | None,
        job_name: str,
        template_text: str,
        template_digest: str,
        parameters: Mapping[str, str],
        options: Mapping[str, Any],
        started: datetime,
        run_id: str | None = None,
        parameter_columns: ParameterColumns | None = None,
        selection: SelectionSource | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> RunRecorder:
        """Make a new, unique record directory under ``root`` and write run.json as running.

        ``run_id`` (default: 8 random hex digits) ends the directory name; pass the run's own id
        so events, the record and the result agree.
        """
        run_id = run_id or uuid.uuid4().hex[:8]
        root_dir = Path(root or DEFAULT_RUNS_ROOT).absolute()
        run_dir = _make_run_dir(root_dir, job_name, started, run_id)
        header = {
            "format": RECORD_FORMAT,
            "run_id": run_id,
            "job_name": job_name,
            "template": {"digest": template_digest, "text": template_text},
            "parameters": dict(parameters),
            "options": dict(options),
            "versions": _package_versions(),
            "host": _host(),
            # Known at start, so the task rows of a run that never finishes load typed.
            "parameter_columns": _parameter_columns_json(parameter_columns or {}),
            # Environment templates, path mapping rules, the actions' Python packages.
            **(provenance or {}),
        }
        recorder = cls(run_dir, run_id, job_name, started, header, selection)
        recorder._write_run_json(state=_RUNNING, ended=None)
        return recorder

    def log_path_for_task(self, step: str, task: int) -> tuple[Path, str]:
        """Absolute and record-relative path of a task's log; its directory exists."""
        return self._log_path(task_log_name(step, task))

    def log_path_for_environment(
        self, name: str, scope: str, step: str | None, worker: str
    ) -> tuple[Path, str]:
        """Absolute and record-relative path of an environment's log on one worker."""
        return self._log_path(environment_log_name(name, scope, step, worker))

    def _log_path(self, relative: str) -> tuple[Path, str]:
        path = self.run_dir / relative
        make_private_dirs(path.parent, inside=self.run_dir)
        return path, relative

    def append_task(self, outcome: TaskOutcome) -> None:
        """Append one finished task's row to tasks.jsonl, where a killed run still has it.

        One ``write`` of one line in append mode, so rows from several threads never
        interleave; flushed to the OS, which keeps it when this process dies.
        """
        line = json.dumps(task_json(outcome), default=str, ensure_ascii=False) + "\n"
        with open_private(self.run_dir / TASK_ROWS_FILE) as rows:
            rows.write(line)

    def record_inputs(self, entries: Sequence[ManifestEntry]) -> None:
        """Keep the input manifest in run.json at once: a run that dies still has it."""
        self.manifests["inputs"] = entries_json(entries)
        self._write_run_json(state=_RUNNING, ended=None)

    def finish(
        self,
        *,
        state: RunState,
        ended: datetime,
        tasks: Sequence[TaskOutcome],
        environments: Sequence[EnvironmentOutcome],
        parameter_columns: ParameterColumns,
        error: str | None = None,
        not_run: Mapping[str, int] | None = None,
        outputs: Sequence[ManifestEntry] = (),
    ) -> JobResult:
        """Write the CSV tables and the final run.json; return the run's :class:`JobResult`.

        ``tasks`` are the tasks that ran; ``not_run`` counts the others per step (when not
        given, the recorder's selection counts them).
        """

        def build(error_text: str | None, not_run_counts: Mapping[str, int] | None) -> JobResult:
            return JobResult(
                job_name=self.job_name,
                state=state,
                started=self.started,
                ended=ended,
                tasks=tasks,
                environments=environments,
                parameter_columns=parameter_columns,
                run_dir=self.run_dir,
                run_id=self.run_id,
                error=error_text,
                not_run=not_run_counts,
                selection=self.selection,
                inputs=entries_from_json(self.manifests.get("inputs")),
                outputs=outputs,
            )

        result = build(error, not_run)
        self.manifests["outputs"] = entries_json(outputs)
        try:
            self._write_run_json(state=state, ended=ended, result=result)
            with open_private(self.run_dir / "tasks.csv", "w") as table:
                tasks_table(result.task_outcomes, result.parameter_columns).write_csv(table)
            with open_private(self.run_dir / "environments.csv", "w") as table:
                environments_table(result.environment_outcomes).write_csv(table)
            # run.json now holds every row: the journal has done its job.
            (self.run_dir / TASK_ROWS_FILE).unlink(missing_ok=True)
        except OSError as exc:
            # The run itself ended; say what could not be kept rather than lose the result.
            note = f"the run record could not be written completely ({exc})"
            return build(f"{error}; {note}" if error else note, result.not_run)
        return result

    def _write_run_json(
        self, *, state: str, ended: datetime | None, result: JobResult | None = None
    ) -> None:
        body = {
            **self.header,
            "state": state,
            "started": self.started.isoformat(),
            "ended": None if ended is None else ended.isoformat(),
            "duration_s": None if ended is None else (ended - self.started).total_seconds(),
            **self.manifests,
        }
        if result is not None:
            body.update(_outcomes_json(result))
        _write_json_atomically(self.run_dir / RUN_FILE, body)


def _make_run_dir(root: Path, job_name: str, started: datetime, run_id: str) -> Path:
    stamp = started.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = _UNSAFE.sub("_", job_name).strip("_-")[:_MAX_NAME] or "job"
    base = f"{stamp}-{name}-{safe_name(run_id)}"
    root.mkdir(parents=True, exist_ok=True)
    candidate = base
    while True:
        try:
            (root / candidate).mkdir(mode=PRIVATE_DIR_MODE)
            os.chmod(root / candidate, PRIVATE_DIR_MODE)  # whatever the umask
        except FileExistsError:  # Same second, name and id (a reused id): add a random suffix.
            candidate = f"{base}-{uuid.uuid4().hex[:4]}"
            continue
        return root / candidate


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in ("openjd-notebook", "openjd-model"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["python"] = platform.python_version()
    return versions


def _host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python_executable": sys.executable,
    }


def _write_json_atomically(path: Path, body: Mapping[str, Any]) -> None:
    # Readers (runs(), a second notebook) see the old or the new file, never half of one.
    text = json.dumps(body, indent=2, default=str, ensure_ascii=False)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# -- outcomes to and from JSON ----------------------------------------------------------------


def _parameter_columns_json(columns: ParameterColumns) -> dict[str, list[list[str]]]:
    return {step: [list(param) for param in params] for step, params in columns.items()}


def _outcomes_json(result: JobResult) -> dict[str, Any]:
    return {
        "error": result.error,
        "parameter_columns": _parameter_columns_json(result.parameter_columns),
        "tasks": [task_json(t) for t in result.task_outcomes],
        "not_run": result.not_run,
        "environments": [environment_json(e) for e in result.environment_outcomes],
    }


# -- reading ----------------------------------------------------------------------------------

_RECORD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError)
"""What a record of valid JSON but wrong content raises while it is turned into values."""


def load_run(path: str | Path) -> JobResult:
    """The :class:`JobResult` recorded in a run directory (or its run.json).

    A run that never finished (the process died) loads as failed with an explanatory error.
    A record whose run.json is not a regular file, too large, not JSON or of the wrong shape
    raises :class:`RunRecordError` naming the file and the problem.
    """
    run_file = _run_file(Path(path))
    body = _read_run_json(run_file)
    try:
        return _result_from_json(body, run_file.parent.absolute(), run_file)
    except _RECORD_ERRORS as exc:
        raise RunRecordError(f"{run_file}: malformed run record ({_describe(exc)})") from exc


def _run_file(path: Path) -> Path:
    run_file = path if path.name == RUN_FILE and not path.is_dir() else path / RUN_FILE
    if not os.path.lexists(run_file):
        raise RunRecordError(f"{run_file}: no run record here (run.json is missing)")
    return run_file


def _read_run_json(run_file: Path) -> dict[str, Any]:
    try:
        text = read_text_file(run_file, what="run record", limit=MAX_RECORD_BYTES)
    except InputFileError as exc:  # a FIFO, a device, too large, not UTF-8: says which
        raise RunRecordError(str(exc)) from exc
    except OSError as exc:
        raise RunRecordError(f"{run_file}: cannot read run record ({exc})") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunRecordError(f"{run_file}: cannot read run record ({exc})") from exc
    except RecursionError:
        raise RunRecordError(f"{run_file}: run record is nested too deeply to read") from None
    if not isinstance(body, dict):
        raise RunRecordError(f"{run_file}: run record is not a JSON object")
    return body


def _result_from_json(body: Mapping[str, Any], run_dir: Path, run_file: Path) -> JobResult:
    state = body["state"]
    if state not in (*_RUN_STATES, _RUNNING):
        raise ValueError(f"unknown state {_short(state)}")
    columns = _parameter_columns_from_json(body.get("parameter_columns") or {})
    types = {name: kind for params in columns.values() for name, kind in params}
    finished = state != _RUNNING
    rows = body.get("tasks") if finished else _appended_task_rows(run_dir)
    environments = _sequence(body.get("environments"), "environments")
    return JobResult(
        job_name=_text(body["job_name"], "job_name"),
        state=cast(RunState, state if finished else "failed"),
        started=datetime.fromisoformat(_text(body["started"], "started")),
        ended=_optional_time(body.get("ended")),
        tasks=[task_from_json(t, types) for t in _sequence(rows, "tasks")],
        environments=[environment_from_json(e) for e in environments],
        parameter_columns=columns,
        run_dir=run_dir,
        run_id=str(_optional_text(body.get("run_id"), "run_id") or ""),
        error=_optional_text(body.get("error"), "error") if finished else INCOMPLETE_ERROR,
        # Records of earlier versions have no counts but list the tasks as "not_run" rows.
        not_run=_not_run_from_json(body.get("not_run")) if finished else None,
        selection=_recorded_selection(body, run_file),
        inputs=entries_from_json(body.get("inputs")),
        outputs=entries_from_json(body.get("outputs")),
    )


def _not_run_from_json(body: Any) -> dict[str, int]:
    if body is None:
        return {}
    counts = {}
    for step, count in _mapping(body, "not_run").items():
        if not _is_kind(count, _INT) or count < 0:
            raise ValueError(f"not_run of step {step!r} is {_short(count)}, not a count")
        counts[str(step)] = count
    return counts


def _recorded_selection(body: Mapping[str, Any], run_file: Path) -> SelectionSource:
    """The run's step plans, re-created once, when first asked, from what the record holds.

    Only the template text, parameter values and options are kept, not the parsed rows.
    """
    template = body.get("template")
    text = template.get("text") if isinstance(template, Mapping) else None
    parameters, options = body.get("parameters"), body.get("options")
    made: list[Sequence[StepPlan]] = []

    def plans() -> Sequence[StepPlan]:
        if not made:
            try:
                made.append(_plans_from_record(text, parameters, options))
            except (JobsError, *_RECORD_ERRORS) as exc:
                raise RunRecordError(
                    f"{run_file}: cannot list the tasks that did not run: the record's template "
                    f"and values do not re-create the job ({_describe(exc)})"
                ) from exc
        return made[0]

    return plans


def _plans_from_record(text: Any, parameters: Any, options: Any) -> list[StepPlan]:
    from .selection import plan_steps
    from .template import Template

    template = Template.from_text(_text(text, "the template text"))
    declared = {str(p.name) for p in getattr(template.model, "parameterDefinitions", None) or []}
    # Values of external environments' parameters are recorded too; the job takes its own.
    values = {n: v for n, v in _mapping(parameters or {}, "parameters").items() if n in declared}
    instance = template.instantiate(values)
    chosen = _mapping(options or {}, "options")
    return plan_steps(
        instance.job,
        step=_optional_text(chosen.get("step"), "options.step"),
        tasks=chosen.get("tasks"),
        max_tasks=chosen.get("max_tasks"),
        run_dependencies=bool(chosen.get("run_dependencies", True)),
    )


def _appended_task_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows in tasks.jsonl; a last line cut short by the writer's death is skipped."""
    text = _read_journal(run_dir / TASK_ROWS_FILE)
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _read_journal(path: Path) -> str:
    """tasks.jsonl as text, "" when it cannot be read; a regular file of a bounded size only.

    Not ``read_text_file``: a last line cut short may end inside a UTF-8 sequence, and the
    rows before it still count.
    """
    try:
        fd = os.open(path, _JOURNAL_OPEN_FLAGS)
    except OSError:
        return ""
    with open(fd, "rb", closefd=True) as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        data = file.read(MAX_RECORD_BYTES)
    return data.decode("utf-8", errors="replace")


def _parameter_columns_from_json(body: Any) -> dict[str, list[tuple[str, str]]]:
    columns = {}
    for step, params in _mapping(body, "parameter_columns").items():
        pairs = []
        for pair in _sequence(params, f"parameter_columns of {step}"):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ValueError(f"parameter_columns of {step} holds {_short(pair)}")
            pairs.append((_text(pair[0], "a parameter name"), _text(pair[1], "a parameter type")))
        columns[str(step)] = pairs
    return columns


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(_text(value, "a time"))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{type(exc).__name__}: {exc}"


# -- listing ----------------------------------------------------------------------------------


def runs(root: str | Path | None = None) -> pd.DataFrame:
    """One row per run record under ``root`` (default ``./openjd-runs``), newest first.

    Directories without run.json are not records and are passed over. A record that cannot be
    read (not a regular file, too large, not JSON, fields of the wrong type) is skipped with a
    warning naming it and why; ``frame.attrs["skipped"]`` maps each such path to the reason.
    A run still in progress, or one whose process died, shows state "running". ``tasks``
    counts the selected tasks, ``not_run`` those of them that did not run.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for run_dir in _run_dirs(Path(root) if root is not None else DEFAULT_RUNS_ROOT):
        try:
            row = _run_row(run_dir)
        except (RunRecordError, *_RECORD_ERRORS) as exc:
            reason = str(exc) if isinstance(exc, RunRecordError) else _describe(exc)
            skipped[str(run_dir / RUN_FILE)] = reason
            warnings.warn(f"runs(): skipped {run_dir / RUN_FILE}: {reason}", stacklevel=2)
            continue
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(RUNS_COLUMNS))
    frame["started"] = pd.to_datetime(frame["started"], utc=True)
    frame["duration_s"] = frame["duration_s"].astype("float64")
    for column in ("tasks", "succeeded", "failed", "not_run"):
        frame[column] = frame[column].astype("int64")
    frame = frame.sort_values(["started", "run_id"], ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    frame.attrs["skipped"] = skipped
    return frame


def _run_dirs(root: Path) -> Iterator[Path]:
    try:
        entries = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return
    for entry in entries:
        # lexists: a run.json that is a link to nowhere is a broken record, not no record.
        if entry.is_dir() and os.path.lexists(entry / RUN_FILE):
            yield entry


def _run_row(run_dir: Path) -> dict[str, Any]:
    """The listing row of one record; raises on a record that load_run would refuse."""
    run_file = run_dir / RUN_FILE
    body = _read_run_json(run_file)
    result = _result_from_json(body, run_dir.absolute(), run_file)  # checks every field
    duration = body.get("duration_s")
    if not _is_kind(duration, _OPTIONAL_NUMBER):
        raise TypeError(f"duration_s is {_short(duration)}, not a number")
    template = body.get("template")
    digest = _mapping(template, "template").get("digest") if template is not None else None
    states: list[str] = [task.state for task in result.task_outcomes]
    # A record still running counts nothing as not run: re-creating its job is not for a listing.
    not_run = sum(result.not_run.values()) if body["state"] != _RUNNING else 0
    return {
        "run_id": result.run_id or None,
        "job_name": result.job_name,
        "state": body["state"],
        "started": result.started,
        "duration_s": duration,
        "tasks": len(states) + not_run,
        "succeeded": states.count("success"),
        "failed": sum(states.count(s) for s in _FAILURE_STATES),
        "path": run_dir.absolute(),
        "template_digest": _optional_text(digest, "template digest"),
        "not_run": not_run,
        # Equal for runs that produced the same outputs: runs().groupby("outputs_digest").
        "outputs_digest": manifest_digest(result.output_entries),
    }
