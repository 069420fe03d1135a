"""Where a run's time went: its tasks per worker as a Gantt chart in self-contained SVG.

One lane per worker, one bar per task coloured by its state; hovering a bar shows its step,
task, parameters and duration (an SVG ``<title>``). Plain SVG inside HTML, no script and no
package, so the chart renders in JupyterLab, survives saving and nbconvert, and has a text
form (``str``) for terminals and ``text/plain``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .outcomes import TaskOutcome

__all__ = ["STATE_COLOURS", "Timeline", "TimelineBar"]

STATE_COLOURS: Mapping[str, str] = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "timeout": "#8e24aa",
    "canceled": "#ef6c00",
    "not_run": "#9e9e9e",
}
# Successful bars of different steps in different greens, so steps tell apart.
_STEP_GREENS = ("#2e7d32", "#66bb6a", "#1b5e20", "#a5d6a7")
_TEXT_MARKS = {"success": "#", "failed": "X", "timeout": "T", "canceled": "~"}
_FONT = "font-family:var(--jp-ui-font-family,sans-serif);font-size:11px"
_CHAR_PX = 6.5  # about the width of one character at that size
_TEXT_WIDTH = 60


@dataclass(frozen=True)
class TimelineBar:
    """One task on one worker, in seconds from the start of the run."""

    worker: str
    step: str
    task: int
    state: str
    start_s: float
    end_s: float
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def describe(self) -> str:
        """``Render[3] Frame=4`` / ``success, 1.52 s on worker-1 (0.4 s to 1.9 s)``."""
        name = f"{self.step}[{self.task}]"
        if self.parameters:
            name += " " + " ".join(f"{k}={v}" for k, v in self.parameters.items())
        when = f"{_seconds(self.start_s)} to {_seconds(self.end_s)}"
        return f"{name}\n{self.state}, {_seconds(self.duration_s)} on {self.worker} ({when})"


@dataclass(frozen=True)
class Timeline:
    """The tasks of a run that started, a lane per worker."""

    job_name: str
    duration_s: float
    bars: tuple[TimelineBar, ...] = ()

    @classmethod
    def from_outcomes(
        cls,
        job_name: str,
        tasks: Sequence[TaskOutcome],
        started: datetime,
        ended: datetime | None = None,
    ) -> Timeline:
        """The bars of every task with a start and an end time; the others never ran."""
        bars = tuple(
            TimelineBar(
                worker=task.worker or "?",
                step=task.step,
                task=task.task,
                state=task.state,
                start_s=(task.started - started).total_seconds(),
                end_s=(task.ended - started).total_seconds(),
                parameters=dict(task.parameters),
            )
            for task in sorted(tasks, key=lambda t: (t.started or started, t.step, t.task))
            if task.started is not None and task.ended is not None
        )
        last = max((bar.end_s for bar in bars), default=0.0)
        total = (ended - started).total_seconds() if ended is not None else last
        return cls(job_name, max(total, last), bars)

    @property
    def workers(self) -> tuple[str, ...]:
        """The workers that ran a task, in natural order (worker-2 before worker-10)."""
        return tuple(sorted({bar.worker for bar in self.bars}, key=_natural))

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(bar.step for bar in self.bars))

    def busy_s(self, worker: str) -> float:
        """Seconds the worker spent running tasks."""
        return sum(bar.duration_s for bar in self.bars if bar.worker == worker)

    # ---- SVG ----------------------------------------------------------------------------

    def to_svg(self, width: int = 720, lane_height: int = 22, legend: bool = True) -> str:
        """The chart as one ``<svg>`` element, ``width`` pixels wide at most (it shrinks with
        its container)."""
        workers = self.workers
        label_w = int(max((len(w) for w in workers), default=4) * _CHAR_PX) + 12
        plot_w = max(width - label_w - 16, 40)
        top, axis_h = 4, 18
        height = top + lane_height * max(len(workers), 1) + axis_h + (16 if legend else 0)
        scale = plot_w / self.duration_s if self.duration_s > 0 else 0.0
        lanes = {worker: index for index, worker in enumerate(workers)}
        steps = {step: index for index, step in enumerate(self.steps)}
        parts = [
            f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
            f"width='100%' style='max-width:{width}px;{_FONT}' role='img'>",
            f"<title>{html.escape(self.summary())}</title>",
        ]
        for worker, index in lanes.items():
            y = top + index * lane_height
            band = "var(--jp-layout-color2,#f5f5f5)" if index % 2 == 0 else "none"
            parts.append(
                f"<rect x='{label_w}' y='{y}' width='{plot_w}' height='{lane_height}' "
                f"style='fill:{band}'/>"
                f"<text x='{label_w - 6}' y='{y + lane_height / 2 + 4}' text-anchor='end' "
                f"style='fill:var(--jp-ui-font-color1,#212121)'>{html.escape(worker)}</text>"
            )
        for bar in self.bars:
            y = top + lanes[bar.worker] * lane_height
            parts.append(self._bar_svg(bar, label_w, y, lane_height, scale, steps[bar.step]))
        axis_y = top + lane_height * max(len(workers), 1)
        parts.append(self._axis_svg(label_w, plot_w, axis_y, scale))
        if legend:
            parts.append(self._legend_svg(label_w, axis_y + axis_h + 10))
        parts.append("</svg>")
        return "".join(parts)

    def _bar_svg(
        self, bar: TimelineBar, x0: int, y: int, lane: int, scale: float, step_index: int
    ) -> str:
        x = x0 + bar.start_s * scale
        w = max(bar.duration_s * scale, 1.0)
        colour = STATE_COLOURS.get(bar.state, "#757575")
        if bar.state == "success":
            colour = _STEP_GREENS[step_index % len(_STEP_GREENS)]
        return (
            f"<rect class='openjd-task' x='{x:.1f}' y='{y + 3}' width='{w:.1f}' "
            f"height='{lane - 6}' rx='2' style='fill:{colour};stroke:#fff;stroke-width:0.5'>"
            f"<title>{html.escape(bar.describe())}</title></rect>"
        )

    def _axis_svg(self, x0: int, plot_w: int, y: int, scale: float) -> str:
        colour = "var(--jp-ui-font-color2,#757575)"
        parts = [f"<line x1='{x0}' y1='{y}' x2='{x0 + plot_w}' y2='{y}' style='stroke:{colour}'/>"]
        if scale > 0:
            for tick in _ticks(self.duration_s):
                x = x0 + tick * scale
                parts.append(
                    f"<line x1='{x:.1f}' y1='{y}' x2='{x:.1f}' y2='{y + 4}' "
                    f"style='stroke:{colour}'/><text x='{x:.1f}' y='{y + 15}' "
                    f"text-anchor='middle' style='fill:{colour}'>{_seconds(tick)}</text>"
                )
        return "".join(parts)

    def _legend_svg(self, x0: int, y: int) -> str:
        states = [s for s in STATE_COLOURS if any(bar.state == s for bar in self.bars)]
        parts, x = [], float(x0)
        for state in states:
            parts.append(
                f"<rect x='{x:.1f}' y='{y - 8}' width='10' height='10' rx='2' "
                f"style='fill:{STATE_COLOURS[state]}'/><text x='{x + 14:.1f}' y='{y + 1}' "
                f"style='fill:var(--jp-ui-font-color1,#212121)'>{state}</text>"
            )
            x += 24 + len(state) * _CHAR_PX
        return "".join(parts)

    # ---- displays -------------------------------------------------------------------------

    def summary(self) -> str:
        """``Render: 12 tasks on 2 workers in 3.4 s``."""
        tasks = len(self.bars)
        noun = "task" if tasks == 1 else "tasks"
        count = len(self.workers)
        on = f"{count} worker" if count == 1 else f"{count} workers"
        return f"{self.job_name}: {tasks} {noun} on {on} in {_seconds(self.duration_s)}"

    def _repr_html_(self) -> str:
        caption = html.escape(self.summary() + "; hover a bar for its task")
        return (
            f"<div class='openjd-timeline'><div style='color:#757575'>{caption}</div>"
            f"{self.to_svg()}</div>"
        )

    def __str__(self) -> str:
        """A text chart: a lane per worker, ``#`` success, ``X`` failed, ``T`` timeout,
        ``~`` canceled, and how busy each worker was."""
        lines = [self.summary()]
        width = max((len(w) for w in self.workers), default=0)
        for worker in self.workers:
            lane = self._text_lane(worker)
            busy = self.busy_s(worker)
            lines.append(f"{worker.ljust(width)} |{lane}| busy {_seconds(busy)}")
        return "\n".join(lines)

    def _text_lane(self, worker: str) -> str:
        cells = [" "] * _TEXT_WIDTH
        scale = _TEXT_WIDTH / self.duration_s if self.duration_s > 0 else 0.0
        for bar in self.bars:
            if bar.worker != worker:
                continue
            first = min(int(bar.start_s * scale), _TEXT_WIDTH - 1)
            last = max(first, min(math.ceil(bar.end_s * scale), _TEXT_WIDTH) - 1)
            for column in range(first, last + 1):
                cells[column] = _TEXT_MARKS.get(bar.state, "?")
        return "".join(cells)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def _natural(name: str) -> list[Any]:
    """``worker-10`` after ``worker-9``: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _ticks(duration_s: float, most: int = 8) -> list[float]:
    """Round tick positions (1, 2 or 5 times a power of ten seconds) from 0 to the end."""
    if duration_s <= 0:
        return [0.0]
    raw = duration_s / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    count = int(duration_s / step + 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]


def _seconds(value: float) -> str:
    """``0.25 s``, ``12 s``, ``2:05``."""
    if value >= 60:
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes}:{seconds:02d}"
    if value >= 10 or value == int(value):
        return f"{value:.0f} s"
    return f"{value:.2g} s" if value < 1 else f"{value:.1f} s"
