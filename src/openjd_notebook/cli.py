"""The ``openjd-notebook`` command: run, check and summarise OpenJD job templates from a shell.

It takes ``openjd run`` 0.8's options, so a script written for ``openjd`` works with the
command name changed. Exit codes, with ``openjd``'s for the same case in brackets:

- 0: success [0];
- 1: the job failed or was canceled, or a template is invalid [1];
- 2: the command line cannot be used: an unknown option, a malformed ``-p``, an unreadable
  file, an unknown parameter, step or extension, bad ``--tasks`` [2 for argparse's own errors,
  1 for the rest];
- 130 (128 + SIGINT) or 143 (128 + SIGTERM): an interrupt canceled the run [1].

Every input is checked before the run starts, so a usage error never leaves a half run behind.
Modules are imported by the command that needs them: ``check`` never loads the runner.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import itertools
import json
import logging
import os
import queue
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

if TYPE_CHECKING:
    from .cli_output import Reporter
    from .jobs.results import JobResult
    from .jobs.runner import JobRun
    from .jobs.selection import TasksSpec
    from .jobs.template import Template
    from .sessions import PathMappingRule

__all__ = [
    "UsageError",
    "build_parser",
    "console_main",
    "main",
    "parse_job_params",
    "parse_tasks",
]

PROG = "openjd-notebook"
OUTPUT_FORMATS = ("human-readable", "json", "yaml")
TIMESTAMP_FORMATS = ("relative", "local", "utc")
_NAME_VALUE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.DOTALL)
_FILTER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FILE_PREFIX = "file://"
_ENDED = "ended"
_POLL_S = 0.5
_SIGNAL_EXIT_BASE = 128  # the shell's convention: a process ended by signal N exits 128 + N


class UsageError(Exception):
    """A value on the command line that cannot be used; the command exits with code 2."""


# ---- reading -p, --tasks, -tp and the files they name ----------------------------------------


def _read_document(text: str, what: str) -> Any:
    """The parsed content of a JSON or YAML file named as ``file://PATH`` or ``PATH``.

    Only a regular file of a bounded size is read (never a FIFO or a device), and YAML with
    more aliases than a template could need is refused (see ``jobs.input_files``).
    """
    from .jobs.errors import InputFileError
    from .jobs.input_files import read_document

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


def parse_task_params(arguments: Sequence[str]) -> list[dict[str, Any]]:
    """``-tp NAME=VALUE`` options as the one task they name, as ``openjd run`` reads them."""
    task: dict[str, Any] = {}
    for argument in arguments:
        match = _NAME_VALUE.match(argument.strip())
        if match is None:
            raise UsageError(f"--task-param {argument!r}: expected NAME=VALUE")
        name = match.group("name")
        if name in task:
            raise UsageError(f"--task-param {name!r} is given more than once")
        task[name] = match.group("value")
    return [task]


def _tasks_option(args: argparse.Namespace) -> TasksSpec | None:
    if args.task_params:
        return parse_task_params(args.task_params)
    return parse_tasks(args.tasks) if args.tasks is not None else None


# ---- templates and the extensions they may use ------------------------------------------------


def _load_template(path: str) -> Template:
    from .jobs.template import Template

    try:
        return Template.load(path)
    except OSError as error:
        raise UsageError(f"cannot read template {path!r}: {error.strerror or error}") from None


def _load_environment(path: str) -> Template:
    template = _load_template(path)
    if template.kind != "environment":
        raise UsageError(f"--environment {path!r} is a job template, not an environment template")
    return template


def _accepted_extensions(text: str | None) -> frozenset[str] | None:
    """``--extensions A,B`` as names; None (every extension) when the option is not given."""
    if text is None:
        return None
    from openjd.model.v2023_09 import ExtensionName

    supported = [name.value for name in ExtensionName]
    names = frozenset(part.strip().upper() for part in text.split(",") if part.strip())
    unknown = sorted(names.difference(supported))
    if unknown:
        raise UsageError(
            f"--extensions: unknown extension(s) {', '.join(unknown)}; "
            f"the supported ones are {','.join(supported)}"
        )
    return names


def _check_extensions(templates: Sequence[Template], accepted: frozenset[str] | None) -> None:
    """A ``TemplateError`` at its ``extensions`` line for a template that uses one not given."""
    if accepted is None:
        return
    from .jobs._template_text import problem_at
    from .jobs.errors import TemplateError

    for template in templates:
        refused = [name for name in template.extensions if name not in accepted]
        if refused:
            message = (
                f"the template uses {', '.join(refused)}, which --extensions does not accept "
                f"(accepted: {','.join(sorted(accepted)) or 'none'})"
            )
            first_line = template.first_line if template.line_numbers else None
            problem = problem_at(template.text, ["extensions"], message, first_line)
            raise TemplateError([problem], template.source)


# ---- loading and checking every input before a run ------------------------------------------


class RunInputs(NamedTuple):
    """Everything ``run`` needs, read and checked."""

    template: Template
    parameters: Mapping[str, Any]
    environments: tuple[Template, ...]
    tasks: TasksSpec | None
    path_mapping_rules: tuple[PathMappingRule, ...]


def _path_mapping_rules(value: str | None) -> tuple[PathMappingRule, ...]:
    from .jobs.path_mapping import PathMappingError, load_path_mapping_rules

    try:
        return tuple(load_path_mapping_rules(value))
    except PathMappingError as error:
        raise UsageError(f"--path-mapping-rules: {error}") from None


def _read_run_inputs(args: argparse.Namespace) -> RunInputs:
    """Templates, values and rules, read and checked; ``start_job`` checks the rest (the job
    these values create and the tasks selected) before anything starts."""
    accepted = _accepted_extensions(args.extensions)
    template = _load_template(args.template)
    environments = tuple(_load_environment(path) for path in args.environment)
    _check_extensions([template, *environments], accepted)
    parameters = parse_job_params(args.job_param)
    tasks = _tasks_option(args)
    rules = _path_mapping_rules(args.path_mapping_rules)
    return RunInputs(template, parameters, environments, tasks, rules)


# ---- Ctrl-C and SIGTERM ------------------------------------------------------------------------


class _Interrupt(NamedTuple):
    signal: int
    force: bool


@contextlib.contextmanager
def _interrupts(put: Callable[[_Interrupt], None]) -> Iterator[None]:
    """SIGINT and SIGTERM become queued cancel requests: the first graceful, then forced."""
    from .jobs.interrupts import interrupts_as_requests

    presses = itertools.count()

    def request_for(signum: int) -> Callable[[bool], None]:
        return lambda _: put(_Interrupt(signum, next(presses) > 0))

    with (
        interrupts_as_requests(request_for(signal.SIGINT), (signal.SIGINT,)),
        interrupts_as_requests(request_for(signal.SIGTERM), (signal.SIGTERM,)),
    ):
        yield


def _wait(run: JobRun, requests: queue.SimpleQueue[object], notice: Callable[[str], None]) -> int:
    """Block until the run ends, turning queued interrupts into cancel requests; returns the
    last interrupting signal, 0 when none came."""
    interrupted = 0
    while not run.done():
        try:
            request = requests.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if not isinstance(request, _Interrupt):
            break  # the run's end event: its result follows at once
        interrupted = request.signal
        force = request.force
        notice("Killing the running actions..." if force else "Canceling (Ctrl-C again to kill)...")
        run.cancel(force=force)
    run.join()  # the end event comes just before the run's last bookkeeping
    return interrupted


def _exit_code(result: JobResult, interrupted: int) -> int:
    if result.ok:
        return 0
    if interrupted and result.state == "canceled":
        return _SIGNAL_EXIT_BASE + interrupted
    return 1


# ---- commands --------------------------------------------------------------------------------


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a command imports and reads its inputs.

    Start-up creates a few hundred thousand objects that all live until the process ends
    (openjd-model's classes most of all); collecting them again and again costs about 5% of a
    short job. A run itself goes on with the collector as it was.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _reporter(args: argparse.Namespace) -> Reporter:
    from .cli_output import DocumentReporter, HumanReporter

    if args.output != "human-readable":
        return DocumentReporter(sys.stdout, args.output, keep_workdir=args.preserve)
    return HumanReporter(
        sys.stdout,
        workers=args.workers,
        verbose=args.verbose,
        keep_workdir=args.preserve,
        timestamps=args.timestamp_format,
    )


def _executor(args: argparse.Namespace) -> Any:
    """The Dask executor for --cluster, None for a local run; ClusterError when unusable."""
    if args.cluster is None:
        if args.nodes is not None:
            raise UsageError("--nodes needs --cluster (a local run takes --workers)")
        return None
    from .jobs.dask_executor import executor_for_cluster

    return executor_for_cluster(args.cluster, args.nodes)


def _run_command(args: argparse.Namespace) -> int:
    with _collector_paused():
        from .jobs.events import Event, RunEnded
        from .jobs.runner import start_job

        inputs = _read_run_inputs(args)
        executor = _executor(args)
        reporter = _reporter(args)
    requests: queue.SimpleQueue[object] = queue.SimpleQueue()

    def on_end(event: Event) -> None:
        if isinstance(event, RunEnded):
            requests.put(_ENDED)  # wakes the main loop without waiting for its poll

    with (
        executor if executor is not None else contextlib.nullcontext(),
        reporter,
        _interrupts(requests.put),
    ):
        run = start_job(
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
            hash_budget=args.hash_budget,
            on_event=[reporter, on_end],
            runs_root=args.runs_root,
            executor=executor,
        )
        interrupted = _wait(run, requests, reporter.notice)
        result = run.wait()
        reporter.finish(result)
    return _exit_code(result, interrupted)


def _check_command(args: argparse.Namespace) -> int:
    with _collector_paused():
        return _check(args)


def _check(args: argparse.Namespace) -> int:
    from .cli_text import print_document
    from .jobs.errors import ParameterError, TemplateError

    try:
        accepted = _accepted_extensions(args.extensions)
        template = _load_template(args.template)
        environments = [_load_environment(path) for path in args.environment]
        _check_extensions([template, *environments], accepted)
        _check_together(template, environments)
    except (TemplateError, ParameterError) as error:
        print_document(sys.stdout, args.output, {"status": "error", "message": str(error)})
        return 1
    together = f" with {len(environments)} environment template(s)" if environments else ""
    message = f"Template at '{args.template}' passes validation checks{together}."
    print_document(sys.stdout, args.output, {"status": "success", "message": message})
    return 0


def _check_together(template: Template, environments: Sequence[Template]) -> None:
    """What running the job with these environment templates would refuse before it starts:
    parameter definitions that clash, and a second wrap layer (RFC 0008)."""
    from openjd.model.v2023_09 import EnvironmentTemplate, JobTemplate

    from .jobs.parameters import merged_definitions
    from .jobs.wrap_layers import check_wrap_layers

    if template.kind != "job" or not environments:
        return
    models = [env.model for env in environments if isinstance(env.model, EnvironmentTemplate)]
    job_template = template.model
    assert isinstance(job_template, JobTemplate)
    merged_definitions(job_template, models)
    check_wrap_layers(job_template, models)


def _summary_command(args: argparse.Namespace) -> int:
    with _collector_paused():
        return _summary(args)


def _summary(args: argparse.Namespace) -> int:
    from .cli_text import print_document, summary_document, summary_text

    accepted = _accepted_extensions(args.extensions)
    template = _load_template(args.template)
    environments = tuple(_load_environment(path) for path in args.environment)
    _check_extensions([template, *environments], accepted)
    parameters = parse_job_params(args.job_param)
    summary = template.summary(parameters, environments=environments)
    if args.step is not None and args.step not in (step.name for step in summary.steps):
        names = ", ".join(step.name for step in summary.steps)
        raise UsageError(f"The job has no step named {args.step!r}. Its steps are: {names}.")
    if args.output == "human-readable":
        print(summary_text(summary, args.step))
    else:
        print_document(sys.stdout, args.output, summary_document(summary, args.step))
    return 0


# ---- the parser ------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _byte_size(text: str) -> int:
    from .jobs.manifests import parse_byte_size

    try:
        return parse_byte_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more seconds, not {text}")
    return value


class _TemplateHelp(argparse.Action):
    """``run TEMPLATE --help``: the options, and the parameters that template takes."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        path = getattr(namespace, "template", None)
        if path is None:
            parser.print_help()
            parser.exit()
        from .cli_text import template_help
        from .jobs.errors import JobsError

        try:
            template = _load_template(path)
        except (UsageError, JobsError) as error:
            parser.exit(2 if isinstance(error, UsageError) else 1, f"{PROG}: error: {error}\n")
        print(template_help(template, parser.format_help()))
        parser.exit()


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        choices=OUTPUT_FORMATS,
        default="human-readable",
        help="human-readable (the default), or one JSON or YAML document at the end",
    )
    parser.add_argument(
        "--extensions",
        metavar="NAMES",
        help="comma-separated OpenJD extensions the templates may use (default: all that are "
        "supported); a template that declares another one is refused",
    )


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
    _add_common_options(parser)


def _add_task_selection(run: argparse.ArgumentParser) -> None:
    # As in `openjd run`: one way to choose the tasks at a time.
    choice = run.add_mutually_exclusive_group()
    choice.add_argument(
        "-tp",
        "--task-param",
        action="append",
        dest="task_params",
        metavar="NAME=VALUE",
        help="run the one task with these task parameter values (once per task parameter)",
    )
    choice.add_argument(
        "--tasks",
        metavar="SPEC",
        help="tasks of the selected step: 'Frame=1-5', inline JSON '[{\"Frame\": 1}]', "
        "or a JSON/YAML file holding such a list",
    )
    choice.add_argument(
        "--max-tasks",
        "--maximum-tasks",
        type=int,
        metavar="N",
        help="run the first N tasks of the selected step (0 or less: all)",
    )


def _add_run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run", help="run a job locally", description="Run a job locally.", add_help=False
    )
    run.add_argument(
        "-h",
        "--help",
        action=_TemplateHelp,
        help="show this help; after a template path, also the job parameters it takes",
    )
    _add_template_inputs(run)
    run.add_argument("--step", help="run only this step (and, by default, its dependencies)")
    run.add_argument(
        "--run-dependencies",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --step, also run the steps it depends on first (default: yes; "
        "`openjd run` defaults to no)",
    )
    _add_task_selection(run)
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
        "--hash-budget",
        type=_byte_size,
        metavar="SIZE",
        help="hash at most SIZE (e.g. 64G, the default) of the PATH parameters declared "
        "dataFlow IN/OUT; beyond it, size and modification time only",
    )
    run.add_argument(
        "--timestamp-format",
        choices=TIMESTAMP_FORMATS,
        help="prefix each output line with its time: since the run started, local or UTC "
        "(default: no prefix)",
    )
    run.add_argument(
        "--verbose", action="store_true", help="show the whole session log, not only output"
    )
    run.set_defaults(handler=_run_command)


def _add_check_parser(commands: Any) -> None:
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
    _add_common_options(check)
    check.set_defaults(handler=_check_command)


def _add_summary_parser(commands: Any) -> None:
    summary = commands.add_parser("summary", help="describe the job a template makes")
    _add_template_inputs(summary)
    summary.add_argument("--step", help="describe only this step")
    summary.set_defaults(handler=_summary_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run, check and summarise Open Job Description job templates; compare and "
        "rerun recorded runs.",
        epilog="Exit codes: 0 success, 1 job failed or canceled or invalid template, "
        "2 bad usage, 130 canceled by Ctrl-C (143 by SIGTERM). Ctrl-C cancels gracefully; "
        "a second Ctrl-C kills.",
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_parser(commands)
    _add_check_parser(commands)
    _add_summary_parser(commands)
    from .cli_experiments import add_experiment_parsers

    add_experiment_parsers(commands)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show the version and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from .sessions._version import version  # the wheel's metadata: one source

        print(f"{parser.prog} {version}")
        parser.exit()


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


def _failure(args: argparse.Namespace, message: str, code: int) -> int:
    _error(message)
    if getattr(args, "output", "human-readable") != "human-readable":
        # A program reading the document still gets one, as from `openjd --output json`.
        from .cli_text import print_document

        print_document(sys.stdout, args.output, {"status": "error", "message": message})
    return code


def _error_exit_code(error: Exception) -> int | None:
    """2 for a value on the command line that cannot be used, 1 for a template or run error,
    None for an error that is a bug (it propagates)."""
    from .jobs.errors import JobsError, ParameterError
    from .jobs.selection import SelectionError

    if isinstance(error, (UsageError, ParameterError, SelectionError, OSError)):
        return 2
    return 1 if isinstance(error, JobsError) else None


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
    except KeyboardInterrupt:
        _error("interrupted")
        return _SIGNAL_EXIT_BASE + signal.SIGINT
    except Exception as error:
        exit_code = _error_exit_code(error)
        if exit_code is None:
            raise
        return _failure(args, str(error), exit_code)
    return code


def console_main() -> NoReturn:
    """The ``openjd-notebook`` console script and ``python -m openjd_notebook``.

    The process ends as soon as the command has: exit handlers run and output is flushed, but
    the interpreter's teardown of every module object (about 40 ms, openjd-model's classes
    most of all) is skipped. A thread still running gets the usual exit, which waits for it.
    """
    code = main()
    main_thread = threading.main_thread()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not main_thread):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    console_main()
