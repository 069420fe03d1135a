"""The root package's public surface, as promised in DESIGN.md."""

from __future__ import annotations

import openjd_notebook


def test_root_surface_is_pinned() -> None:
    assert sorted(openjd_notebook.__all__) == sorted(
        [
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
    )
    for name in openjd_notebook.__all__:
        assert getattr(openjd_notebook, name) is not None


def test_template_error_is_a_value_error() -> None:
    assert issubclass(openjd_notebook.TemplateError, ValueError)


def test_parameter_error_is_a_value_error() -> None:
    """What run_job/start_job raise for values that do not fit the template."""
    assert issubclass(openjd_notebook.ParameterError, ValueError)
