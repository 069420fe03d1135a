"""The live dashboard of one run in a Jupyter kernel, built from core ipywidgets only.

Layout, one ``VBox``::

    header   HTML         job name, state (with the cancel countdown), elapsed time, how to stop
    steps    GridBox      per step: IntProgress (done/total, red once a task failed) + HTML counts
    running  HTML         the running tasks with their openjd_progress and openjd_status
    log      HTML         the last lines of output in a box that stays scrolled to the bottom
    table    HTML         the last tasks that ended, the counts, and where the full logs are
    cancel   Button       only for ``--no-block`` runs, which the stop button cannot reach

Widget traffic is kept small on purpose (Jupyter servers drop iopub messages over about a
thousand a second): every widget shares one ``Layout`` and one style per kind, each redraw
writes only values that changed, at most every ``refresh_s``, and whole texts are replaced
rather than appended. One UI thread per run owns every widget write; ``handle`` only queues.
When the run ends the dashboard is replaced, through its ``display_id``, by a static HTML and
text summary, so a saved or nbconvert-executed notebook shows the result, not a frozen bar.
"""

from __future__ import annotations

import html
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ipywidgets
from IPython import display
from ipywidgets.widgets.widget_int import ProgressStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ..jobs import Event, JobResult, JobRun, RunEnded
from ..jobs.outcomes import TaskOutcome
from ..progress import (
    LiveRun,
    LogTail,
    RunningTask,
    StepProgress,
    bar_style,
    format_elapsed,
    format_parameters,
    format_state,
    format_step_counts,
)
from .views import ViewOptions, summary_bundle

__all__ = [
    "Dashboard",
    "button_state",
    "counts_html",
    "header_html",
    "log_html",
    "running_html",
    "table_html",
]

_BLOCKING_HINT = "&#9632; stop button = cancel, twice = kill"
_BUTTON_HINT = "Cancel button = cancel, twice = kill"
_ENDED_ROWS = 50
_MIN_REFRESH_S = 0.1  # 10 redraws a second at most, whatever the configuration says
_MAX_LINE_CHARS = 400
_MAX_DRAIN = 1000
_JOIN_TIMEOUT_S = 10.0
_COLOURS = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "timeout": "#c62828",
    "canceled": "#ef6c00",
    "not_run": "#757575",
}
_MUTED = "color:#757575"
# A scroll box that starts at its bottom, so the newest line or row is the one in view.
_TAIL_BOX = (
    "max-height:{height};overflow-y:auto;display:flex;flex-direction:column-reverse;"
    "border:1px solid #e0e0e0;border-radius:2px"
)


@dataclass(frozen=True)
class _CancelShown:
    force: bool
    grace_s: float | None
    time: datetime


@dataclass(frozen=True)
class _WorkersKnown:
    count: int


_Item = Event | _CancelShown | _WorkersKnown | None
"""What the UI thread's queue carries; None only wakes it."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Dashboard:
    """The live view of one run inside a kernel; implements ``views.RunView``."""

    def __init__(self, job_name: str, options: ViewOptions) -> None:
        self._options = options
        self._refresh_s = max(options.refresh_s, _MIN_REFRESH_S)
        self._hint = _BLOCKING_HINT if options.blocking else _BUTTON_HINT
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._live = LiveRun.create(job_name, options.log_tail_lines, _ENDED_ROWS)
        self._ended_result: JobResult | None = None
        self._run: JobRun | None = None
        self._clicks = 0
        self._stopping = threading.Event()
        self._finish_lock = threading.Lock()
        self._finished = False
        self.widgets = _Widgets(with_button=not options.blocking)
        if self.widgets.button is not None:
            self.widgets.button.on_click(self._cancel_clicked)
        self._render()  # before the UI thread starts, so this write is still the only one
        self._display = display.display(self.widgets.box, display_id=True)  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._ui_loop, name="openjd-dashboard", daemon=True)
        self._thread.start()

    # ---- RunView --------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        self._queue.put(event)

    def bind(self, run: JobRun) -> None:
        self._run = run
        self._queue.put(_WorkersKnown(run.options.workers))

    def show_cancel(self, *, force: bool, grace_s: float | None) -> None:
        self._queue.put(_CancelShown(force, grace_s, _now()))

    def finish(self, result: JobResult) -> None:
        """Stop the UI thread (after its last redraw), then replace the dashboard."""
        with self._finish_lock:
            if self._finished:
                return
            self._stop_ui_thread()
            self._replace(result)

    # ---- the UI thread ----------------------------------------------------------------------

    def _ui_loop(self) -> None:
        last_render = 0.0
        while not self._stopping.is_set() and self._ended_result is None:
            self._fold(self._take(self._refresh_s))
            now = time.monotonic()
            if now - last_render >= self._refresh_s:
                self._render()
                last_render = now
        # What arrived before the end or the stop still shows, so the widgets end up true.
        self._fold(self._take(None))
        self._render()
        if self._ended_result is not None and not self._options.blocking:
            self._finish_from_ui(self._ended_result)

    def _take(self, timeout: float | None) -> list[_Item]:
        """Wait up to ``timeout`` (None: not at all) for an item, then take what is queued."""
        items: list[_Item] = []
        try:
            if timeout is not None:
                items.append(self._queue.get(timeout=timeout))
            while len(items) < _MAX_DRAIN:
                items.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return items

    def _fold(self, items: Sequence[_Item]) -> None:
        live = self._live
        for item in items:
            if isinstance(item, _CancelShown):
                live = live.with_cancel(force=item.force, grace_s=item.grace_s, now=item.time)
            elif isinstance(item, _WorkersKnown):
                live = live.with_workers(item.count)
            elif item is not None:
                live = live.with_event(item)
                if isinstance(item, RunEnded):
                    self._ended_result = item.result
        self._live = live

    def _render(self) -> None:
        """Write every widget whose value changed; unchanged values send nothing."""
        live, now, widgets = self._live, _now(), self.widgets
        # Whole seconds of the run's clock: the elapsed time and countdown tick together.
        now = live.whole_second(now)
        if live.progress.steps and not widgets.bars:
            widgets.add_steps(live.progress.steps)
        widgets.header.value = header_html(live, now, self._hint)
        for step, (bar, counts) in zip(live.progress.steps, widgets.bars, strict=True):
            _set_bar(bar, step)
            counts.value = counts_html(step)
        widgets.running.value = running_html(live.running)
        widgets.log.value = log_html(live.log, live.run_dir)
        widgets.table.value = table_html(live)
        if widgets.button is not None:
            description, disabled = button_state(live)
            with widgets.button.hold_sync():
                widgets.button.description = description
                widgets.button.disabled = disabled

    # ---- the end ----------------------------------------------------------------------------

    def _stop_ui_thread(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(_JOIN_TIMEOUT_S)

    def _finish_from_ui(self, result: JobResult) -> None:
        # A thread already in finish() holds the lock and is joining this one: leave it to that.
        if not self._finish_lock.acquire(blocking=False):
            return
        try:
            if not self._finished:
                self._stopping.set()
                self._replace(result)
        finally:
            self._finish_lock.release()

    def _replace(self, result: JobResult) -> None:
        # No widget mimetype in the bundle and no close(): a saved notebook keeps this summary.
        self._finished = True
        bundle = summary_bundle(result)
        if self._display is not None:
            self._display.update(bundle, raw=True)
        else:
            display.display(bundle, raw=True)  # type: ignore[no-untyped-call]

    # ---- the Cancel button (its clicks arrive on the kernel's main thread) ------------------

    def _cancel_clicked(self, _button: Any) -> None:
        force = self._clicks > 0
        self._clicks += 1
        run = self._run
        if run is None:
            return
        run.cancel(force=force)
        self.show_cancel(force=force, grace_s=run.options.cancel_grace)


class _Widgets:
    """The dashboard's widgets. Once displayed, only the UI thread writes them."""

    def __init__(self, *, with_button: bool) -> None:
        # Each widget would otherwise open its own Layout and style model: one comm each.
        self._layout = ipywidgets.Layout()
        self._html_style = HTMLStyle()
        self.header = self._html()
        self.running = self._html()
        self.log = self._html()
        self.table = self._html()
        self.bars: list[tuple[Any, Any]] = []
        self.button: Any = None
        if with_button:
            self.button = ipywidgets.Button(
                description="Cancel", button_style="warning", layout=self._layout
            )
        self.box = ipywidgets.VBox(children=self._children(None), layout=self._layout)

    def add_steps(self, steps: Sequence[StepProgress]) -> None:
        """One bar and one counts label per step, in a grid so the bars line up."""
        longest = max(len(step.name) for step in steps)
        style = ProgressStyle(description_width=f"{longest + 2}ch")
        for step in steps:
            bar = ipywidgets.IntProgress(
                min=0, max=1, description=step.name, style=style, layout=self._layout
            )
            self.bars.append((bar, self._html()))
        grid = ipywidgets.GridBox(
            children=[widget for pair in self.bars for widget in pair],
            layout=ipywidgets.Layout(
                grid_template_columns="max-content auto", align_items="center"
            ),
        )
        self.box.children = self._children(grid)

    def _html(self) -> Any:
        return ipywidgets.HTML(layout=self._layout, style=self._html_style)

    def _children(self, grid: Any) -> tuple[Any, ...]:
        middle = (grid,) if grid is not None else ()
        tail = (self.button,) if self.button is not None else ()
        return (self.header, *middle, self.running, self.log, self.table, *tail)


def _set_bar(bar: Any, step: StepProgress) -> None:
    maximum = step.total if step.total else max(step.done + step.running, 1)
    with bar.hold_sync():
        bar.max = maximum  # before the value, which the widget clamps to max
        bar.value = min(step.done, maximum)
        bar.bar_style = bar_style(step)


# ---- HTML, from the model (pure; tests call these without a kernel) -------------------------


def header_html(live: LiveRun, now: datetime, hint: str = "") -> str:
    """Job name, state in colour, elapsed time, and how to stop it while it runs."""
    state = format_state(live, now)
    colour = _COLOURS.get(live.state, "#1565c0" if live.cancel is None else "#ef6c00")
    parts = [
        f"<b>{html.escape(live.job_name)}</b>",
        f"<span style='color:{colour};font-weight:bold'>{html.escape(state)}</span>",
        html.escape(format_elapsed(live.elapsed_s(now))),
    ]
    if hint and not live.finished:
        parts.append(f"<span style='{_MUTED}'>{hint}</span>")
    return " &middot; ".join(parts)


def counts_html(step: StepProgress) -> str:
    """``7/12, 2 failed, 1 running``, with the failures in red."""
    text = html.escape(format_step_counts(step, separator=", "))
    if step.failed:
        return f"<span style='color:{_COLOURS['failed']}'>{text}</span>"
    return text


def running_html(running: Sequence[RunningTask]) -> str:
    """A row per running task: where, which, its reported progress and status."""
    if not running:
        return ""
    rows = "".join(_running_row(task) for task in running)
    return f"<table style='font-size:90%'>{rows}</table>"


def _running_row(task: RunningTask) -> str:
    progress = ""
    if task.progress is not None:
        percent = min(max(task.progress, 0.0), 100.0)
        progress = f"<progress value='{percent:.0f}' max='100'></progress> {percent:.0f}%"
    cells = [
        html.escape(task.worker),
        html.escape(f"{task.step}[{task.task}]"),
        html.escape(format_parameters(task.parameters)),
        progress,
        html.escape(task.status_message or ""),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def log_html(tail: LogTail, run_dir: Path | None) -> str:
    """The last lines of output, newest in view, with a caption saying where the rest is."""
    if not tail.lines:
        return ""
    lines = "\n".join(_clip(line) for line in tail.lines)
    count = len(tail.lines)
    caption = f"Output (last {count} of {tail.total} lines)" if tail.total > count else "Output"
    if run_dir is not None:
        caption += f"; full logs in {_path_link(run_dir)}"
    box = _TAIL_BOX.format(height="18em")
    # flex-shrink/overflow: Lab's CSS would make the <pre> scroll itself, from the top.
    pre_style = "margin:0;padding:4px;font-size:85%;flex-shrink:0;overflow:visible"
    pre = f"<pre style='{pre_style}'>{html.escape(lines)}</pre>"
    return f"<div style='{_MUTED}'>{caption}</div><div style='{box}'>{pre}</div>"


def table_html(live: LiveRun) -> str:
    """The tasks that ended (the last 50, newest in view) under a line of counts."""
    if not live.ended:
        return ""
    rows = "".join(_ended_row(task, live.run_dir) for task in live.ended)
    head = "".join(
        f"<th>{name}</th>"
        for name in ("step", "task", "parameters", "state", "exit", "time", "worker", "log")
    )
    table = f"<table style='font-size:90%'><thead><tr>{head}</tr></thead>{rows}</table>"
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
    return f"<tr title='{title}'>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


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
