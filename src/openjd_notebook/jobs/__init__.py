"""Whole-job runs: templates, ``run_job``/``start_job``, workers, results and run records."""

from .errors import JobsError, ParameterError, RunError, TemplateError
from .events import (
    EnvironmentEntered,
    EnvironmentExited,
    Event,
    LogLines,
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
    "ParameterError",
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
    "load_run",
    "run_job",
    "runs",
    "start_job",
]
