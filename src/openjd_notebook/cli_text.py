"""What the command line prints besides a run's live output.

The documents of ``--output json`` and ``--output yaml`` (``check``, ``summary`` and a run's
result share one writer), the text of ``summary --step``, and the job parameters that
``run TEMPLATE --help`` lists. Pure functions from values to text: tests call them directly, and
``check`` and ``summary`` print through them without loading the runner.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .jobs.summary import StepSummary, TemplateSummary
    from .jobs.template import Template

__all__ = [
    "dump_document",
    "parameter_help",
    "print_document",
    "summary_document",
    "summary_text",
    "template_help",
]


# ---- documents -------------------------------------------------------------------------------


def dump_document(document: Mapping[str, Any], output_format: str) -> str:
    """``document`` as JSON (indented) or YAML (keys in their order), ending with a newline."""
    if output_format == "yaml":
        import yaml  # loaded already by openjd-model; here so a JSON run never needs it

        return str(yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True))
    return json.dumps(document, indent=2, default=str) + "\n"


def print_document(stream: IO[str], output_format: str, document: Mapping[str, Any]) -> None:
    """The document in ``output_format``; for people (``human-readable``) its message only."""
    if output_format == "human-readable":
        print(document["message"], file=stream)
    else:
        stream.write(dump_document(document, output_format))
    stream.flush()


# ---- summary ---------------------------------------------------------------------------------


def _step_document(step: StepSummary) -> dict[str, Any]:
    return {
        "name": step.name,
        "total_tasks": step.task_count,
        "chunks": step.chunk_count,
        "dependencies": list(step.dependencies),
        "environments": list(step.environments),
    }


def _chosen(summary: TemplateSummary, step: str) -> StepSummary:
    return next(candidate for candidate in summary.steps if candidate.name == step)


def summary_document(summary: TemplateSummary, step: str | None = None) -> dict[str, Any]:
    """The summary as a document; keys named as in ``openjd summary``'s where they agree."""
    if step is not None:
        chosen = _step_document(_chosen(summary, step))
        del chosen["name"]
        return {
            "status": "success",
            "message": f"Summary for Step '{step}' in Job '{summary.name}'",
            "job_name": summary.name,
            "step_name": step,
            **chosen,
        }
    return {
        "status": "success",
        "message": f"Summary for '{summary.name}'",
        "name": summary.name,
        "kind": summary.kind,
        "parameters": dict(summary.parameters),
        "missing_parameters": list(summary.missing_parameters),
        "total_steps": len(summary.steps),
        "total_tasks": summary.task_count,
        "job_environments": list(summary.job_environments),
        "external_environments": list(summary.external_environments),
        "steps": [_step_document(s) for s in summary.steps],
    }


def summary_text(summary: TemplateSummary, step: str | None = None) -> str:
    """The summary's text; with ``step``, that step's row under a headline naming it."""
    if step is None:
        return str(summary)
    chosen = _chosen(summary, step)
    lines = str(dataclasses.replace(summary, steps=(chosen,))).splitlines()
    count = chosen.task_count
    tasks = "? tasks" if count is None else f"{count} task{'' if count == 1 else 's'}"
    lines[0] = f"Step {chosen.name!r} of job {summary.name!r}: {tasks}"
    return "\n".join(lines)


# ---- run TEMPLATE --help ---------------------------------------------------------------------


def parameter_help(row: Mapping[str, Any]) -> str:
    """One job parameter as ``run TEMPLATE --help`` lists it, from its ``Template.parameters``
    row: ``Frames (INT) [default: 1] (range: 1..100)`` and its description under it."""
    default = row["default"]
    if default is None:
        said = "[required]"
    elif isinstance(default, str) and "\n" in default:
        said = "[default: several lines]"
    else:
        said = f"[default: {default!r}]" if isinstance(default, str) else f"[default: {default}]"
    limits = []
    if row["range"] is not None:
        limits.append(f"range: {row['range']}")
    if row["allowed_values"] is not None:
        limits.append("allowed: " + ", ".join(repr(v) for v in row["allowed_values"]))
    text = f"{row['name']} ({row['type']}) {said}"
    if limits:
        text += f" ({'; '.join(limits)})"
    if row["description"]:
        text += "".join(f"\n    {line}" for line in str(row["description"]).splitlines())
    return text


def template_help(template: Template, options_help: str) -> str:
    """The command's help with the template's name, description and job parameters after the
    usage line, as ``openjd run TEMPLATE --help`` shows them."""
    from .jobs.parameters import _definition_row  # the row Template.parameters shows

    usage, _, options = options_help.partition("\n\n")
    kind = "Job" if template.kind == "job" else "Environment"
    lines = [f"{kind}: {template.name}"]
    description = getattr(template.model, "description", None)
    if description:
        lines.append(str(description))
    definitions: Sequence[Any] = getattr(template.model, "parameterDefinitions", None) or ()
    if definitions:
        lines.append("")
        lines.append("Job parameters (-p/--job-param NAME=VALUE):")
        for definition in definitions:
            text = parameter_help(_definition_row(definition))
            lines.extend(f"  {line}" for line in text.splitlines())
    else:
        lines.append("It takes no job parameters.")
    return "\n".join([usage, "", *lines, "", options.rstrip("\n")])
