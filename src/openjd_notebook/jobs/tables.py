"""The tasks and environments tables as plain rows: one source for the DataFrames, the CSV
files of a record and the text summary.

Plain Python on purpose: a command-line run writes its record and prints its summary
without importing pandas, which would cost it more time than a short job takes.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from .outcomes import EnvironmentOutcome, TaskOutcome

__all__ = [
    "ENVIRONMENT_COLUMNS",
    "Table",
    "environments_table",
    "parameter_column_names",
    "parameter_names",
    "tasks_table",
]

ParameterColumns = Mapping[str, Sequence[tuple[str, str]]]

TASK_OUTCOME_COLUMNS = (
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
ENVIRONMENT_COLUMNS = ("name", "scope", "step", "worker", "state", "started", "ended", "duration_s")
_RESERVED = frozenset(("step", "task", *TASK_OUTCOME_COLUMNS))


@dataclass(frozen=True)
class Table:
    """Column names and rows of Python values (None where there is none)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def without(self, names: Iterable[str]) -> Table:
        dropped = set(names)
        keep = [i for i, name in enumerate(self.columns) if name not in dropped]
        return Table(
            tuple(self.columns[i] for i in keep),
            tuple(tuple(row[i] for i in keep) for row in self.rows),
        )

    def write_csv(self, stream: IO[str]) -> None:
        """As CSV, the way pandas writes these tables: empty for a missing value."""
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([_csv_value(value) for value in row] for row in self.rows)

    def to_text(self, max_rows: int | None = None) -> str:
        """Aligned plain text, blank for a missing value, like ``DataFrame.to_string``.

        With more rows than ``max_rows``, the first and last halves show around a ``...``.
        """
        rows = [[_text_value(value) for value in row] for row in self.rows]
        elided = max_rows is not None and len(rows) > max_rows
        if elided:
            assert max_rows is not None
            head = max(1, max_rows // 2)
            rows = [*rows[:head], ["..."] * len(self.columns), *rows[len(rows) - head :]]
        widths = [
            max(len(name), *(len(row[i]) for row in rows)) if rows else len(name)
            for i, name in enumerate(self.columns)
        ]
        lines = [" ".join(name.rjust(w) for name, w in zip(self.columns, widths, strict=True))]
        lines += [
            " ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        if elided:
            lines.append(f"[{len(self.rows)} rows x {len(self.columns)} columns]")
        return "\n".join(line.rstrip() for line in lines)


def parameter_names(tasks: Sequence[TaskOutcome], parameter_columns: ParameterColumns) -> list[str]:
    """Declared task parameters first, then any a task carries that was not declared."""
    declared = (name for params in parameter_columns.values() for name, _ in params)
    seen = (name for task in tasks for name in task.parameters)
    return list(dict.fromkeys([*declared, *seen]))


def parameter_column_names(names: Sequence[str]) -> list[str]:
    """A task parameter may legally be called "state" or "step"; keep it apart from ours."""
    return [f"{name} (parameter)" if name in _RESERVED else name for name in names]


def tasks_table(tasks: Sequence[TaskOutcome], parameter_columns: ParameterColumns) -> Table:
    """step, task, one column per task parameter, then the outcome columns."""
    names = parameter_names(tasks, parameter_columns)
    columns = ("step", "task", *parameter_column_names(names), *TASK_OUTCOME_COLUMNS)
    rows = tuple(
        (
            task.step,
            task.task,
            *(task.parameters.get(name) for name in names),
            task.state,
            task.exit_code,
            task.started,
            task.ended,
            task.duration_s,
            task.progress,
            task.status_message,
            task.fail_message,
            task.worker,
            task.log_path,
        )
        for task in tasks
    )
    return Table(columns, rows)


def environments_table(environments: Sequence[EnvironmentOutcome]) -> Table:
    rows = tuple(
        (e.name, e.scope, e.step, e.worker, e.state, e.started, e.ended, e.duration_s)
        for e in environments
    )
    return Table(ENVIRONMENT_COLUMNS, rows)


def _csv_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value


def _text_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(round(value, 2))  # hundredths are as precise as a summary needs
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value).replace("\n", "\\n")
