"""How a run shows itself in IPython: the interface the magics call, and the choice of frontend.

Inside a Jupyter kernel with ipywidgets the view is a live dashboard; anywhere else (terminal
IPython, plain Python) it prints text. Both get the run's events through ``handle`` on the
run's event thread and end with the same static summary built from the ``JobResult``.

A headless executor (nbclient, so papermill and ``nbconvert --execute`` too) gets only the
summary: nobody watches its cells live, and it would save every widget model it ever saw
into the notebook, closed or not. It tells itself apart by refusing ``input()``: its execute
requests carry ``allow_stdin: false``, an interactive frontend's carry true.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..jobs import Event, JobResult, JobRun, RunEnded

__all__ = [
    "RunView",
    "SummaryView",
    "ViewOptions",
    "headless",
    "in_kernel",
    "make_view",
    "summary_bundle",
]


@dataclass(frozen=True)
class ViewOptions:
    refresh_s: float = 0.25
    """Seconds between redraws of the live view (the elapsed time redraws once a second)."""
    log_tail_lines: int = 200
    quiet: bool = False
    """No live output, only the final summary (``--quiet``)."""
    blocking: bool = True
    """False for ``--no-block``: the view offers a Cancel button and finishes itself."""
    hide_protocol_lines: bool = False
    """Leave ``openjd_progress:``/``openjd_status:`` lines out of the log tail (else dimmed)."""


class RunView(Protocol):
    def handle(self, event: Event) -> None:
        """Called on the run's event thread; never blocks."""

    def bind(self, run: JobRun) -> None:
        """Called once ``start_job`` returned (Cancel button, worker count)."""

    def show_cancel(self, *, force: bool, grace_s: float | None) -> None:
        """Interrupt feedback: canceling with a countdown, or killing."""

    def finish(self, result: JobResult) -> None:
        """Show the final summary; idempotent and safe from any thread."""


def summary_bundle(result: JobResult) -> dict[str, str]:
    """The static display of a finished run: HTML and plain text, and no widget. The record
    is shown relative to the kernel's directory (the notebook's), never as a home path."""
    here = Path.cwd()
    return {"text/html": result.summary_html(here), "text/plain": result.summary_text(here)}


def in_kernel() -> bool:
    """True inside a Jupyter kernel where ipywidgets can be imported."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    if getattr(get_ipython(), "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def headless() -> bool:
    """True when the cell running now was sent by a frontend that cannot take ``input()``:
    an executor such as nbclient, with nobody watching the cell live."""
    from IPython import get_ipython

    kernel = getattr(get_ipython(), "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return False
    try:
        request = get_parent()
    except Exception:  # an ipykernel without per-channel parents: assume someone watches
        return False
    content = request.get("content", {}) if isinstance(request, dict) else {}
    return content.get("allow_stdin", True) is False


def make_view(job_name: str, options: ViewOptions) -> RunView:
    """The dashboard inside a kernel, else the console view; only a summary when quiet or
    when nobody watches the cell (``headless``)."""
    kernel = in_kernel()
    if options.quiet or (kernel and headless()):
        return SummaryView(job_name, options, rich=kernel)
    if kernel:
        from .dashboard import Dashboard

        return Dashboard(job_name, options)
    from .console import ConsoleView

    return ConsoleView(job_name, options)


class SummaryView:
    """``--quiet``: nothing while the run goes, then the summary.

    In a kernel a one-line placeholder is displayed at once and replaced by the summary through
    its ``display_id``, so the summary lands in the cell that started the run even when the run
    ends after that cell (``--no-block``).
    """

    def __init__(self, job_name: str, options: ViewOptions, *, rich: bool) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._finished = False
        self._handle: Any = None  # IPython's DisplayHandle
        if rich:
            from IPython import display

            placeholder = {"text/plain": f"{job_name}: running"}
            self._handle = display.display(  # type: ignore[no-untyped-call]
                placeholder, raw=True, display_id=True
            )

    def handle(self, event: Event) -> None:
        if isinstance(event, RunEnded) and not self._options.blocking:
            self.finish(event.result)

    def bind(self, run: JobRun) -> None:
        pass

    def show_cancel(self, *, force: bool, grace_s: float | None) -> None:
        pass

    def finish(self, result: JobResult) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self._handle is not None:
                self._handle.update(summary_bundle(result), raw=True)
            else:
                print(result.summary_text(), flush=True)
