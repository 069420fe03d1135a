"""``openjd-notebook compare A B`` and ``openjd-notebook rerun RECORD``: the experiment commands.

``compare`` prints what changed between two recorded runs (template, parameters, options,
tasks, outputs); ``rerun`` runs a record again with the same live output as ``run`` and, with
``--verify``, exits 1 when the outputs are not the ones the record lists.
"""

from __future__ import annotations

import argparse
import queue
import sys
from pathlib import Path
from typing import Any

from . import cli

__all__ = ["add_experiment_parsers", "comparison_document"]


def add_experiment_parsers(commands: Any) -> None:
    compare = commands.add_parser(
        "compare",
        help="what changed between two recorded runs",
        description="Compare two run records: template, parameters, options, tasks, outputs.",
    )
    compare.add_argument("a", help="the first run's record folder (or its run.json)")
    compare.add_argument("b", help="the second run's record folder (or its run.json)")
    compare.add_argument("--output", choices=cli.OUTPUT_FORMATS, default="human-readable")
    compare.set_defaults(handler=_compare_command)

    rerun = commands.add_parser(
        "rerun",
        help="run a recorded run again (and check its outputs with --verify)",
        description="Run the template of a record again with its parameters, environment "
        "templates, path mapping rules and options; -p overrides a parameter.",
    )
    rerun.add_argument("record", help="the run's record folder (or its run.json)")
    rerun.add_argument(
        "--verify",
        action="store_true",
        help="compare the output manifests with the record's; exit 1 when they differ",
    )
    rerun.add_argument(
        "-p",
        "--job-param",
        action="append",
        default=[],
        metavar="NAME=VALUE|FILE",
        help="override a recorded job parameter value (repeatable)",
    )
    rerun.add_argument("--workers", type=cli._positive_int, metavar="N")
    rerun.add_argument("--runs-root", metavar="DIR", help="where the new record goes")
    rerun.add_argument("--output", choices=cli.OUTPUT_FORMATS, default="human-readable")
    rerun.add_argument("--verbose", action="store_true")
    rerun.set_defaults(
        handler=_rerun_command, preserve=False, timestamp_format=None, cluster=None, nodes=None
    )


# ---- compare ---------------------------------------------------------------------------------


def comparison_document(comparison: Any) -> dict[str, Any]:
    return {
        "status": "success",
        "message": comparison.summary(),
        "a": str(comparison.a),
        "b": str(comparison.b),
        "template_changed": comparison.template_changed,
        "template_diff": comparison.template_diff,
        "parameters": [
            {"name": name, "a": a, "b": b} for name, a, b in comparison.parameter_changes
        ],
        "options": [{"name": name, "a": a, "b": b} for name, a, b in comparison.option_changes],
        "tasks": [
            dict(zip(comparison.task_columns, row, strict=True)) for row in comparison.task_changes
        ],
        "outputs": [
            {
                "parameter": change.parameter,
                "path": change.path,
                "state": change.state,
                "sha256_a": change.sha256_a,
                "sha256_b": change.sha256_b,
            }
            for change in comparison.output_changes
        ],
        "same_outputs": comparison.same_outputs,
    }


def _compare_command(args: argparse.Namespace) -> int:
    from .cli_text import print_document
    from .jobs.compare import compare_runs

    comparison = compare_runs(Path(args.a), Path(args.b))
    print_document(sys.stdout, args.output, comparison_document(comparison))
    return 0


# ---- rerun -----------------------------------------------------------------------------------


def _rerun_command(args: argparse.Namespace) -> int:
    from .jobs.compare import record_dir, verify_outputs
    from .jobs.events import Event, RunEnded
    from .jobs.records import load_run
    from .jobs.rerun import rerun_arguments
    from .jobs.runner import start_job

    run_dir = record_dir(Path(args.record), "rerun")
    overrides: dict[str, Any] = {"parameters": cli.parse_job_params(args.job_param)}
    if args.runs_root is not None:
        overrides["runs_root"] = Path(args.runs_root)
    if args.workers is not None:
        overrides["workers"] = args.workers
    template, arguments = rerun_arguments(run_dir, overrides)
    args.workers = arguments.get("workers", 1)
    reporter = cli._reporter(args)
    requests: queue.SimpleQueue[object] = queue.SimpleQueue()

    def on_end(event: Event) -> None:
        if isinstance(event, RunEnded):
            requests.put(cli._ENDED)

    with reporter, cli._interrupts(requests.put):
        run = start_job(template, on_event=[reporter, on_end], **arguments)
        interrupted = cli._wait(run, requests, reporter.notice)
        result = run.wait()
        reporter.finish(result)
    code = cli._exit_code(result, interrupted)
    if not args.verify:
        return code
    verification = verify_outputs(load_run(run_dir), result)
    # A JSON or YAML document keeps stdout to itself.
    stream = sys.stdout if args.output == "human-readable" else sys.stderr
    print(verification.summary(), file=stream, flush=True)
    return code if verification.ok else max(code, 1)
