"""What changed between two runs: template, parameters, options, tasks and outputs.

Both runs are read from their records (a record folder, its run.json, or a ``JobResult`` that
has one). Tasks are matched by step and task parameters, not by index, so a run with a
different selection still lines up; outputs are matched by parameter and path and compared by
their SHA-256.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import JobsError
from .manifests import ManifestEntry
from .records import RUN_FILE, _read_run_json, _run_file, load_run
from .results import JobResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ComparisonError",
    "OutputChange",
    "RunComparison",
    "RunReference",
    "Verification",
    "compare_runs",
    "record_dir",
    "verify_outputs",
]

RunReference = str | Path | JobResult
OutputState = Literal["identical", "different", "new", "missing", "unknown"]


@dataclass(frozen=True)
class OutputChange:
    parameter: str
    path: str
    state: OutputState
    """identical, different, new (only in B), missing (only in A), unknown (not hashed)."""
    sha256_a: str | None
    sha256_b: str | None
    size_a: int | None
    size_b: int | None


@dataclass(frozen=True)
class Verification:
    """How a rerun's outputs compare with the record it reran."""

    outputs: tuple[OutputChange, ...]

    @property
    def identical(self) -> int:
        return sum(change.state == "identical" for change in self.outputs)

    @property
    def ok(self) -> bool:
        """Every output the record had is there again, with the same content."""
        return bool(self.outputs) and all(c.state == "identical" for c in self.outputs)

    def differing(self) -> list[OutputChange]:
        return [change for change in self.outputs if change.state != "identical"]

    def summary(self) -> str:
        """``reproduced: 24/24 outputs identical``, or what differs."""
        total = len(self.outputs)
        if total == 0:
            return "not verified: the record lists no outputs (no OUT or INOUT PATH parameter)"
        if self.ok:
            return f"reproduced: {total}/{total} outputs identical"
        listed = ", ".join(
            f"{change.parameter}:{change.path} ({change.state})" for change in self.differing()[:5]
        )
        more = len(self.differing()) - 5
        tail = f" and {more} more" if more > 0 else ""
        return (
            f"not reproduced: {self.identical}/{total} outputs identical; differing: {listed}{tail}"
        )

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class RunComparison:
    """Two runs side by side; each table is a DataFrame, ``_repr_html_`` shows them all."""

    a: Path
    b: Path
    template_changed: bool
    template_diff: str
    """A unified diff of the template texts ("" when they are the same)."""
    parameter_changes: tuple[tuple[str, Any, Any], ...]
    option_changes: tuple[tuple[str, Any, Any], ...]
    task_changes: tuple[tuple[Any, ...], ...]
    task_columns: tuple[str, ...]
    output_changes: tuple[OutputChange, ...] = field(default=())

    @property
    def parameters(self) -> pd.DataFrame:
        return _frame(["parameter", "a", "b"], self.parameter_changes)

    @property
    def options(self) -> pd.DataFrame:
        return _frame(["option", "a", "b"], self.option_changes)

    @property
    def tasks(self) -> pd.DataFrame:
        """One row per task of either run: states, durations and the duration change."""
        return _frame(list(self.task_columns), self.task_changes)

    @property
    def outputs(self) -> pd.DataFrame:
        columns = ["parameter", "path", "state", "sha256_a", "sha256_b", "size_a", "size_b"]
        rows = [
            (c.parameter, c.path, c.state, c.sha256_a, c.sha256_b, c.size_a, c.size_b)
            for c in self.output_changes
        ]
        return _frame(columns, rows)

    def changed_outputs(self) -> pd.DataFrame:
        frame = self.outputs
        return frame[frame["state"] != "identical"].reset_index(drop=True)

    @property
    def same_outputs(self) -> bool:
        return bool(self.output_changes) and all(
            change.state == "identical" for change in self.output_changes
        )

    def summary(self) -> str:
        states = [change.state for change in self.output_changes]
        counts = ", ".join(
            f"{states.count(s)} {s}"
            for s in ("identical", "different", "new", "missing", "unknown")
            if states.count(s)
        )
        changed_tasks = sum(1 for row in self.task_changes if row[-3] != row[-2])
        lines = [
            f"A: {self.a}",
            f"B: {self.b}",
            "template: " + ("changed" if self.template_changed else "same"),
            f"parameters: {len(self.parameter_changes)} changed"
            + "".join(f"\n  {name}: {a!r} -> {b!r}" for name, a, b in self.parameter_changes),
            f"options: {len(self.option_changes)} changed"
            + "".join(f"\n  {name}: {a!r} -> {b!r}" for name, a, b in self.option_changes),
            f"tasks: {len(self.task_changes)} compared, {changed_tasks} changed state",
            f"outputs: {counts or 'none recorded'}",
        ]
        lines += [
            f"  {c.parameter}:{c.path} {c.state}"
            for c in self.output_changes
            if c.state != "identical"
        ][:20]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        parts = [
            f"<p><b>A</b> <code>{html.escape(str(self.a))}</code><br>"
            f"<b>B</b> <code>{html.escape(str(self.b))}</code></p>",
            "<p>template: " + ("<b>changed</b>" if self.template_changed else "same") + "</p>",
        ]
        if self.template_diff:
            parts.append(
                "<details><summary>template diff</summary><pre>"
                f"{html.escape(self.template_diff)}</pre></details>"
            )
        for title, frame in (
            ("parameters changed", self.parameters),
            ("options changed", self.options),
            ("outputs that changed", self.changed_outputs()),
        ):
            if not frame.empty:
                parts.append(f"<p>{title}</p>" + frame.to_html(index=False, na_rep="", border=0))
        tasks = self.tasks
        if not tasks.empty:
            parts.append(
                "<details><summary>tasks</summary>"
                + tasks.to_html(index=False, na_rep="", border=0)
                + "</details>"
            )
        outputs = self.outputs
        identical = int((outputs["state"] == "identical").sum()) if not outputs.empty else 0
        parts.append(f"<p>outputs: {identical}/{len(outputs)} identical</p>")
        return "<div class='openjd-run-comparison'>" + "".join(parts) + "</div>"


class ComparisonError(JobsError, ValueError):
    """A run to compare has no record."""


def compare_runs(a: RunReference, b: RunReference) -> RunComparison:
    """What changed from run ``a`` to run ``b`` (records, their folders, or ``JobResult``s)."""
    dir_a, dir_b = record_dir(a), record_dir(b)
    body_a, body_b = _read_run_json(dir_a / RUN_FILE), _read_run_json(dir_b / RUN_FILE)
    result_a, result_b = _result(a, dir_a), _result(b, dir_b)
    text_a = str((body_a.get("template") or {}).get("text") or "")
    text_b = str((body_b.get("template") or {}).get("text") or "")
    digest_a = (body_a.get("template") or {}).get("digest")
    digest_b = (body_b.get("template") or {}).get("digest")
    diff = "".join(
        difflib.unified_diff(
            text_a.splitlines(keepends=True),
            text_b.splitlines(keepends=True),
            "A/template",
            "B/template",
        )
    )
    task_columns, task_rows = _task_changes(result_a, result_b)
    return RunComparison(
        a=dir_a,
        b=dir_b,
        template_changed=digest_a != digest_b,
        template_diff=diff,
        parameter_changes=_changes(body_a.get("parameters"), body_b.get("parameters")),
        option_changes=_changes(body_a.get("options"), body_b.get("options")),
        task_changes=task_rows,
        task_columns=task_columns,
        output_changes=output_changes(result_a.output_entries, result_b.output_entries),
    )


def verify_outputs(recorded: JobResult, rerun: JobResult) -> Verification:
    """The rerun's outputs against the recorded ones."""
    return Verification(output_changes(recorded.output_entries, rerun.output_entries))


def output_changes(
    a: Sequence[ManifestEntry], b: Sequence[ManifestEntry]
) -> tuple[OutputChange, ...]:
    """Matched by parameter and path; "missing" and an entry that is absent count alike."""
    by_a = {(e.parameter, e.path): e for e in a if e.state != "missing"}
    by_b = {(e.parameter, e.path): e for e in b if e.state != "missing"}
    changes = []
    for key in sorted(set(by_a) | set(by_b)):
        left, right = by_a.get(key), by_b.get(key)
        changes.append(
            OutputChange(
                parameter=key[0],
                path=key[1],
                state=_output_state(left, right),
                sha256_a=left.sha256 if left else None,
                sha256_b=right.sha256 if right else None,
                size_a=left.size if left else None,
                size_b=right.size if right else None,
            )
        )
    return tuple(changes)


def _output_state(a: ManifestEntry | None, b: ManifestEntry | None) -> OutputState:
    if a is None:
        return "new"
    if b is None:
        return "missing"
    if a.sha256 is None or b.sha256 is None:
        return "unknown"
    return "identical" if a.sha256 == b.sha256 else "different"


def record_dir(reference: RunReference, purpose: str = "compare") -> Path:
    """The record folder of a run given as a folder, its run.json or a ``JobResult``."""
    if isinstance(reference, JobResult):
        if reference.run_dir is None:
            raise ComparisonError(f"{reference!r} has no run record to {purpose}")
        return Path(reference.run_dir)
    return _run_file(Path(reference)).parent


def _result(reference: RunReference, run_dir: Path) -> JobResult:
    return reference if isinstance(reference, JobResult) else load_run(run_dir)


def _changes(a: Any, b: Any) -> tuple[tuple[str, Any, Any], ...]:
    left: Mapping[str, Any] = a if isinstance(a, Mapping) else {}
    right: Mapping[str, Any] = b if isinstance(b, Mapping) else {}
    names = sorted(set(left) | set(right))
    return tuple((n, left.get(n), right.get(n)) for n in names if left.get(n) != right.get(n))


def _task_key(step: str, parameters: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return step, tuple(sorted((name, str(value)) for name, value in parameters.items()))


def _task_changes(
    a: JobResult, b: JobResult
) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
    by_a = {_task_key(t.step, t.parameters): t for t in a.task_outcomes}
    by_b = {_task_key(t.step, t.parameters): t for t in b.task_outcomes}
    names = list(dict.fromkeys(n for t in (*by_a.values(), *by_b.values()) for n in t.parameters))
    columns = ("step", *names, "state_a", "state_b", "duration_delta_s")
    rows = []
    for key in sorted(set(by_a) | set(by_b), key=lambda k: (k[0], k[1])):
        left, right = by_a.get(key), by_b.get(key)
        parameters = (left or right).parameters  # type: ignore[union-attr]
        delta = None
        if left and right and left.duration_s is not None and right.duration_s is not None:
            delta = round(right.duration_s - left.duration_s, 3)
        rows.append(
            (
                key[0],
                *(parameters.get(n) for n in names),
                left.state if left else "not_run",
                right.state if right else "not_run",
                delta,
            )
        )
    return columns, tuple(rows)


def _frame(columns: list[str], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([list(row) for row in rows], columns=columns)
