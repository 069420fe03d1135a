"""Whole-job runs: templates, ``run_job``/``start_job``, workers, results and run records.

Each name is imported from its module when first used: checking a template never loads the
session engine, and a command-line run never loads what only notebooks use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compare import RunComparison, Verification, compare_runs
    from .errors import JobsError, ParameterError, RunError, TemplateError
    from .events import (
        EnvironmentEntered,
        EnvironmentExited,
        Event,
        LogLines,
        ManifestProgress,
        RunEnded,
        RunStarted,
        TaskEnded,
        TaskProgress,
        TaskStarted,
        TaskStatus,
    )
    from .local import LocalExecutor
    from .outcomes import EnvironmentOutcome, TaskOutcome
    from .records import load_run, runs
    from .rerun import rerun
    from .results import JobResult
    from .runner import JobRun, JobRunState, run_job, start_job
    from .template import Template

__all__ = [
    "EnvironmentEntered",
    "EnvironmentExited",
    "EnvironmentOutcome",
    "Event",
    "JobResult",
    "JobRun",
    "JobRunState",
    "JobsError",
    "LocalExecutor",
    "LogLines",
    "ManifestProgress",
    "ParameterError",
    "RunComparison",
    "RunEnded",
    "RunError",
    "RunStarted",
    "TaskEnded",
    "TaskOutcome",
    "TaskProgress",
    "TaskStarted",
    "TaskStatus",
    "Template",
    "TemplateError",
    "Verification",
    "compare_runs",
    "load_run",
    "rerun",
    "run_job",
    "runs",
    "start_job",
]

_EVENTS = (
    "EnvironmentEntered",
    "EnvironmentExited",
    "Event",
    "LogLines",
    "ManifestProgress",
    "RunEnded",
    "RunStarted",
    "TaskEnded",
    "TaskProgress",
    "TaskStarted",
    "TaskStatus",
)
# The module each public name lives in.
_SOURCES = {
    **dict.fromkeys(("JobsError", "ParameterError", "RunError", "TemplateError"), ".errors"),
    **dict.fromkeys(_EVENTS, ".events"),
    "LocalExecutor": ".local",
    "EnvironmentOutcome": ".outcomes",
    "TaskOutcome": ".outcomes",
    "load_run": ".records",
    "runs": ".records",
    "JobResult": ".results",
    **dict.fromkeys(("JobRun", "JobRunState", "run_job", "start_job"), ".runner"),
    "Template": ".template",
    **dict.fromkeys(("RunComparison", "Verification", "compare_runs"), ".compare"),
    "rerun": ".rerun",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(source, __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
