"""The ``openjd-notebook`` command: run, check and summarise OpenJD job templates from a shell.

Exit codes: 0 success; 1 the job failed or was canceled, or the template is invalid; 2 the command
line cannot be used (unknown option, malformed ``-p``, unreadable file, unknown parameter, bad
``--tasks``). Every input is checked before the run starts, so a usage error never leaves a half
run behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import queue
import re
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openjd.model.v2023_09 import EnvironmentTemplate, JobTemplate

from .cli_output import HumanReporter, JsonReporter, Reporter
from .jobs import (
    Event,
    JobResult,
    JobRun,
    JobsError,
    ParameterError,
    RunEnded,
    Template,
    TemplateError,
    start_job,
)
from .jobs.errors import InputFileError
from .jobs.input_files import read_document
from .jobs.interrupts import interrupts_as_requests
from .jobs.parameters import merged_definitions
from .jobs.path_mapping import PathMappingError, load_path_mapping_rules
from .jobs.selection import SelectionError, TasksSpec, plan_steps
from .jobs.wrap_layers import check_wrap_layers
from .sessions import PathMappingRule

__all__ = ["UsageError", "build_parser", "main", "parse_job_params", "parse_tasks"]

PROG = "openjd-notebook"
_NAME_VALUE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.DOTALL)
_FILTER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FILE_PREFIX = "file://"
_ENDED = "ended"
_POLL_S = 0.5


class UsageError(Exception):
    """A value on the command line that cannot be used; the command exits with code 2."""


# ---- reading -p, --tasks and the files they name --------------------------------------------


def _read_document(text: str, what: str) -> Any:
    """The parsed content of a JSON or YAML file named as ``file://PATH`` or ``PATH``.

    Only a regular file of a bounded size is read (never a FIFO or a device), and YAML with
    more aliases than a template could need is refused (see ``jobs.input_files``).
    """
    path = Path(text.removeprefix(_FILE_PREFIX)).expanduser()
    try:
        return read_document(path, what=f"{what} file")
    except OSError as error:
        raise UsageError(f"cannot read {what} file {str(path)!r}: {error.strerror}") from None
    except InputFileError as error:
        raise UsageError(str(error)) from None


def _inline_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{what} {text!r} is not valid JSON: {error}") from None


def _parameter_mapping(document: Any, source: str) -> dict[str, Any]:
    """A ``{name: value}`` mapping, or the job bundle form ``{"parameterValues": [...]}``."""
    if not isinstance(document, Mapping):
        raise UsageError(f"job parameters in {source} must be a mapping of names to values")
    entries = document.get("parameterValues")
    if len(document) != 1 or not isinstance(entries, list):
        return {str(name): value for name, value in document.items()}
    values: dict[str, Any] = {}
    for entry in entries:
        if not (isinstance(entry, Mapping) and isinstance(entry.get("name"), str)):
            raise UsageError(f"each entry of parameterValues in {source} needs a name and a value")
        if "value" not in entry:
            raise UsageError(f"parameter {entry['name']!r} in {source} has no value")
        values[entry["name"]] = entry["value"]
    return values


def _one_job_param(argument: str) -> dict[str, Any]:
    text = argument.strip()
    if text.startswith(_FILE_PREFIX):
        return _parameter_mapping(_read_document(text, "job parameter"), text)
    if text.startswith("{"):
        return _parameter_mapping(_inline_json(text, "-p"), "-p")
    match = _NAME_VALUE.match(text)
    if match:
        return {match.group("name"): match.group("value")}
    if Path(text).expanduser().is_file():
        return _parameter_mapping(_read_document(text, "job parameter"), text)
    raise UsageError(
        f"-p {argument!r}: expected NAME=VALUE, inline JSON such as '{{\"Name\": 1}}', "
        "or a JSON/YAML file (file://params.yaml or a plain path)"
    )


def parse_job_params(arguments: Sequence[str]) -> dict[str, Any]:
    """Every ``-p`` value merged into one mapping; later values override earlier ones."""
    merged: dict[str, Any] = {}
    for argument in arguments:
        merged.update(_one_job_param(argument))
    return merged


def _task_list(document: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(document, list) or not all(isinstance(t, Mapping) for t in document):
        raise UsageError(f"--tasks {source}: expected a list of {{task parameter: value}} maps")
    return [{str(name): value for name, value in task.items()} for task in document]


def parse_tasks(argument: str) -> TasksSpec:
    """``Frame=1-5`` (kept as text), inline JSON, or a JSON/YAML file holding a list of tasks."""
    text = argument.strip()
    if text.startswith(_FILE_PREFIX):
        return _task_list(_read_document(text, "--tasks"), text)
    if text.startswith(("[", "{")):
        return _task_list(_inline_json(text, "--tasks"), "(inline JSON)")
    if _FILTER.match(text):
        return text
    if Path(text).expanduser().is_file():
        return _task_list(_read_document(text, "--tasks"), text)
    raise UsageError(
        f"--tasks {argument!r}: expected NAME=VALUES such as 'Frame=1-5', a JSON list of "
        "tasks, or a JSON/YAML file holding one"
    )


# ---- loading and checking every input before a run ------------------------------------------


@dataclass(frozen=True)
class RunInputs:
    """Everything ``run`` needs, read and checked."""

    template: Template
    parameters: Mapping[str, Any]
    environments: tuple[Template, ...]
    tasks: TasksSpec | None
    path_mapping_rules: tuple[PathMappingRule, ...]


def _load_template(path: str) -> Template:
    try:
        return Template.load(path)
    except OSError as error:
        raise UsageError(f"cannot read template {path!r}: {error.strerror or error}") from None


def _load_environment(path: str) -> Template:
    template = _load_template(path)
    if template.kind != "environment":
        raise UsageError(f"--environment {path!r} is a job template, not an environment template")
    return template


def _path_mapping_rules(value: str | None) -> tuple[PathMappingRule, ...]:
    try:
        return tuple(load_path_mapping_rules(value))
    except PathMappingError as error:
        raise UsageError(f"--path-mapping-rules: {error}") from None


def _read_run_inputs(args: argparse.Namespace) -> RunInputs:
    template = _load_template(args.template)
    environments = tuple(_load_environment(path) for path in args.environment)
    parameters = parse_job_params(args.job_param)
    tasks = parse_tasks(args.tasks) if args.tasks is not None else None
    rules = _path_mapping_rules(args.path_mapping_rules)
    instance = template.instantiate(parameters, environments=environments)
    # Planning here reports a bad --step or --tasks as a usage error, before anything runs.
    plan_steps(
        instance.job,
        step=args.step,
        tasks=tasks,
        max_tasks=args.max_tasks,
        run_dependencies=args.run_dependencies,
    )
    return RunInputs(template, parameters, environments, tasks, rules)


# ---- Ctrl-C ----------------------------------------------------------------------------------


def _wait(run: JobRun, requests: queue.SimpleQueue[object], notice: Callable[[str], None]) -> None:
    """Block until the run ends, turning queued interrupts into cancel requests."""
    while not run.done():
        try:
            request = requests.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if request == _ENDED:
            return
        force = bool(request)
        notice("Killing the running actions..." if force else "Canceling (Ctrl-C again to kill)...")
        run.cancel(force=force)


# ---- commands --------------------------------------------------------------------------------


def _reporter(args: argparse.Namespace) -> Reporter:
    if args.output == "json":
        return JsonReporter(sys.stdout, keep_workdir=args.preserve)
    return HumanReporter(
        sys.stdout, workers=args.workers, verbose=args.verbose, keep_workdir=args.preserve
    )


def _executor(args: argparse.Namespace) -> Any:
    """The Dask executor for --cluster, None for a local run; ClusterError when unusable."""
    if args.cluster is None:
        if args.nodes is not None:
            raise UsageError("--nodes needs --cluster (a local run takes --workers)")
        return None
    from .jobs.dask_executor import executor_for_cluster

    return executor_for_cluster(args.cluster, args.nodes)


def _start(
    args: argparse.Namespace, inputs: RunInputs, subscribers: list[Any], executor: Any
) -> JobRun:
    return start_job(
        inputs.template,
        inputs.parameters,
        step=args.step,
        tasks=inputs.tasks,
        max_tasks=args.max_tasks,
        run_dependencies=args.run_dependencies,
        workers=args.workers,
        environments=inputs.environments,
        path_mapping_rules=list(inputs.path_mapping_rules),
        keep_workdir=args.preserve,
        cancel_grace=args.cancel_grace,
        on_event=subscribers,
        runs_root=args.runs_root,
        executor=executor,
    )


def _run_command(args: argparse.Namespace) -> int:
    inputs = _read_run_inputs(args)
    requests: queue.SimpleQueue[object] = queue.SimpleQueue()

    def on_end(event: Event) -> None:
        if isinstance(event, RunEnded):
            requests.put(_ENDED)  # wakes the main loop without waiting for its poll

    executor = _executor(args)
    with (
        executor if executor is not None else contextlib.nullcontext(),
        _reporter(args) as reporter,
        interrupts_as_requests(requests.put, (signal.SIGINT, signal.SIGTERM)),
    ):
        run = _start(args, inputs, [reporter, on_end], executor)
        _wait(run, requests, reporter.notice)
        result: JobResult = run.wait()
        reporter.finish(result)
    return 0 if result.ok else 1


def _check_command(args: argparse.Namespace) -> int:
    try:
        template = _load_template(args.template)
        environments = [_load_environment(path) for path in args.environment]
        _check_together(template, environments)
    except (TemplateError, ParameterError) as error:
        print(error)
        return 1
    together = f" with {len(environments)} environment template(s)" if environments else ""
    print(f"Template at '{args.template}' passes validation checks{together}.")
    return 0


def _check_together(template: Template, environments: Sequence[Template]) -> None:
    """What running the job with these environment templates would refuse before it starts:
    parameter definitions that clash, and a second wrap layer (RFC 0008)."""
    if template.kind != "job" or not environments:
        return
    models = [env.model for env in environments if isinstance(env.model, EnvironmentTemplate)]
    job_template = template.model
    assert isinstance(job_template, JobTemplate)
    merged_definitions(job_template, models)
    check_wrap_layers(job_template, models)


def _summary_command(args: argparse.Namespace) -> int:
    template = _load_template(args.template)
    environments = tuple(_load_environment(path) for path in args.environment)
    parameters = parse_job_params(args.job_param)
    print(template.summary(parameters, environments=environments))
    return 0


# ---- the parser ------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more seconds, not {text}")
    return value


def _add_template_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("template", help="job template (.yaml/.json) or job bundle directory")
    parser.add_argument(
        "-p",
        "--job-param",
        action="append",
        default=[],
        metavar="NAME=VALUE|FILE",
        help="job parameter: NAME=VALUE, inline JSON '{\"Name\": 1}', or a JSON/YAML file "
        "(file://params.yaml or a plain path; a mapping or a bundle's parameterValues). "
        "Repeatable; later values override earlier ones.",
    )
    parser.add_argument(
        "--environment",
        "--env",
        action="append",
        default=[],
        metavar="FILE",
        help="environment template entered before the job's own; repeatable, entered in order",
    )


def _add_run_parser(commands: Any) -> None:
    run = commands.add_parser("run", help="run a job locally", description="Run a job locally.")
    _add_template_inputs(run)
    run.add_argument("--step", help="run only this step (and, by default, its dependencies)")
    run.add_argument(
        "--run-dependencies",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --step, also run the steps it depends on first (default: yes; "
        "`openjd run` defaults to no)",
    )
    run.add_argument(
        "--tasks",
        metavar="SPEC",
        help="tasks of the selected step: 'Frame=1-5', inline JSON '[{\"Frame\": 1}]', "
        "or a JSON/YAML file holding such a list",
    )
    run.add_argument("--max-tasks", type=int, metavar="N", help="run the first N tasks")
    run.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run N sessions at once, each like one render node (default: 1)",
    )
    run.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the tasks on a Dask cluster, given its scheduler address "
        "(needs openjd-notebook[dask])",
    )
    run.add_argument(
        "--nodes",
        type=_positive_int,
        metavar="N",
        help="with --cluster: run at most N tasks at once",
    )
    run.add_argument(
        "--path-mapping-rules",
        metavar="RULES",
        help="pathmapping-1.0 rules: inline JSON, or a JSON/YAML file (file:// or a plain path)",
    )
    run.add_argument("--preserve", action="store_true", help="keep the session working directories")
    run.add_argument(
        "--runs-root", metavar="DIR", help="where the run record goes (default: ./openjd-runs)"
    )
    run.add_argument(
        "--cancel-grace",
        type=_seconds,
        metavar="SECONDS",
        help="cap on the grace period a first Ctrl-C gives each running action",
    )
    run.add_argument(
        "--output",
        choices=("human-readable", "json"),
        default="human-readable",
        help="json: no live output, one JSON object with the result at the end",
    )
    run.add_argument(
        "--verbose", action="store_true", help="show the whole session log, not only output"
    )
    run.set_defaults(handler=_run_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run, check and summarise Open Job Description job templates.",
        epilog="Exit codes: 0 success, 1 job failed or canceled or invalid template, "
        "2 bad usage. Ctrl-C cancels gracefully; a second Ctrl-C kills.",
    )
    from .sessions._version import version

    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_parser(commands)
    check = commands.add_parser("check", help="validate a job or environment template")
    check.add_argument("template", help="template file or job bundle directory")
    check.add_argument(
        "--environment",
        "--env",
        action="append",
        default=[],
        metavar="FILE",
        help="also check that the job runs with this environment template (repeatable)",
    )
    check.set_defaults(handler=_check_command)
    summary = commands.add_parser("summary", help="describe the job a template makes")
    _add_template_inputs(summary)
    summary.set_defaults(handler=_summary_command)
    return parser


# ---- entry point -----------------------------------------------------------------------------


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


class _RunnerWarnings(logging.Handler):
    """The package's own warnings and errors, one line each on stderr.

    A session's records are left out: they belong to an action, whose log (and the output
    above) already holds them.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "session_id"):
            return
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        print(f"{PROG}: {record.levelname.lower()}: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _runner_warnings_on_stderr() -> Iterator[None]:
    logger = logging.getLogger("openjd_notebook")
    handler = _RunnerWarnings(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to sys.exit)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits for --help (0) and for syntax errors (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        with _runner_warnings_on_stderr():
            code: int = args.handler(args)
    except (UsageError, ParameterError, SelectionError, OSError) as error:
        _error(str(error))
        return 2
    except (TemplateError, JobsError) as error:
        _error(str(error))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
