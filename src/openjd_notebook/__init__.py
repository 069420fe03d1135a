"""openjd-notebook: write, run and understand Open Job Description jobs from notebooks.

The session engine is :mod:`openjd_notebook.sessions`; whole-job runs are re-exported here.
"""

from .jobs import JobResult, JobRun, Template, TemplateError, load_run, run_job, runs, start_job
from .sessions._version import version as __version__

__all__ = [
    "JobResult",
    "JobRun",
    "Template",
    "TemplateError",
    "__version__",
    "load_run",
    "run_job",
    "runs",
    "start_job",
]
