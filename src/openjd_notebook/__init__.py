"""openjd-notebook: write, run and understand Open Job Description jobs from notebooks.

The session engine is :mod:`openjd_notebook.sessions`; whole-job runs are re-exported here.
Each name is imported when first used, so ``import openjd_notebook.sessions`` (the drop-in for
``openjd.sessions``) and the command line load only the layers they need.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .jobs import (
        JobResult,
        JobRun,
        ParameterError,
        RunComparison,
        Template,
        TemplateError,
        compare_runs,
        load_run,
        rerun,
        run_job,
        runs,
        start_job,
    )
    from .jobs.dask_executor import DaskExecutor

# A library's records go where the application sends them, never to Python's last-resort
# stderr handler (which put "Process failed to start" as red text into notebooks): the CLI and
# the notebook views show what matters in their own way.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DaskExecutor",
    "JobResult",
    "JobRun",
    "ParameterError",
    "RunComparison",
    "Template",
    "TemplateError",
    "__version__",
    "compare_runs",
    "load_run",
    "rerun",
    "run_job",
    "runs",
    "start_job",
]

# Where each public name lives. Dask is an optional extra: its module is imported only here.
_SOURCES = {
    "DaskExecutor": ".jobs.dask_executor",
    "JobResult": ".jobs",
    "JobRun": ".jobs",
    "ParameterError": ".jobs",
    "RunComparison": ".jobs",
    "Template": ".jobs",
    "compare_runs": ".jobs",
    "rerun": ".jobs",
    "TemplateError": ".jobs",
    "load_run": ".jobs",
    "run_job": ".jobs",
    "runs": ".jobs",
    "start_job": ".jobs",
}


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext openjd_notebook``: register the OpenJD magics (imported only then)."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from .sessions._version import version

        return version
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(source, __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
