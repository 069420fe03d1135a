"""The text view of a run, for terminal IPython and plain Python: lines, no widgets.

Prints what the actions printed (prefixed ``[worker-N]`` when several workers run), a progress
line per step with percent, rate and time left as tqdm has them, as its tasks end (at most one
a second per step, always for a problem or the step's last task), the interrupt feedback, and
finally the run's summary. Plain lines only: a
terminal IPython prompt does not mix well with cursor movement.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TextIO

from ..jobs import Event, JobResult, JobRun, LogLines, RunEnded, RunStarted, TaskEnded
from ..jobs.outcomes import TaskOutcome
from ..progress import (
    LiveRun,
    StepProgress,
    action_output,
    format_header,
    format_step_line,
    format_task_problem,
)
from .views import ViewOptions

__all__ = ["ConsoleView"]

_HINT = "Ctrl-C = cancel, twice = kill"
_STEP_LINE_INTERVAL_S = 1.0


class ConsoleView:
    """Writes a run's output and progress as plain lines; see the module docstring."""

    def __init__(
        self,
        job_name: str,
        options: ViewOptions,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._stream = stream if stream is not None else sys.stdout
        self._clock = clock
        # The event thread writes output; the main thread writes cancel notices and the summary.
        self._lock = threading.Lock()
        self._live = LiveRun.create(job_name, log_tail_lines=0, ended_limit=0)
        self._in_output: dict[str, bool] = {}
        self._step_printed: dict[str, float] = {}
        self._finished = False

    def handle(self, event: Event) -> None:
        with self._lock:
            self._live = self._live.with_event(event)
            self._write(self._lines_for(event))
        if isinstance(event, RunEnded) and not self._options.blocking:
            self.finish(event.result)

    def bind(self, run: JobRun) -> None:
        with self._lock:
            self._live = self._live.with_workers(run.options.workers)

    def show_cancel(self, *, force: bool, grace_s: float | None) -> None:
        now = datetime.now(timezone.utc)
        with self._lock:
            self._live = self._live.with_cancel(force=force, grace_s=grace_s, now=now)
            cancel = self._live.cancel
            if cancel is not None and not self._finished:
                again = "" if cancel.force else " (interrupt again to kill)"
                self._write([format_header(self._live, now) + again])

    def finish(self, result: JobResult) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._write([result.summary_text()])

    # ---- lines, with the lock held ----------------------------------------------------------

    def _lines_for(self, event: Event) -> list[str]:
        if isinstance(event, RunStarted):
            return [self._banner(event)]
        if isinstance(event, LogLines):
            return self._output(event)
        if isinstance(event, TaskEnded):
            return self._task_ended(event.outcome)
        return []

    def _banner(self, event: RunStarted) -> str:
        planned = list(event.task_counts.values())
        tasks = "?" if None in planned else str(sum(n or 0 for n in planned))
        text = f"Running {event.job_name!r}: {len(event.steps)} step(s), {tasks} task(s)"
        if event.run_dir is not None:
            text += f", record {event.run_dir}"
        return text + (f" ({_HINT})" if self._options.blocking else "")

    def _output(self, event: LogLines) -> list[str]:
        shown, self._in_output[event.worker] = action_output(
            event.lines, self._in_output.get(event.worker, False)
        )
        if self._live.prefix_workers:
            return [f"[{event.worker}] {line}" for line in shown]
        return shown

    def _task_ended(self, outcome: TaskOutcome) -> list[str]:
        lines = [] if outcome.state == "success" else [format_task_problem(outcome)]
        step = self._live.progress.step(outcome.step)
        if step is not None and (lines or self._step_line_due(step)):
            width = max(len(s.name) for s in self._live.progress.steps)
            lines.append(format_step_line(step, width, now=datetime.now(timezone.utc)))
            self._step_printed[step.name] = self._clock()
        return lines

    def _step_line_due(self, step: StepProgress) -> bool:
        if step.total is not None and step.done >= step.total:
            return True
        last = self._step_printed.get(step.name)
        return last is None or self._clock() - last >= _STEP_LINE_INTERVAL_S

    def _write(self, lines: list[str]) -> None:
        if lines:
            self._stream.write("".join(f"{line}\n" for line in lines))
            self._stream.flush()
