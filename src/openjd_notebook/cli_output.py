"""What ``openjd-notebook run`` prints: live progress for people, one JSON or YAML document for
programs.

The text comes from pure functions (a run's progress as a frozen value, and formatters from that
value to lines) that tests call directly. The reporters only decide when and where to write it:
on a terminal a block of progress bars stays under the output and is redrawn at most ten times a
second; elsewhere (pipes, CI logs, ``TERM=dumb``, ``NO_COLOR``) each finished task prints one
plain progress line instead, with no escape codes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from .cli_text import dump_document
from .jobs.events import (
    Event,
    LogLines,
    ManifestProgress,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskStarted,
)
from .jobs.manifests import entries_json
from .jobs.outcome_json import environment_json, task_json
from .jobs.outcomes import TaskOutcome
from .progress import (
    RunProgress,
    StepProgress,
    action_output,
    format_bar,
    format_hashing,
    format_progress,
    format_step_line,
    format_task_problem,
)

if TYPE_CHECKING:
    from .jobs.results import JobResult

__all__ = [
    "DocumentReporter",
    "HumanReporter",
    "Reporter",
    "RunProgress",
    "StepProgress",
    "action_output",
    "format_bar",
    "format_progress",
    "format_step_line",
    "live_output_wanted",
    "result_document",
    "timestamp_prefix",
    "working_directory",
]

_REDRAW_INTERVAL_S = 0.1
_WORKDIR_LINE = re.compile(r"^Session Working Directory: (?P<path>.+)$")
# Cursor to the start of the line N lines up, then clear to the end of the screen.
_ERASE_LINES = "\x1b[{count}F\x1b[J"


# ---- small parsers ------------------------------------------------------------------------


def working_directory(line: str) -> str | None:
    """The session working directory a session's start-up line names, if it is that line."""
    match = _WORKDIR_LINE.match(line)
    return match.group("path") if match else None


def timestamp_prefix(moment: datetime, started: datetime, timestamp_format: str) -> str:
    """The time in front of an output line, as ``openjd run --timestamp-format`` writes it:
    ``relative`` (since the run started), ``local`` or ``utc``; then a tab."""
    if timestamp_format == "relative":
        return f"{moment - started}\t"
    if timestamp_format == "local":
        return f"{moment.astimezone().isoformat()}\t"
    return f"{moment.astimezone(timezone.utc).isoformat()}\t"


def live_output_wanted(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Whether progress bars may be redrawn in place: a terminal that understands the escape
    codes, and nobody asked for plain output (``TERM=dumb``, ``NO_COLOR``)."""
    if environ.get("TERM") == "dumb" or environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def result_document(result: JobResult, working_directories: Sequence[str] = ()) -> dict[str, Any]:
    """The ``--output json``/``yaml`` document: status and message (as ``openjd run`` names
    them), state, counts, record directory, error, every task that ran (the rows run.json holds),
    and per step how many did not (``not_run``; counted in ``counts`` too), and the input and
    output manifests."""
    return {
        "status": "success" if result.ok else "error",
        "message": result.summary_text().partition("\n")[0],
        "state": result.state,
        "job_name": result.job_name,
        "duration_s": result.duration_s,
        "counts": result.state_counts(),
        "not_run": result.not_run,
        "run_dir": str(result.run_dir) if result.run_dir is not None else None,
        "error": result.error,
        "working_directories": list(working_directories),
        "tasks": [task_json(task) for task in result.task_outcomes],
        "environments": [environment_json(env) for env in result.environment_outcomes],
        # The manifests as run.json holds them (one converter: manifests.entries_json).
        "inputs": entries_json(result.input_entries),
        "outputs": entries_json(result.output_entries),
    }


def final_summary(result: JobResult, working_directories: Sequence[str] = ()) -> str:
    """The text printed after a run: the result's summary, the record and kept directories."""
    lines = [result.summary_text()]
    if result.run_dir is not None:
        lines.append(f"Record: {result.run_dir}")
    lines.extend(f"Working directory preserved at: {path}" for path in working_directories)
    return "\n".join(lines)


# ---- reporters ----------------------------------------------------------------------------


class Reporter:
    """Receives a run's events (on the run's event thread) and notices (from the main thread)."""

    def __init__(self, stream: IO[str], *, keep_workdir: bool = False) -> None:
        self._lock = threading.Lock()
        self._stream = stream
        self._stream_closed = False
        self._keep_workdir = keep_workdir
        self._working_directories: list[str] = []

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, LogLines) and self._keep_workdir and event.step is None:
                self._remember_working_directories(event.lines)
            self._handle(event)

    def notice(self, text: str) -> None:
        """A message from the command itself, such as a cancel request."""
        raise NotImplementedError

    def finish(self, result: JobResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop anything the reporter started; safe to call twice."""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _handle(self, event: Event) -> None:
        """Called with the lock held."""

    def _write(self, text: str) -> None:
        """Write and flush; once the reader has gone (``| head``), stay quiet; the run goes on."""
        if self._stream_closed or not text:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            self._stream_closed = True
            _silence(self._stream)

    def _remember_working_directories(self, lines: Iterable[str]) -> None:
        for line in lines:
            path = working_directory(line)
            if path is not None:
                self._working_directories.append(path)


class DocumentReporter(Reporter):
    """Silent while the run goes; prints one JSON or YAML document at the end."""

    def __init__(self, stream: IO[str], output_format: str, *, keep_workdir: bool = False) -> None:
        super().__init__(stream, keep_workdir=keep_workdir)
        self._format = output_format

    def notice(self, text: str) -> None:
        # stdout carries only the document.
        print(text, file=sys.stderr, flush=True)

    def finish(self, result: JobResult) -> None:
        with self._lock:
            document = result_document(result, self._working_directories)
        self._write(dump_document(document, self._format))


class HumanReporter(Reporter):
    """Action output as it arrives, and step progress: live bars on a terminal, lines elsewhere."""

    def __init__(
        self,
        stream: IO[str],
        *,
        workers: int = 1,
        verbose: bool = False,
        live: bool | None = None,
        keep_workdir: bool = False,
        timestamps: str | None = None,
    ) -> None:
        super().__init__(stream, keep_workdir=keep_workdir)
        self._prefix_worker = workers > 1
        self._verbose = verbose
        self._live = live_output_wanted(stream, os.environ) if live is None else live
        self._timestamps = timestamps
        self._started = datetime.now(timezone.utc)
        self._progress = RunProgress()
        self._in_output: dict[str, bool] = {}
        self._drawn = 0  # lines of the bar block currently on screen
        self._dirty = False
        self._last_draw = 0.0
        self._last_hashing = 0.0
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None
        if self._live:
            self._ticker = threading.Thread(target=self._tick, name="openjd-cli-redraw")
            self._ticker.daemon = True
            self._ticker.start()

    def notice(self, text: str) -> None:
        with self._lock:
            self._write_lines([text])

    def finish(self, result: JobResult) -> None:
        self.close()
        with self._lock:
            text = self._erase()
            if self._live:
                text += _lines_text(self._bar_lines())
            summary = final_summary(result, self._working_directories)
            self._write(f"{text}\n{summary}\n")

    def close(self) -> None:
        self._stopped.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join()

    # ---- events, with the lock held -------------------------------------------------------

    def _handle(self, event: Event) -> None:
        self._progress = self._progress.with_event(event)
        if isinstance(event, RunStarted):
            self._write_lines([_run_banner(event)])
        elif isinstance(event, LogLines):
            self._write_lines(self._shown_lines(event))
        elif isinstance(event, TaskEnded):
            self._task_ended(event.outcome)
        elif isinstance(event, TaskStarted):
            self._dirty = True
        elif isinstance(event, ManifestProgress):
            self._hashing(event)
        elif isinstance(event, RunEnded) and not self._live:
            # Without live bars, the steps that left tasks unrun say so once more, counted.
            width = max((len(s.name) for s in self._progress.steps), default=0)
            steps = [s for s in self._progress.steps if s.not_run]
            self._write_lines([format_step_line(step, width) for step in steps])

    def _hashing(self, event: ManifestProgress) -> None:
        """A large manifest's progress: a line a second, and one when it is done."""
        text = format_hashing(event)
        now = time.monotonic()
        if text is None or (not event.done and now - self._last_hashing < 1.0):
            return
        self._last_hashing = now
        self._write_lines([text + (" (done)" if event.done else "")])

    def _task_ended(self, outcome: TaskOutcome) -> None:
        lines = [] if outcome.state == "success" else [format_task_problem(outcome)]
        if not self._live:
            step = self._progress.step(outcome.step)
            width = max(len(s.name) for s in self._progress.steps)
            lines.append(format_step_line(step, width) if step else outcome.step)
        self._dirty = True
        self._write_lines(lines)

    def _shown_lines(self, event: LogLines) -> list[str]:
        if self._verbose:
            lines = list(event.lines)
        else:
            # A failing action's exit line stays: it names the code, right before the failure.
            lines, self._in_output[event.worker] = action_output(
                event.lines, self._in_output.get(event.worker, False), failed_exits=True
            )
        if self._prefix_worker:
            lines = [f"[{event.worker}] {line}" for line in lines]
        if self._timestamps is not None and lines:
            now = datetime.now(timezone.utc)
            prefix = timestamp_prefix(now, self._started, self._timestamps)
            lines = [prefix + line for line in lines]
        return lines

    # ---- drawing, with the lock held ------------------------------------------------------

    def _write_lines(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        text = self._erase() + _lines_text(lines)
        self._dirty = True
        if self._live and time.monotonic() - self._last_draw >= _REDRAW_INTERVAL_S:
            text += self._draw()
        self._write(text)

    def _erase(self) -> str:
        """The escape codes that remove the bar block (the caller writes them)."""
        if not self._drawn:
            return ""
        count, self._drawn, self._dirty = self._drawn, 0, True
        return _ERASE_LINES.format(count=count)

    def _draw(self) -> str:
        """The text that replaces the bar block with the current progress."""
        lines = self._bar_lines()
        text = self._erase() + _lines_text(lines)
        self._drawn, self._dirty, self._last_draw = len(lines), False, time.monotonic()
        return text

    def _bar_lines(self) -> list[str]:
        return format_progress(self._progress, shutil.get_terminal_size().columns)

    def _tick(self) -> None:
        while not self._stopped.wait(_REDRAW_INTERVAL_S):
            with self._lock:
                if self._dirty:
                    self._write(self._draw())


def _run_banner(event: RunStarted) -> str:
    planned = [n for n in event.task_counts.values()]
    tasks = "?" if None in planned else str(sum(n for n in planned if n is not None))
    where = f", record {event.run_dir}" if event.run_dir is not None else ""
    return f"Running job {event.job_name!r}: {len(event.steps)} step(s), {tasks} task(s){where}"


def _lines_text(lines: Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _silence(stream: IO[str]) -> None:
    # Point the descriptor at /dev/null, so the flush at interpreter exit cannot fail again.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
