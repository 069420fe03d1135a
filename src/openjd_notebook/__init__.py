"""openjd-notebook: write, run and understand Open Job Description jobs from notebooks.

The session engine is :mod:`openjd_notebook.sessions`; whole-job runs are re-exported here.
"""

import logging
from typing import Any

from .jobs import (
    JobResult,
    JobRun,
    ParameterError,
    Template,
    TemplateError,
    load_run,
    run_job,
    runs,
    start_job,
)
from .sessions._version import version as __version__

# A library's records go where the application sends them, never to Python's last-resort
# stderr handler (which put "Process failed to start" as red text into notebooks): the CLI and
# the notebook views show what matters in their own way.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DaskExecutor",
    "JobResult",
    "JobRun",
    "ParameterError",
    "Template",
    "TemplateError",
    "__version__",
    "load_run",
    "run_job",
    "runs",
    "start_job",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext openjd_notebook``: register the OpenJD magics (imported only then)."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    # Dask is an optional extra: its executor is imported only when asked for.
    if name == "DaskExecutor":
        from .jobs.dask_executor import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
