"""``%%openjd_template``, ``%openjd_run`` and friends.

The magics hold per-shell state (the runs started in this shell, for ``%openjd_wait`` and
``%openjd_cancel``) on the ``Magics`` instance, never in module globals. Lines of magics that
can carry OpenJD format strings are not variable-expanded: ``{{Param.X}}`` stays as written.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from IPython.core.completer import SimpleCompletion
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool, Float, Int, TraitError, Unicode

from ..jobs import JobResult, JobRun, Template, runs, start_job
from ..jobs.compare import RunComparison, compare_runs, record_dir, verify_outputs
from ..jobs.interrupts import interrupts_as_requests
from ..jobs.records import load_run
from ..jobs.rerun import rerun_arguments
from .arguments import RUN_FLAGS, VALUE_OPTIONS, at_least, parse_assignment, run_arguments, unquote
from .completion import complete_run_line, last_word
from .runs_view import RunListing, list_runs
from .settings import Settings, SettingsMagic
from .views import ViewOptions, in_kernel, make_view

__all__ = ["OpenJDMagics", "stopped"]

_DEFAULT_TEMPLATE_NAME = "job_template"
# IPython's display machinery asks an object for this before anything else: set on a result
# whose summary the cell already shows, it makes ``Out[]`` show nothing more.
_DISPLAY_HOOK = "_ipython_display_"


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[list[int]]:
    """Hold Ctrl-C (the stop button) while the final summary is drawn; they are counted."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGINT, lambda number, _frame: received.append(number))
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def stopped(result: JobResult, out: str | None) -> KeyboardInterrupt:
    """The error a stopped run ends its cell with: still a ``KeyboardInterrupt`` (so Run All
    stops), shown by IPython as one line instead of a traceback into this module."""
    counts = result.state_counts()
    parts = []
    if counts.get("success"):
        parts.append(f"{counts['success']} done")
    canceled = counts.get("canceled", 0)
    parts.append(f"{canceled} task{'' if canceled == 1 else 's'} canceled")
    parts += [f"{counts[state]} {state}" for state in ("failed", "timeout") if counts.get(state)]
    if counts.get("not_run"):
        parts.append(f"{counts['not_run']} not run")
    where = f"result in `{out}`" if out else "the result: `r = %openjd_wait`"
    error = KeyboardInterrupt(f"stopped: {', '.join(parts)}; {where}")
    setattr(error, "_render_traceback_", lambda: [f"KeyboardInterrupt: {error}"])  # noqa: B010
    return error


@magics_class
class OpenJDMagics(Magics):
    """Run OpenJD job templates from notebook cells.

    Defaults are IPython config traits (``c.OpenJDMagics.cancel_grace = 5``) and can be
    changed in a session with ``%openjd_config``.
    """

    cancel_grace = Float(
        10.0,
        min=0.0,
        config=True,
        help="Seconds a canceled action may take to exit before it is killed (--cancel-grace).",
    )
    workers = Int(
        1, min=1, config=True, help="Tasks %openjd_run runs at once, one session each (--workers)."
    )
    refresh_s = Float(
        0.25, min=0.1, config=True, help="Seconds between redraws of a live dashboard."
    )
    log_tail_lines = Int(
        200, min=0, config=True, help="Lines of output a live dashboard shows (all are on disk)."
    )
    hide_protocol_lines = Bool(
        False,
        config=True,
        help="Leave openjd_progress:/openjd_status: lines out of the live output (else dimmed).",
    )
    raise_on_failure = Bool(
        False,
        config=True,
        help="A failed run raises JobFailedError (--raise), so Run All and papermill stop.",
    )
    runs_root = Unicode(
        None, allow_none=True, config=True, help="Where run records go (default ./openjd-runs)."
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self._runs: list[JobRun] = []
        self._views: dict[str, Any] = {}
        self._shown: list[JobResult] = []
        # A callable with its own docstring, so that ``%openjd_config?`` lists the values.
        configure = self.magics["line"]["openjd_config"]
        self.magics["line"]["openjd_config"] = SettingsMagic(configure, self.settings)

    @property
    def _namespace(self) -> dict[str, Any]:
        """The user's namespace (the magics are always registered on a shell)."""
        assert self.shell is not None
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    # ---- %%openjd_template -----------------------------------------------------------------

    @magic_arguments()
    @argument("name", nargs="?", default=_DEFAULT_TEMPLATE_NAME, help="variable to bind")
    @no_var_expand
    @cell_magic
    def openjd_template(self, line: str, cell: str) -> None:
        """Validate the cell (YAML or JSON) as an OpenJD template and bind it to NAME."""
        args = parse_argstring(self.openjd_template, line)
        if not args.name.isidentifier():
            raise UsageError(f"%%openjd_template: {args.name!r} is not a valid variable name")
        # A TemplateError propagates as a real exception, so "Run All" stops here, and the
        # variable keeps its previous value. The body starts on the cell's second line (the
        # first is this magic), so error lines count from 2 to match the cell as shown.
        template = Template.from_text(cell, directory=Path.cwd(), first_line=2)
        self._namespace[args.name] = template
        display(template.summary())

    # ---- %openjd_run ---------------------------------------------------------------------

    @magic_arguments()
    @run_arguments
    @no_var_expand
    @line_magic
    def openjd_run(self, line: str) -> JobResult | JobRun | None:
        """Run a job with a live dashboard, then leave its summary in the cell.

        Returns the JobResult (the JobRun with --no-block); the summary already shows it,
        so the cell shows it once. With --out VAR the result is bound to VAR instead.

        The stop button cancels gracefully (the actions' own cancelation, grace capped by
        --cancel-grace); pressing it again kills. Entered environments still exit, then
        the cell ends with a one-line KeyboardInterrupt, so Run All stops.
        """
        args = parse_argstring(self.openjd_run, line)
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"--out {args.out!r} is not a valid variable name")
        template = self._template(args.template)
        options = self._run_options(args)
        view = make_view(
            template.name,
            ViewOptions(
                refresh_s=self.refresh_s,
                log_tail_lines=self.log_tail_lines,
                quiet=args.quiet,
                blocking=not args.no_block,
                hide_protocol_lines=self.hide_protocol_lines,
            ),
        )
        executor = self._executor(args)
        subscribers = [view.handle] if executor is None else [view.handle, executor.close_on_end]
        run = start_job(template, on_event=subscribers, executor=executor, **options)
        view.bind(run)
        self._runs.append(run)
        self._views[run.run_id] = view
        if args.no_block:
            self._bind(args.out, run)
            return run if args.out is None else None
        result = self._wait(run, view, args.out)
        raise_on_failure = self.raise_on_failure if args.raise_on_failure is None else True
        if raise_on_failure and not result.ok:
            result.raise_for_state()  # JobFailedError, shown as its message alone
        if args.out is not None:
            return None
        return self._shown_already(result)

    @staticmethod
    def _executor(args: Any) -> Any:
        """The Dask executor for --cluster, None for a local run; ClusterError when unusable."""
        if args.cluster is None:
            if args.nodes is not None:
                raise UsageError("--nodes needs --cluster (a local run takes --workers)")
            return None
        if args.workers is not None:
            raise UsageError("--workers is for local runs; with --cluster, use --nodes")
        from ..jobs.dask_executor import executor_for_cluster

        return executor_for_cluster(args.cluster, args.nodes)

    def _template(self, reference: str | None) -> Template:
        reference = reference or _DEFAULT_TEMPLATE_NAME
        value = self._namespace.get(reference)
        if isinstance(value, Template):
            return value
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise UsageError(f"{reference!r} is a {type(value).__name__}, not an OpenJD Template")
        path = Path(os.fspath(value) if value is not None else reference).expanduser()
        if not path.exists():
            raise UsageError(
                f"No template named {reference!r}: not a variable holding a Template, and no "
                f"file or bundle directory at {path}. Define one with %%openjd_template."
            )
        return Template.load(path)

    def _namespace_value(self, name: str, option: str) -> Any:
        if name not in self._namespace:
            raise UsageError(f"{option} {name}: no variable named {name!r}")
        return self._namespace[name]

    def _parameters(self, args: Any) -> dict[str, Any]:
        parameters: dict[str, Any] = {}
        if args.params:
            values = self._namespace_value(args.params, "--params")
            if not isinstance(values, Mapping):
                raise UsageError(
                    f"--params {args.params}: expected a dict, got {type(values).__name__}"
                )
            parameters.update(values)
        for assignment in args.param:
            name, value = parse_assignment(assignment, "-p")
            parameters[name] = value
        return parameters

    def _environments(self, references: list[str]) -> list[Template | Path]:
        environments: list[Template | Path] = []
        for reference in references:
            value = self._namespace.get(reference)
            environments.append(value if isinstance(value, Template) else Path(reference))
        return environments

    def _run_options(self, args: Any) -> dict[str, Any]:
        tasks: Any = unquote(args.tasks) if args.tasks is not None else None
        if tasks is not None and tasks.isidentifier() and tasks in self._namespace:
            tasks = self._namespace[tasks]
        path_mapping: Any = args.path_mapping
        if path_mapping is not None and path_mapping in self._namespace:
            path_mapping = self._namespace[path_mapping]
        grace = args.cancel_grace if args.cancel_grace is not None else self.cancel_grace
        return {
            "parameters": self._parameters(args),
            "step": args.step,
            "tasks": tasks,
            "max_tasks": args.max_tasks,
            "run_dependencies": not args.no_dependencies,
            "workers": args.workers if args.workers is not None else self.workers,
            "environments": self._environments(args.env),
            "path_mapping_rules": path_mapping,
            "keep_workdir": args.keep_workdir,
            "cancel_grace": grace,
            "hash_budget": args.hash_budget,
            "runs_root": self.runs_root,
        }

    def _wait(self, run: JobRun, view: Any, out: str | None) -> JobResult:
        """Block until the run ends; the stop button cancels, a second press kills.

        The presses are counted by a signal handler and acted on here, so a second press
        can never interrupt the first one's cancel request and leave the run going.
        """
        requests: queue.SimpleQueue[bool] = queue.SimpleQueue()
        interrupted = False
        with interrupts_as_requests(requests.put):
            while not run.done():
                try:
                    force = requests.get(timeout=0.1)
                except queue.Empty:
                    continue
                interrupted = True
                run.cancel(force=force)
                view.show_cancel(force=force, grace_s=run.options.cancel_grace)
        result = run.result
        assert result is not None
        with _interrupts_deferred():
            view.finish(result)
            self._bind(out, result)
        if interrupted:
            raise stopped(result, out)
        return result

    def _bind(self, name: str | None, value: Any) -> None:
        if name is not None:
            self._namespace[name] = value

    def _shown_already(self, result: JobResult) -> JobResult:
        """The result, which ``Out[]`` of this cell will not show again: the cell's static
        summary is its display. ``_`` and ``Out`` still hold it; later cells show it as usual."""
        if in_kernel():
            result.__dict__[_DISPLAY_HOOK] = _shows_nothing
            self._shown.append(result)
        return result

    def forget_shown(self, *_: Any) -> None:
        """After each cell (IPython's ``post_run_cell``): results display normally again."""
        for result in self._shown:
            result.__dict__.pop(_DISPLAY_HOOK, None)
        self._shown.clear()

    # ---- tab completion ------------------------------------------------------------------

    def complete_run(self, context: Any) -> dict[str, Any]:
        """An IPython completion matcher for ``%openjd_run`` lines. Its matches replace every
        other matcher's, Jedi's too: the line is not Python, so Python names never fit."""
        text = context.text_until_cursor
        matches = complete_run_line(text, self._namespace, VALUE_OPTIONS, RUN_FLAGS)
        return {
            "completions": [SimpleCompletion(match, type="openjd") for match in matches],
            "matched_fragment": last_word(text),
            "suppress": bool(matches),
            "ordered": True,
        }

    # ---- runs started earlier ----------------------------------------------------------

    def _find_run(self, reference: str) -> JobRun:
        if reference:
            value = self._namespace_value(reference, "run")
            if not isinstance(value, JobRun):
                raise UsageError(f"{reference!r} is a {type(value).__name__}, not a JobRun")
            return value
        if not self._runs:
            raise UsageError("No run has been started in this session.")
        return self._runs[-1]

    @magic_arguments()
    @argument("run", nargs="?", default="", help="JobRun variable (default: the latest run)")
    @argument("--out", metavar="VAR", help="bind the JobResult to VAR instead of returning it")
    @line_magic
    def openjd_wait(self, line: str) -> JobResult | None:
        """Wait for a run (started with --no-block) and return its JobResult (or bind --out)."""
        args = parse_argstring(self.openjd_wait, line)
        run = self._find_run(args.run)
        # The run's own dashboard (in the cell that started it) is finished here, in this
        # cell, so its static summary is in place when this cell ends, not some time after.
        view = self._views.get(run.run_id) or _NoView()
        result = self._wait(run, view, args.out)
        return result if args.out is None else None

    @magic_arguments()
    @argument("run", nargs="?", default="", help="JobRun variable (default: the latest run)")
    @argument("--force", action="store_true", help="kill now instead of canceling gracefully")
    @line_magic
    def openjd_cancel(self, line: str) -> None:
        """Cancel a run: gracefully, or at once with --force."""
        args = parse_argstring(self.openjd_cancel, line)
        self._find_run(args.run).cancel(force=args.force)

    @magic_arguments()
    @argument("--root", default=None, help="records directory (default: the configured root)")
    @argument("--job", default=None, help="only runs of the job with this name")
    @argument(
        "-n", "--last", type=at_least(1), default=20, metavar="N", help="the N newest (default 20)"
    )
    @line_magic
    def openjd_runs(self, line: str) -> RunListing:
        """List past run records, newest first: times to the second, canceled tasks apart
        from failed ones, the template digest in full on hover. ``.frame`` is the DataFrame
        (``openjd_notebook.runs()`` lists every record)."""
        args = parse_argstring(self.openjd_runs, line)
        listed = runs(args.root or self.runs_root)
        if args.job is not None:
            listed = listed[listed["job_name"] == unquote(args.job)]
        return list_runs(listed.head(args.last))

    # ---- experiments ---------------------------------------------------------------------

    @magic_arguments()
    @argument("a", help="the first run: a variable holding a JobResult, or a record folder")
    @argument("b", help="the second run, the same way")
    @no_var_expand
    @line_magic
    def openjd_compare(self, line: str) -> RunComparison:
        """What changed between two runs: template (with a diff), parameters, options, tasks
        (matched by their parameters) and outputs (identical, different, new, missing)."""
        args = parse_argstring(self.openjd_compare, line)
        return compare_runs(self._record(args.a), self._record(args.b))

    @magic_arguments()
    @argument("record", help="a variable holding a JobResult, or a run's record folder")
    @argument(
        "--verify",
        action="store_true",
        help="compare the outputs with the record's: 'reproduced: N/N outputs identical' or "
        "the files that differ",
    )
    @argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a recorded job parameter value (repeatable)",
    )
    @argument("--workers", type=at_least(1), metavar="N", help="instead of the recorded count")
    @argument("--out", metavar="VAR", help="bind the new JobResult to VAR")
    @argument("--quiet", action="store_true", help="no live display, only the summary")
    @no_var_expand
    @line_magic
    def openjd_rerun(self, line: str) -> JobResult | None:
        """Run a recorded run again, with its template, parameters, environment templates,
        path mapping rules and options, and a live dashboard like %openjd_run."""
        args = parse_argstring(self.openjd_rerun, line)
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"--out {args.out!r} is not a valid variable name")
        reference = self._record(args.record)
        run_dir = record_dir(reference, "rerun")
        overrides = dict(parse_assignment(assignment, "-p") for assignment in args.param)
        changes: dict[str, Any] = {"parameters": overrides}
        if args.workers is not None:
            changes["workers"] = args.workers
        template, arguments = rerun_arguments(run_dir, changes)
        view = make_view(
            template.name,
            ViewOptions(
                refresh_s=self.refresh_s,
                log_tail_lines=self.log_tail_lines,
                quiet=args.quiet,
                hide_protocol_lines=self.hide_protocol_lines,
            ),
        )
        run = start_job(template, on_event=[view.handle], **arguments)
        view.bind(run)
        self._runs.append(run)
        self._views[run.run_id] = view
        shown = _Verifying(view, run_dir) if args.verify else view
        result = self._wait(run, shown, None)
        if isinstance(shown, _Verifying) and shown.verified is not None:
            result = shown.verified
        self._bind(args.out, result)
        return None if args.out is not None else self._shown_already(result)

    def _record(self, reference: str) -> JobResult | Path:
        value = self._namespace.get(reference)
        if isinstance(value, JobResult):
            return value
        if value is not None and isinstance(value, (str, os.PathLike)):
            return Path(value)
        return Path(unquote(reference)).expanduser()

    # ---- settings ------------------------------------------------------------------------

    @line_magic
    def openjd_config(self, line: str) -> Settings:
        """Show the settings, or change them: ``%openjd_config cancel_grace=5 workers=2``."""
        for assignment in shlex.split(line):
            name, value = parse_assignment(assignment, "%openjd_config")
            self._set_trait(name, value)
        return self.settings()

    def settings(self) -> Settings:
        """Every setting with its value, default and help."""
        traits = self.traits(config=True)
        return Settings(
            {name: getattr(self, name) for name in sorted(self.class_own_traits(config=True))},
            {name: traits[name].default() for name in self.class_own_traits(config=True)},
            {name: traits[name].help for name in self.class_own_traits(config=True)},
        )

    def _set_trait(self, name: str, value: str) -> None:
        if name not in self.class_own_traits(config=True):
            known = ", ".join(sorted(self.class_own_traits(config=True)))
            raise UsageError(f"%openjd_config: unknown setting {name!r}; settings: {known}")
        trait = self.traits()[name]
        try:
            setattr(self, name, trait.from_string(value))
        except (TraitError, ValueError) as error:
            raise UsageError(f"%openjd_config {name}={value}: {_one_line(error)}") from None

    # ---- the end -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every run of this shell (kernel shutdown or extension unload)."""
        self.abandon_runs("the kernel shut down")

    def abandon_runs(self, reason: str) -> None:
        """End every run still going because the kernel is going away, leaving each a final
        record and its view a final summary before the kernel's own shutdown kills what is
        left (it gives a few seconds)."""
        for run in self._runs:
            if run.done():
                continue
            result = run.abandon(reason, timeout=2.0)
            view = self._views.get(run.run_id)
            if view is not None and result is not None:
                with contextlib.suppress(Exception):  # a view must not block the shutdown
                    view.finish(result)


def _shows_nothing() -> None:
    """Stands in for a result's display: the cell shows its summary already."""


def _one_line(error: Exception) -> str:
    """traitlets' messages name the class and span lines; the gist is the last sentence."""
    text = " ".join(str(error).split())
    marker = " should not be "
    if marker in text:
        return "should not be " + text.split(marker, 1)[1]
    return text


class _Verifying:
    """A view whose final summary also says whether the rerun reproduced the record."""

    def __init__(self, view: Any, recorded: Path) -> None:
        self._view = view
        self._recorded = recorded
        self.verified: JobResult | None = None

    def show_cancel(self, *, force: bool, grace_s: float | None) -> None:
        self._view.show_cancel(force=force, grace_s=grace_s)

    def finish(self, result: JobResult) -> None:
        verification = verify_outputs(load_run(self._recorded), result)
        self.verified = result._with_verification(verification)
        self._view.finish(self.verified)


class _NoView:
    """``%openjd_wait`` on a run whose own dashboard already reports it."""

    def show_cancel(self, *, force: bool, grace_s: float | None) -> None:
        pass

    def finish(self, result: JobResult) -> None:
        pass
