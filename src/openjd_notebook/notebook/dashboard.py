"""The live dashboard of one run in a Jupyter kernel, built from core ipywidgets only.

Layout, one ``VBox``::

    header   HTML         job name, state (with the cancel countdown), elapsed time, how to stop
    steps    GridBox      per step: IntProgress (red once a task failed) + HTML counts, percent,
                          rate and time left, as tqdm shows them
    running  HTML         a labelled row per running task: its openjd_progress and openjd_status
    log      HTML         the last lines of output in a box that stays scrolled to the bottom;
                          progress and status reports dimmed (or left out)
    table    HTML         the last tasks that ended under a header that stays in view, the
                          counts, and where the full logs are
    cancel   Button       only for ``--no-block`` runs, which the stop button cannot reach

Widget traffic is kept small on purpose (Jupyter servers drop iopub messages over about a
thousand a second): every widget shares one ``Layout`` and one style per kind, each redraw
writes only values that changed, at most every ``refresh_s``, and whole texts are replaced
rather than appended. One UI thread per run owns every widget write; ``handle`` only queues.
When the run ends the dashboard is replaced, through its ``display_id``, by a static HTML and
text summary, so a saved or nbconvert-executed notebook shows the result, not a frozen bar;
then its widgets are closed, so no widget state is left to be saved with the notebook.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import ipywidgets
from IPython import display
from ipywidgets.widgets.widget_int import ProgressStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ..jobs import Event, JobResult, JobRun, RunEnded
from ..progress import LiveRun, StepProgress, bar_style
from .live_html import (
    button_state,
    counts_html,
    header_html,
    log_html,
    running_html,
    table_html,
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
# While a graceful cancel counts down, the one thing left to say is how to kill now.
_BLOCKING_CANCEL_HINT = "press &#9632; again to kill now"
_BUTTON_CANCEL_HINT = "click Kill now to kill at once"
_ENDED_ROWS = 50
_MIN_REFRESH_S = 0.1  # 10 redraws a second at most, whatever the configuration says
_MAX_DRAIN = 1000
_JOIN_TIMEOUT_S = 10.0


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
        self._cancel_hint = _BLOCKING_CANCEL_HINT if options.blocking else _BUTTON_CANCEL_HINT
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._live = LiveRun.create(
            job_name,
            options.log_tail_lines,
            _ENDED_ROWS,
            hide_protocol_lines=options.hide_protocol_lines,
        )
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
        widgets.header.value = header_html(live, now, self._hint, self._cancel_hint)
        for step, (bar, counts) in zip(live.progress.steps, widgets.bars, strict=True):
            _set_bar(bar, step)
            counts.value = counts_html(step, now)
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
        # No widget mimetype in the bundle: a saved notebook keeps this summary. The widgets
        # close only after it replaced their view, so the output never shows a closed widget.
        self._finished = True
        bundle = summary_bundle(result)
        if self._display is not None:
            self._display.update(bundle, raw=True)
        else:
            display.display(bundle, raw=True)  # type: ignore[no-untyped-call]
        self.widgets.close()

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
        self._styles: list[Any] = []  # the per-step bar style and the grid's layout
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
        self._grid: Any = None

    def close(self) -> None:
        """Close every widget model (layouts and styles too): nothing is left in the kernel
        or in the frontend's widget state to be saved with the notebook."""
        owned = [self.box, self._grid, self.header, self.running, self.log, self.table]
        owned += [widget for pair in self.bars for widget in pair]
        owned += [self.button, self._layout, self._html_style, *self._styles]
        for widget in owned:
            if widget is not None:
                widget.close()

    def add_steps(self, steps: Sequence[StepProgress]) -> None:
        """One bar and one counts label per step, in a grid so the bars line up."""
        longest = max(len(step.name) for step in steps)
        style = ProgressStyle(description_width=f"{longest + 2}ch")
        self._styles.append(style)
        for step in steps:
            bar = ipywidgets.IntProgress(
                min=0, max=1, description=step.name, style=style, layout=self._layout
            )
            self.bars.append((bar, self._html()))
        grid_layout = ipywidgets.Layout(
            grid_template_columns="max-content auto", align_items="center"
        )
        self._styles.append(grid_layout)
        self._grid = ipywidgets.GridBox(
            children=[widget for pair in self.bars for widget in pair], layout=grid_layout
        )
        self.box.children = self._children(self._grid)

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
