"""RFC 0008's one-wrap-layer rule across a job and the environment templates run with it.

openjd-model checks it inside one template; only the combination of a job with separately
given environment templates is left to the runner, which must refuse it before any
environment is entered.
"""

from __future__ import annotations

from collections.abc import Sequence

from openjd.model import EnvironmentTemplate, Job, JobTemplate

from ..wrap_hooks import defines_wrap_hooks
from .errors import TemplateError

__all__ = ["check_wrap_layers"]


def check_wrap_layers(job: Job | JobTemplate, environments: Sequence[EnvironmentTemplate]) -> None:
    """Raise ``TemplateError`` when some step would run inside two wrapping environments.

    Takes the job, or its template (``openjd-notebook check``): both name the same
    environments and steps.
    """
    external = [env.environment.name for env in environments if defines_wrap_hooks(env.environment)]
    if not external:
        return
    job_level = [env.name for env in job.jobEnvironments or () if defines_wrap_hooks(env)]
    for step in job.steps:
        step_level = [env.name for env in step.stepEnvironments or () if defines_wrap_hooks(env)]
        wrapping = [*external, *job_level, *step_level]
        if len(wrapping) > 1:
            names = ", ".join(repr(name) for name in wrapping)
            raise TemplateError(
                f"Step {step.name!r} would run inside {len(wrapping)} environments that define "
                f"wrap hooks ({names}); RFC 0008 allows one wrap layer per session, so "
                "keep the wrap hooks in one of them."
            )
