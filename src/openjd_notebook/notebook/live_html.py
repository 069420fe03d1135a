"""The dashboard's HTML, from the progress model: pure functions, which tests call without a
kernel. ``dashboard.Dashboard`` writes what they return into its widgets."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ..jobs.outcomes import TaskOutcome
from ..progress import (
    LiveRun,
    LogTail,
    RunningTask,
    StepProgress,
    format_elapsed,
    format_hashing,
    format_parameters,
    format_running_label,
    format_state,
    format_step_status,
    is_protocol_line,
)

__all__ = [
    "button_state",
    "counts_html",
    "header_html",
    "log_html",
    "running_html",
    "table_html",
]

_MAX_LINE_CHARS = 400
_COLOURS = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "timeout": "#c62828",
    "canceled": "#ef6c00",
    "not_run": "#757575",
}
_MUTED = "color:#757575"
_DIMMED = "opacity:0.5"
# ipywidgets gives HTML widgets a 28 px line height: tables read better at text height.
_TABLE = "font-size:90%;line-height:1.4"
_CELL = "padding:0 0.6em 0 0;white-space:nowrap;text-align:left"
# A header row that stays at the top of its scroll box, on the theme's background.
_STICKY_HEAD = f"{_CELL};position:sticky;top:0;background:var(--jp-layout-color1,#fff)"
# A scroll box that starts at its bottom, so the newest line or row is the one in view.
_TAIL_BOX = (
    "max-height:{height};overflow-y:auto;display:flex;flex-direction:column-reverse;"
    "border:1px solid #e0e0e0;border-radius:2px"
)


def header_html(live: LiveRun, now: datetime, hint: str = "", cancel_hint: str = "") -> str:
    """Job name, state in colour, elapsed time, and how to stop it while it runs: during a
    graceful cancel, how to kill at once (``cancel_hint``) instead of the general ``hint``."""
    state = format_state(live, now)
    colour = _COLOURS.get(live.state, "#1565c0" if live.cancel is None else "#ef6c00")
    parts = [
        f"<b>{html.escape(live.job_name)}</b>",
        f"<span style='color:{colour};font-weight:bold'>{html.escape(state)}</span>",
        html.escape(format_elapsed(live.elapsed_s(now))),
    ]
    shown = "" if live.finished else hint
    if live.cancel is not None:
        shown = "" if live.finished or live.cancel.force else cancel_hint
    if shown:
        parts.append(f"<span style='{_MUTED}'>{shown}</span>")
    hashing = format_hashing(live.hashing) if live.hashing is not None else None
    if hashing:
        parts.append(f"<span style='{_MUTED}'>{html.escape(hashing)}</span>")
    return " &middot; ".join(parts)


def counts_html(step: StepProgress, now: datetime) -> str:
    """``102/200 · 51% · 6.2 tasks/s · ~0:15 left · 2 failed``, red once a task failed."""
    text = html.escape(format_step_status(step, now))
    if step.failed:
        return f"<span style='color:{_COLOURS['failed']}'>{text}</span>"
    return text


def running_html(running: Sequence[RunningTask]) -> str:
    """A labelled row per running task: ``worker-1: Render[3] Frame=4 · 20% · bucket 2``, after
    a small bar when the task reports its progress."""
    if not running:
        return ""
    rows = "".join(_running_row(task) for task in running)
    return f"<table style='{_TABLE};border-collapse:collapse'>{rows}</table>"


def _running_row(task: RunningTask) -> str:
    progress = ""
    if task.progress is not None:
        percent = min(max(task.progress, 0.0), 100.0)
        progress = f"<progress value='{percent:.0f}' max='100' style='width:6em'></progress>"
    label = html.escape(format_running_label(task))
    return f"<tr><td style='{_CELL}'>{progress}</td><td style='{_CELL}'>{label}</td></tr>"


def log_html(tail: LogTail, run_dir: Path | None) -> str:
    """The last lines of output, newest in view, with a caption saying where the rest is;
    ``openjd_progress:`` and ``openjd_status:`` reports dimmed."""
    if not tail.lines:
        return ""
    lines = "\n".join(_log_line(line) for line in tail.lines)
    count = len(tail.lines)
    caption = f"Output (last {count} of {tail.total} lines)" if tail.total > count else "Output"
    if run_dir is not None:
        caption += f"; full logs in {_path_link(run_dir)}"
    box = _TAIL_BOX.format(height="18em")
    # flex-shrink/overflow: Lab's CSS would make the <pre> scroll itself, from the top.
    pre_style = "margin:0;padding:4px;font-size:85%;flex-shrink:0;overflow:visible"
    pre = f"<pre style='{pre_style}'>{lines}</pre>"
    return f"<div style='{_MUTED}'>{caption}</div><div style='{box}'>{pre}</div>"


def _log_line(line: str) -> str:
    text = html.escape(_clip(line))
    return f"<span style='{_DIMMED}'>{text}</span>" if is_protocol_line(line) else text


_TABLE_COLUMNS = ("step", "task", "parameters", "state", "exit", "time", "worker", "log")


def table_html(live: LiveRun) -> str:
    """The tasks that ended (the last 50, newest in view) under a line of counts; the header
    row stays in view while the rows scroll, and columns are as wide as their content."""
    if not live.ended:
        return ""
    rows = "".join(_ended_row(task, live.run_dir) for task in live.ended)
    head = "".join(f"<th style='{_STICKY_HEAD}'>{name}</th>" for name in _TABLE_COLUMNS)
    table = (
        # Separate borders: a sticky header cell of a collapsed table loses its background.
        f"<table style='{_TABLE};border-collapse:separate;border-spacing:0;width:max-content'>"
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )
    caption = html.escape(_counts_line(live))
    box = _TAIL_BOX.format(height="14em")
    return f"<div style='{_MUTED}'>{caption}</div><div style='{box}'>{table}</div>"


def _counts_line(live: LiveRun) -> str:
    states: dict[str, int] = {}
    for step in live.progress.steps:
        for state, count in step.ended.items():
            states[state] = states.get(state, 0) + count
    detail = ", ".join(f"{count} {state}" for state, count in states.items())
    text = f"Tasks: {live.ended_count} ended ({detail}), {len(live.running)} running"
    not_run = sum(step.not_run for step in live.progress.steps)
    if not_run:
        text += f", {not_run} not run"
    if live.ended_count > len(live.ended):
        text += f"; the last {len(live.ended)} are listed"
    return text


def _ended_row(task: TaskOutcome, run_dir: Path | None) -> str:
    colour = _COLOURS.get(task.state, "inherit")
    duration = "" if task.duration_s is None else f"{task.duration_s:.1f} s"
    log = ""
    if task.log_path is not None and run_dir is not None:
        log = _path_link(run_dir / task.log_path, "log")
    cells = [
        html.escape(task.step),
        str(task.task),
        html.escape(format_parameters(task.parameters)),
        f"<span style='color:{colour}'>{html.escape(task.state)}</span>",
        "" if task.exit_code is None else str(task.exit_code),
        duration,
        html.escape(task.worker or ""),
        log,
    ]
    title = html.escape(task.fail_message or "", quote=True)
    tds = "".join(f"<td style='{_CELL}'>{cell}</td>" for cell in cells)
    return f"<tr title='{title}'>{tds}</tr>"


def _path_link(path: Path, label: str | None = None) -> str:
    """A relative link when the path is under the kernel's directory (the notebook's, usually);
    the frontend resolves it against the notebook. Elsewhere only the path, as text."""
    relative = _relative(path)
    text = html.escape(label or (relative.as_posix() if relative else str(path)))
    if relative is None:
        return f"<code title='{html.escape(str(path), quote=True)}'>{text}</code>"
    href = html.escape(relative.as_posix(), quote=True)
    return f"<a href='{href}' target='_blank'><code>{text}</code></a>"


def _relative(path: Path) -> Path | None:
    try:
        relative = Path(os.path.relpath(path))
    except ValueError:  # another drive (Windows)
        return None
    return None if relative.parts[:1] == ("..",) else relative


def _clip(line: str) -> str:
    return line if len(line) <= _MAX_LINE_CHARS else line[: _MAX_LINE_CHARS - 1] + "\u2026"


def button_state(live: LiveRun) -> tuple[str, bool]:
    """The Cancel button's label and whether it is disabled."""
    if live.finished:
        return "Cancel", True
    if live.cancel is None:
        return "Cancel", False
    if live.cancel.force:
        return "Killing", True
    return "Kill now", False
