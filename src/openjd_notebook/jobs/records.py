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
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import pandas as pd

from .action_logs import environment_log_name, safe_name, task_log_name
from .errors import JobsError
from .outcomes import EnvironmentOutcome, RunState, TaskOutcome
from .private_files import PRIVATE_DIR_MODE, make_private_dirs, open_private
from .results import JobResult, ParameterColumns

__all__ = [
    "DEFAULT_RUNS_ROOT",
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
)
INCOMPLETE_ERROR = "the run did not finish (record incomplete)"
_RUNNING = "running"
_RUN_STATES = ("success", "failed", "canceled")
_FAILURE_STATES = ("failed", "timeout", "canceled")
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
        }
        recorder = cls(run_dir, run_id, job_name, started, header)
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
        line = json.dumps(_outcome_json(outcome), default=str, ensure_ascii=False) + "\n"
        with open_private(self.run_dir / TASK_ROWS_FILE) as rows:
            rows.write(line)

    def finish(
        self,
        *,
        state: RunState,
        ended: datetime,
        tasks: Sequence[TaskOutcome],
        environments: Sequence[EnvironmentOutcome],
        parameter_columns: ParameterColumns,
        error: str | None = None,
    ) -> JobResult:
        """Write the CSV tables and the final run.json; return the run's :class:`JobResult`."""
        result = JobResult(
            job_name=self.job_name,
            state=state,
            started=self.started,
            ended=ended,
            tasks=tasks,
            environments=environments,
            parameter_columns=parameter_columns,
            run_dir=self.run_dir,
            run_id=self.run_id,
            error=error,
        )
        try:
            self._write_run_json(state=state, ended=ended, result=result)
            with open_private(self.run_dir / "tasks.csv", "w") as table:
                result.tasks.to_csv(table, index=False)
            with open_private(self.run_dir / "environments.csv", "w") as table:
                result.environments.to_csv(table, index=False)
            # run.json now holds every row: the journal has done its job.
            (self.run_dir / TASK_ROWS_FILE).unlink(missing_ok=True)
        except OSError as exc:
            # The run itself ended; say what could not be kept rather than lose the result.
            note = f"the run record could not be written completely ({exc})"
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
                error=f"{error}; {note}" if error else note,
            )
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
        "tasks": [_outcome_json(t) for t in result.task_outcomes],
        "environments": [_outcome_json(e) for e in result.environment_outcomes],
    }


def _outcome_json(outcome: TaskOutcome | EnvironmentOutcome) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for field in fields(outcome):
        value = getattr(outcome, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Mapping):
            value = dict(value)
        body[field.name] = value
    return body


def _task_from_json(body: Mapping[str, Any], types: Mapping[str, str]) -> TaskOutcome:
    values = _known_fields(TaskOutcome, body)
    values["parameters"] = {
        name: _typed_parameter(value, types.get(name))
        for name, value in dict(values.get("parameters") or {}).items()
    }
    return TaskOutcome(**values)


def _environment_from_json(body: Mapping[str, Any]) -> EnvironmentOutcome:
    return EnvironmentOutcome(**_known_fields(EnvironmentOutcome, body))


def _known_fields(cls: type[Any], body: Mapping[str, Any]) -> dict[str, Any]:
    # Fields added by a later format are ignored; missing ones take the dataclass default.
    values = {f.name: body[f.name] for f in fields(cls) if f.name in body}
    for name in ("started", "ended"):
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    return values


def _typed_parameter(value: Any, kind: str | None) -> Any:
    # JSON writes 2.0 as 2.0 but a FLOAT parameter given as 2 comes back as int; restore it.
    if value is None or kind is None:
        return value
    if kind == "INT":
        return int(value)
    if kind == "FLOAT":
        return float(value)
    return str(value)


# -- reading ----------------------------------------------------------------------------------


def load_run(path: str | Path) -> JobResult:
    """The :class:`JobResult` recorded in a run directory (or its run.json).

    A run that never finished (the process died) loads as failed with an explanatory error.
    """
    run_file = _run_file(Path(path))
    body = _read_run_json(run_file)
    try:
        return _result_from_json(body, run_file.parent.absolute())
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunRecordError(f"{run_file}: malformed run record ({_describe(exc)})") from exc


def _run_file(path: Path) -> Path:
    run_file = path if path.name == RUN_FILE and not path.is_dir() else path / RUN_FILE
    if not run_file.is_file():
        raise RunRecordError(f"{run_file}: no run record here (run.json is missing)")
    return run_file


def _read_run_json(run_file: Path) -> dict[str, Any]:
    try:
        body = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunRecordError(f"{run_file}: cannot read run record ({exc})") from exc
    if not isinstance(body, dict):
        raise RunRecordError(f"{run_file}: run record is not a JSON object")
    return body


def _result_from_json(body: Mapping[str, Any], run_dir: Path) -> JobResult:
    state = body["state"]
    if state not in (*_RUN_STATES, _RUNNING):
        raise ValueError(f"unknown state {state!r}")
    columns = _parameter_columns_from_json(body.get("parameter_columns") or {})
    types = {name: kind for params in columns.values() for name, kind in params}
    finished = state != _RUNNING
    task_rows = body.get("tasks") if finished else _appended_task_rows(run_dir)
    return JobResult(
        job_name=str(body["job_name"]),
        state=cast(RunState, state if finished else "failed"),
        started=datetime.fromisoformat(body["started"]),
        ended=_optional_time(body.get("ended")),
        tasks=[_task_from_json(t, types) for t in task_rows or []],
        environments=[_environment_from_json(e) for e in body.get("environments") or []],
        parameter_columns=columns,
        run_dir=run_dir,
        run_id=str(body.get("run_id", "")),
        error=body.get("error") if finished else INCOMPLETE_ERROR,
    )


def _appended_task_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows in tasks.jsonl; a last line cut short by the writer's death is skipped."""
    try:
        text = (run_dir / TASK_ROWS_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _parameter_columns_from_json(body: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {step: [(str(n), str(k)) for n, k in params] for step, params in body.items()}


def _optional_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    return f"{type(exc).__name__}: {exc}"


# -- listing ----------------------------------------------------------------------------------


def runs(root: str | Path | None = None) -> pd.DataFrame:
    """One row per run record under ``root`` (default ``./openjd-runs``), newest first.

    Directories without a readable run.json are skipped. A run still in progress, or one whose
    process died, shows state "running".
    """
    import pandas as pd

    rows = list(_run_rows(Path(root) if root is not None else DEFAULT_RUNS_ROOT))
    frame = pd.DataFrame(rows, columns=list(RUNS_COLUMNS))
    frame["started"] = pd.to_datetime(frame["started"], utc=True, format="ISO8601")
    frame["duration_s"] = frame["duration_s"].astype("float64")
    for column in ("tasks", "succeeded", "failed"):
        frame[column] = frame[column].astype("int64")
    frame = frame.sort_values(["started", "run_id"], ascending=False, kind="stable")
    return frame.reset_index(drop=True)


def _run_rows(root: Path) -> Iterator[dict[str, Any]]:
    if not root.is_dir():
        return
    for run_dir in root.iterdir():
        row = _run_row(run_dir)
        if row is not None:
            yield row


def _run_row(run_dir: Path) -> dict[str, Any] | None:
    try:
        body = _read_run_json(run_dir / RUN_FILE)
        datetime.fromisoformat(body["started"])
    except (RunRecordError, KeyError, TypeError, ValueError):
        return None  # not a record (or a broken one): listing must not fail because of it
    rows = body.get("tasks") if body.get("state") != _RUNNING else _appended_task_rows(run_dir)
    states = [t.get("state") for t in rows or [] if isinstance(t, dict)]
    return {
        "run_id": body.get("run_id"),
        "job_name": body.get("job_name"),
        "state": body.get("state"),
        "started": body["started"],
        "duration_s": body.get("duration_s"),
        "tasks": len(states),
        "succeeded": states.count("success"),
        "failed": sum(states.count(s) for s in _FAILURE_STATES),
        "path": run_dir.absolute(),
        "template_digest": (body.get("template") or {}).get("digest"),
    }
