"""Run a recorded run again: its template, parameters, environment templates, path mapping
rules and options as recorded, with overrides; optionally check the outputs came out the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .compare import ComparisonError, RunReference, record_dir, verify_outputs
from .records import RUN_FILE, _read_run_json, load_run
from .results import JobResult
from .runner import run_job
from .template import Template

__all__ = ["rerun", "rerun_arguments"]

# The recorded options that mean the same thing again (the executor's repr does not).
_REPEATABLE_OPTIONS = (
    "step",
    "tasks",
    "max_tasks",
    "run_dependencies",
    "workers",
    "keep_workdir",
    "cancel_grace",
    "hash_budget",
)


def rerun(record: RunReference, verify: bool = False, **overrides: Any) -> JobResult:
    """Run the recorded job again and return the new ``JobResult``.

    ``overrides`` are ``run_job`` arguments; ``parameters=`` is merged into the recorded
    values. The new record goes beside the old one unless ``runs_root=`` says otherwise.
    With ``verify=True`` the result's ``verification`` compares the output manifests:
    ``result.verification.summary()`` is "reproduced: 24/24 outputs identical" or names the
    files that differ.
    """
    run_dir = record_dir(record, "rerun")
    template, arguments = rerun_arguments(run_dir, overrides)
    result = run_job(template, **arguments)
    if not verify:
        return result
    recorded = record if isinstance(record, JobResult) else load_run(run_dir)
    return result._with_verification(verify_outputs(recorded, result))


def rerun_arguments(run_dir: Path, overrides: Mapping[str, Any]) -> tuple[Template, dict[str, Any]]:
    """The template and ``run_job`` arguments that repeat the run recorded in ``run_dir``."""
    body = _read_run_json(run_dir / RUN_FILE)
    template_body = body.get("template")
    text = template_body.get("text") if isinstance(template_body, Mapping) else None
    if not isinstance(text, str) or not text:
        raise ComparisonError(f"{run_dir / RUN_FILE}: the record keeps no template text to rerun")
    template = Template.from_text(text)
    options = body.get("options")
    recorded_options: Mapping[str, Any] = options if isinstance(options, Mapping) else {}
    arguments: dict[str, Any] = {
        name: recorded_options[name] for name in _REPEATABLE_OPTIONS if name in recorded_options
    }
    arguments["environments"] = _environments(body, recorded_options)
    arguments["path_mapping_rules"] = body.get("path_mapping_rules") or None
    arguments["runs_root"] = run_dir.parent
    parameters = dict(body.get("parameters") or {})
    parameters.update(overrides.get("parameters") or {})
    arguments.update({k: v for k, v in overrides.items() if k != "parameters"})
    arguments["parameters"] = parameters
    return template, arguments


def _environments(body: Mapping[str, Any], options: Mapping[str, Any]) -> list[Any]:
    recorded = body.get("environment_templates")
    if isinstance(recorded, list):
        return [Template.from_text(str(entry["text"])) for entry in recorded]
    # Records written before the texts were kept name the files they came from.
    return [Path(path) for path in options.get("environments") or []]
