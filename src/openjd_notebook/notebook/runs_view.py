"""What ``%openjd_runs`` shows: the newest run records, readable at a glance.

Times to the second, durations rounded, canceled tasks apart from failed ones, the record
relative to the notebook and the template's digest cut short (the whole digest on hover).
The data stays at hand: ``.frame`` is the ``runs()`` DataFrame of those rows plus ``canceled``.
"""

from __future__ import annotations

import contextlib
import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..jobs import load_run
from ..jobs.result_display import format_duration, path_link, record_location
from ..jobs.tables import Table
from ..jobs.timeline import STATE_COLOURS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunListing", "list_runs"]

_COLUMNS = (
    "run_id",
    "job_name",
    "state",
    "started",
    "duration",
    "tasks",
    "succeeded",
    "failed",
    "canceled",
    "not_run",
    "template",
    "record",
)
_DIGEST_CHARS = 12
_CELL = "padding:1px 0.8em 1px 0;text-align:left;white-space:nowrap"


def list_runs(frame: pd.DataFrame) -> RunListing:
    """``frame`` (rows of ``runs()``) with a ``canceled`` column; ``failed`` then counts only
    the failed and timed out tasks."""
    frame = frame.reset_index(drop=True).copy()
    if "canceled" in frame.columns:  # runs() counts them itself
        return RunListing(frame)
    canceled = [_canceled(Path(path)) for path in frame["path"]]
    frame.insert(frame.columns.get_loc("failed") + 1, "canceled", canceled)
    frame["failed"] = frame["failed"] - frame["canceled"]
    return RunListing(frame)


def _canceled(run_dir: Path) -> int:
    with contextlib.suppress(Exception):  # runs() already warned about a broken record
        return load_run(run_dir).state_counts().get("canceled", 0)
    return 0


@dataclass(frozen=True)
class RunListing:
    """The listing ``%openjd_runs`` returns; ``len``, ``[column]`` and ``.frame`` reach the data."""

    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, key: Any) -> Any:
        return self.frame[key]

    def table(self, base: Path | None = None) -> Table:
        """The rows as shown: formatted times and durations, short digests."""
        rows = tuple(
            (
                row.run_id,
                row.job_name,
                row.state,
                _time(row.started),
                _duration(row.duration_s),
                row.tasks,
                row.succeeded,
                row.failed,
                row.canceled,
                row.not_run,
                (row.template_digest or "")[:_DIGEST_CHARS],
                record_location(Path(row.path), base),
            )
            for row in self.frame.itertuples(index=False)
        )
        return Table(_COLUMNS, rows)

    def __str__(self) -> str:
        if self.frame.empty:
            return "No run records yet."
        return self.table(Path.cwd()).to_text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        if self.frame.empty:
            return "<p>No run records yet.</p>"
        base = Path.cwd()
        head = "".join(f"<th style='{_CELL}'>{name.replace('_', ' ')}</th>" for name in _COLUMNS)
        body = "".join(
            self._row_html(shown, full, base)
            for shown, full in zip(
                self.table(base).rows, self.frame.itertuples(index=False), strict=True
            )
        )
        return (
            "<table class='openjd-runs' style='border-collapse:collapse'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    @staticmethod
    def _row_html(shown: tuple[Any, ...], full: Any, base: Path) -> str:
        cells = []
        for name, value in zip(_COLUMNS, shown, strict=True):
            text = html.escape("" if value is None else str(value))
            title = ""
            if name == "state":
                colour = STATE_COLOURS.get(str(value), "inherit")
                text = f"<span style='color:{colour}'>{text}</span>"
            elif name == "template" and full.template_digest:
                title = f" title='{html.escape(str(full.template_digest), quote=True)}'"
                text = f"<code>{text}</code>"
            elif name == "record":
                text = path_link(Path(full.path), base)
            elif name in ("canceled", "failed") and value:
                colour = STATE_COLOURS[name]
                text = f"<span style='color:{colour}'>{text}</span>"
            cells.append(f"<td style='{_CELL}'{title}>{text}</td>")
        return f"<tr>{''.join(cells)}</tr>"


def _time(value: Any) -> str:
    """``2026-01-02 12:00:01``, in the local time zone; blank when unknown."""
    if value is None or value != value:  # None or NaT
        return ""
    with contextlib.suppress(AttributeError, ValueError):
        return str(value.to_pydatetime().astimezone().strftime("%Y-%m-%d %H:%M:%S"))
    return str(value)


def _duration(value: Any) -> str:
    if value is None or value != value:  # None or NaN: still running, or died
        return ""
    return format_duration(float(value))
