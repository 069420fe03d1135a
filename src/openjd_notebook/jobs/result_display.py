"""How a finished run reads: one line, a text summary and an HTML summary.

Both summaries put the counts per state per step first, then only the tasks that need
attention (failed, timed out, canceled); the HTML adds the whole task table, folded, and a
small timeline when several workers ran. Everything comes from plain rows (``tables.Table``),
never pandas: the command line prints the text summary and must not wait for pandas.

A record directory is shown relative to ``base`` (in a notebook: the kernel's directory, which
is the notebook's), so a shared notebook carries no ``/home/<user>/...`` path.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .outcomes import TASK_STATES, TaskOutcome
from .tables import ParameterColumns, Table, tasks_table
from .timeline import STATE_COLOURS, Timeline

if TYPE_CHECKING:
    from .results import JobResult

__all__ = [
    "ATTENTION_STATES",
    "counts_text",
    "not_run_text",
    "record_location",
    "summary_html",
    "summary_line",
    "summary_text",
]

ATTENTION_STATES = ("failed", "timeout", "canceled")
_ATTENTION_ROWS = 20
_FULL_TABLE_ROWS = 200
_HIDDEN_COLUMNS = ("started", "ended", "progress", "log_path", "status_message")
_MUTED = "color:#757575"
_CELL = "padding:1px 0.8em 1px 0;text-align:left;white-space:nowrap"
_NUMBER = "padding:1px 0.8em 1px 0;text-align:right;white-space:nowrap"
_TABLE = "border-collapse:collapse;width:auto;margin:0.3em 0"
_RUN_FILE = "run.json"


# ---- text ---------------------------------------------------------------------------------


def counts_text(counts: Mapping[str, int]) -> str:
    """``187 tasks: 3 success, 1 failed, 183 not run``."""
    listed = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in counts.items())
    total = sum(counts.values())
    noun = "task" if total == 1 else "tasks"
    return f"{total} {noun}" + (f": {listed}" if listed else "")


def not_run_text(not_run: Mapping[str, int]) -> str:
    """``not run: 182 of Render, 1 of Encode (JobResult.not_run_tasks() lists them)``."""
    steps = ", ".join(f"{n} of {step}" for step, n in not_run.items())
    return f"not run: {steps} (JobResult.not_run_tasks() lists them)"


def record_location(run_dir: Path, base: Path | None) -> str:
    """``run_dir`` relative to ``base`` when inside it, else with ``~`` for the home directory;
    as given without a ``base``."""
    if base is None:
        return str(run_dir)
    relative = _relative(run_dir, base)
    if relative is not None:
        return relative
    home = Path.home()
    inside_home = _relative(run_dir, home)
    return f"~/{inside_home}" if inside_home is not None else str(run_dir)


def summary_line(result: JobResult, base: Path | None = None) -> str:
    """Job name, state, task counts per state, duration and record directory, as one line."""
    parts = [f"{result.job_name}: {result.state}", counts_text(result.state_counts())]
    parts.append(format_duration(result.duration_s))
    if result.run_dir is not None:
        parts.append(f"record {record_location(result.run_dir, base)}")
    return " | ".join(parts)


def summary_text(result: JobResult, base: Path | None = None) -> str:
    """The summary line, the error, counts per step, the tasks that need attention (at most
    20) and the tasks that did not run; blanks where a value is missing."""
    lines = [summary_line(result, base)]
    if result.error:
        lines.append(f"error: {result.error}")
    if result.verification is not None:
        lines.append(result.verification.summary())
    if result.task_outcomes or result.not_run:
        lines.append(step_counts_table(result).to_text())
    attention = _attention(result.task_outcomes)
    if attention:
        lines.append("needs attention:")
        table = _task_rows(attention[:_ATTENTION_ROWS], result.parameter_columns)
        lines.extend(f"  {line}" for line in table.to_text().splitlines())
        if len(attention) > _ATTENTION_ROWS:
            lines.append(f"  ... and {len(attention) - _ATTENTION_ROWS} more (JobResult.failures)")
    if result.not_run:
        lines.append(not_run_text(result.not_run))
    return "\n".join(lines)


def step_counts_table(result: JobResult) -> Table:
    """A row per step: its tasks, then how many ended in each state that occurs."""
    per_step: dict[str, dict[str, int]] = {}
    for task in result.task_outcomes:
        counts = per_step.setdefault(task.step, {})
        counts[task.state] = counts.get(task.state, 0) + 1
    for step, count in result.not_run.items():
        per_step.setdefault(step, {})["not_run"] = count
    states = [s for s in TASK_STATES if any(s in counts for counts in per_step.values())]
    columns = ("step", "tasks", *states)
    rows = tuple(
        (step, sum(counts.values()), *(counts.get(s) for s in states))
        for step, counts in per_step.items()
    )
    return Table(columns, rows)


def _attention(tasks: Sequence[TaskOutcome]) -> list[TaskOutcome]:
    return [task for task in tasks if task.state in ATTENTION_STATES]


def _task_rows(tasks: Sequence[TaskOutcome], parameter_columns: ParameterColumns) -> Table:
    """The columns a summary shows of these tasks, parameters only of their own steps."""
    steps = {task.step for task in tasks}
    own = {step: params for step, params in parameter_columns.items() if step in steps}
    table = tasks_table(tasks, own)
    hidden = list(_HIDDEN_COLUMNS)
    if all(value is None for value in table.column("fail_message")):
        hidden.append("fail_message")
    return table.without(hidden)


# ---- HTML ---------------------------------------------------------------------------------


def summary_html(result: JobResult, base: Path | None = None) -> str:
    """The notebook display of a finished run; see the module docstring."""
    parts = [_headline_html(result, base)]
    if result.verification is not None:
        colour = STATE_COLOURS["success" if result.verification.ok else "failed"]
        summary = html.escape(result.verification.summary())
        parts.append(f"<div style='color:{colour};font-weight:bold'>{summary}</div>")
    if result.task_outcomes or result.not_run:
        parts.append(_step_counts_html(step_counts_table(result)))
    attention = _attention(result.task_outcomes)
    if attention:
        parts.append(_attention_html(result, attention, base))
    if result.not_run:
        parts.append(f"<div style='{_MUTED}'>{html.escape(not_run_text(result.not_run))}</div>")
    timeline = _small_timeline(result)
    if timeline:
        parts.append(timeline)
    if result.task_outcomes:
        parts.append(_all_tasks_html(result, base))
    return f"<div class='openjd-job-result'>{''.join(parts)}</div>"


def _headline_html(result: JobResult, base: Path | None) -> str:
    colour = STATE_COLOURS.get(result.state, "inherit")
    parts = [
        f"<b>{html.escape(result.job_name)}</b>",
        f"<span style='color:{colour};font-weight:bold'>{html.escape(result.state)}</span>",
        html.escape(counts_text(result.state_counts())),
        html.escape(format_duration(result.duration_s)),
    ]
    if result.run_dir is not None:
        # To run.json, which the frontend opens: JupyterLab cannot open a folder as a document.
        link = path_link(result.run_dir, base, target=result.run_dir / _RUN_FILE)
        parts.append(f"record {link}")
    error = ""
    if result.error:
        error = f"<br><span>error: {html.escape(result.error)}</span>"
    return f"<div style='margin-bottom:0.2em'>{' &middot; '.join(parts)}{error}</div>"


def _step_counts_html(table: Table) -> str:
    head = "".join(_th(name, _state_colour(name)) for name in table.columns)
    body = ""
    for row in table.rows:
        cells = [f"<td style='{_CELL}'>{html.escape(str(row[0]))}</td>"]
        for name, value in zip(table.columns[1:], row[1:], strict=True):
            colour = _state_colour(name)
            style = _NUMBER + (f";color:{colour}" if colour and value else "")
            cells.append(f"<td style='{style}'>{'' if value is None else value}</td>")
        body += f"<tr>{''.join(cells)}</tr>"
    return (
        f"<table class='openjd-steps' style='{_TABLE}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _attention_html(result: JobResult, attention: list[TaskOutcome], base: Path | None) -> str:
    shown = attention[:_ATTENTION_ROWS]
    title = f"Needs attention: {len(attention)} task{'s' if len(attention) != 1 else ''}"
    more = ""
    if len(attention) > len(shown):
        more = f" (the first {len(shown)}; <code>result.failures</code> has all)"
    table = _tasks_html(result, shown, base, "openjd-attention")
    return f"<div style='margin-top:0.3em'><b>{html.escape(title)}</b>{more}</div>{table}"


def _all_tasks_html(result: JobResult, base: Path | None) -> str:
    tasks = result.task_outcomes
    shown = tasks[:_FULL_TABLE_ROWS]
    label = f"All {len(tasks)} task{'s' if len(tasks) != 1 else ''} that ran"
    if len(tasks) > len(shown):
        label += f" (the first {len(shown)} listed; <code>result.tasks</code> has all)"
    table = _tasks_html(result, shown, base, "openjd-all-tasks")
    return f"<details><summary style='cursor:pointer'>{label}</summary>{table}</details>"


def _tasks_html(
    result: JobResult, tasks: Sequence[TaskOutcome], base: Path | None, kind: str
) -> str:
    table = _task_rows(tasks, result.parameter_columns)
    with_logs = result.run_dir is not None
    names = [*table.columns, *(("log",) if with_logs else ())]
    head = "".join(_th(name) for name in names)
    body = "".join(
        _task_row_html(table, row, task, result.run_dir, base)
        for row, task in zip(table.rows, tasks, strict=True)
    )
    return (
        f"<table class='{kind}' style='{_TABLE}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _task_row_html(
    table: Table, row: tuple[Any, ...], task: TaskOutcome, run_dir: Path | None, base: Path | None
) -> str:
    cells = []
    for name, value in zip(table.columns, row, strict=True):
        text = html.escape(_cell_text(name, value))
        if name == "state":
            text = f"<span style='color:{STATE_COLOURS.get(task.state, 'inherit')}'>{text}</span>"
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        cells.append(f"<td style='{_NUMBER if numeric else _CELL}'>{text}</td>")
    if run_dir is not None:
        link = path_link(run_dir / task.log_path, base, "log") if task.log_path else ""
        cells.append(f"<td style='{_CELL}'>{link}</td>")
    return f"<tr>{''.join(cells)}</tr>"


def _cell_text(name: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # NaN
        return ""
    if name == "duration_s" and isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _th(name: str, colour: str | None = None) -> str:
    style = _CELL + (f";color:{colour}" if colour else "")
    label = "not run" if name == "not_run" else name
    return f"<th style='{style}'>{html.escape(label)}</th>"


def _state_colour(column: str) -> str | None:
    return STATE_COLOURS.get(column)


def _small_timeline(result: JobResult) -> str:
    """A small chart of the tasks per worker when more than one worker ran them."""
    timeline = Timeline.from_outcomes(
        result.job_name, result.task_outcomes, result.started, result.ended
    )
    if len(timeline.workers) < 2:
        return ""
    svg = timeline.to_svg(width=560, lane_height=14, legend=False)
    caption = "Tasks per worker over time (hover a bar; <code>result.timeline()</code> enlarges)"
    return f"<div style='margin-top:0.3em'><div style='{_MUTED}'>{caption}</div>{svg}</div>"


# ---- shared -------------------------------------------------------------------------------


def path_link(
    path: Path, base: Path | None, label: str | None = None, target: Path | None = None
) -> str:
    """``path`` as a link (to ``target``, default the path itself) relative to ``base``, which
    the frontend resolves against the notebook, when inside it; elsewhere as text (``~`` for
    the home directory). The text never wraps mid-path."""
    relative = _relative(target or path, base) if base is not None else None
    shown = label or record_location(path, base)
    text = f"<code style='white-space:nowrap'>{html.escape(shown)}</code>"
    if relative is None:
        return text
    return f"<a href='{html.escape(relative, quote=True)}' target='_blank'>{text}</a>"


def _relative(path: Path, base: Path) -> str | None:
    try:
        relative = Path(os.path.relpath(path.absolute(), base.absolute()))
    except ValueError:  # another drive (Windows)
        return None
    return None if relative.parts[:1] == ("..",) else relative.as_posix()


def format_duration(seconds: float | None) -> str:
    """``4.2 s``, ``2 min 5 s``, ``1 h 1 min``."""
    if seconds is None:
        return "not finished"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
