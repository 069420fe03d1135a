"""``Session``: the public state machine that runs environments and tasks."""

from __future__ import annotations

import logging
import platform
import shutil
import sys
import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from openjd.model import (
    JobParameterValues,
    RevisionExtensions,
    SpecificationRevision,
    SymbolTable,
    TaskParameterSet,
)
from openjd.model import version as model_version

from . import _process_tree
from ._action import ActionRun
from ._env_vars import (
    EnvironmentVariableChange,
    SessionVariables,
    SimplifiedEnvironmentVariableChanges,
)
from ._lifeline import Lifeline
from ._logging import LogContent, SessionLog
from ._path_mapping import PathMappingRule, path_mapping_file_text
from ._process import CancelReason, CancelRequest
from ._redaction import Redactor
from ._setup import ActionKind, ActionSetup, EnvChangeRecorder
from ._status import ActionStatus, SessionCallbackType
from ._symbols import build_symbol_table, expr_host_rules, resolved_base_entries
from ._types import (
    ENV_ACTION_DEFAULT_NOTIFY_PERIOD_SECONDS,
    ENV_EXIT_DEFAULT_TIMEOUT_SECONDS,
    TASK_RUN_DEFAULT_NOTIFY_PERIOD_SECONDS,
    ActionState,
    EnvironmentIdentifier,
    EnvironmentModel,
    SessionState,
    StepScriptModel,
)
from ._users import PosixSessionUser, SessionUser
from ._version import version as _package_version
from ._workdir import create_working_directories, default_root, remove_tree
from ._worker import SerialWorker
from ._wrap import WrapHook, find_wrapper, hook_setup, refuse_second_wrap_layer

__all__ = ["Session"]


_DEFAULT_EXTENSIONS = RevisionExtensions(
    spec_rev=SpecificationRevision.v2023_09, supported_extensions=[]
)


def _abandon(
    tag_prefix: str,
    directory: Path,
    retain: bool,
    worker: SerialWorker,
    lifeline: Lifeline | None,
) -> None:
    """Last resort when a session is dropped or Python exits without ``cleanup()``."""
    worker.shutdown()
    _process_tree.kill_tree(tag_prefix, deadline_s=2.0)
    if not retain:
        shutil.rmtree(directory, ignore_errors=True)
    if lifeline is not None:
        lifeline.release()


class Session:
    """Runs the actions of one OpenJD session: environments entered and exited in order,
    and tasks in between, each as a process in a private working directory.

    Every action call returns once the process has started; follow it through the
    ``callback``, ``action_status`` or :meth:`wait`.
    """

    def __init__(
        self,
        *,
        session_id: str,
        job_parameter_values: JobParameterValues,
        job_name: str | None = None,
        path_mapping_rules: list[PathMappingRule] | None = None,
        retain_working_dir: bool = False,
        user: SessionUser | None = None,
        callback: SessionCallbackType | None = None,
        os_env_vars: dict[str, str] | None = None,
        session_root_directory: Path | None = None,
        revision_extensions: RevisionExtensions = _DEFAULT_EXTENSIONS,
        log_handlers: Sequence[logging.Handler] = (),
    ) -> None:
        self._session_id = session_id
        self._state = SessionState.ENDED
        self._job_parameter_values = dict(job_parameter_values or {})
        self._job_name = job_name
        self._rules = sorted(
            path_mapping_rules or [], key=lambda rule: -rule.source_component_count()
        )
        self._retain_working_dir = retain_working_dir
        self._user = user
        self._callback = callback
        self._revision_extensions = revision_extensions
        self._redactor = Redactor()
        self._log = SessionLog(session_id, self._redactor, handlers=log_handlers)
        self._lock = threading.Condition(threading.Lock())
        self._status: ActionStatus | None = None
        self._action: ActionRun | None = None
        self._started_actions = 0
        self._delivered_actions = 0
        self._ending_only = False
        self._environments: dict[EnvironmentIdentifier, EnvironmentModel] = {}
        self._entered: list[EnvironmentIdentifier] = []
        self._env_changes: dict[EnvironmentIdentifier, SimplifiedEnvironmentVariableChanges] = {}
        self._env_step_names: dict[EnvironmentIdentifier, str] = {}
        self._env_bases: dict[EnvironmentIdentifier, dict[str, Any]] = {}
        self._session_variables = SessionVariables()
        self._tag_prefix = f"{uuid.uuid4().hex}/"
        self._host_rules = expr_host_rules(self._rules)
        self._rules_file: Path | None = None
        # Actions run one at a time, so one worker thread pumps them all.
        self._pump_worker = SerialWorker(f"openjd-pump-{session_id}")
        self._log_host_info()
        self._log.info(f"Initializing Open Job Description Session: {session_id}")
        self._directories = self._create_directories(session_root_directory)
        self._os_env_vars: dict[str, str | None] = {
            **(os_env_vars or {}),
            "OPENJD_SESSION_WORKING_DIR": str(self.working_directory),
        }
        self._lifeline = self._start_lifeline()
        self._finalizer = weakref.finalize(
            self,
            _abandon,
            self._tag_prefix,
            self.working_directory,
            retain_working_dir,
            self._pump_worker,
            self._lifeline,
        )
        self._state = SessionState.READY

    # ---- construction helpers -----------------------------------------------------------

    def _log_host_info(self) -> None:
        for line in (
            f"openjd.model Library Version: {model_version}",
            f"openjd_notebook.sessions Library Version: {_package_version}",
            f"Installed at: {Path(__file__).parent}",
            f"Python Interpreter: {sys.executable}",
            f"Python Version: {sys.version}",
            f"Platform: {platform.platform()}",
        ):
            self._log.info(line, LogContent.HOST_INFO)

    def _create_directories(self, root: Path | None) -> Any:
        try:
            if root is None:
                root = default_root()
            elif not Path(root).is_dir():
                raise RuntimeError(
                    f"Ensure that the root directory ({root}) exists and is a directory."
                )
            group = self._user.group if isinstance(self._user, PosixSessionUser) else None
            directories = create_working_directories(Path(root), group, self._log)
        except (OSError, RuntimeError) as error:
            self._log.error(f"ERROR creating Session Working Directory: {error}")
            raise RuntimeError(str(error)) from error
        self._log.info(f"Session Working Directory: {directories.working}", LogContent.FILE_PATH)
        self._log.info(
            f"Session's Embedded Files Directory: {directories.files}", LogContent.FILE_PATH
        )
        return directories

    def _start_lifeline(self) -> Lifeline | None:
        sudo_user = self._sudo_user()
        try:
            return Lifeline.start(
                self._tag_prefix,
                self.working_directory,
                retain=self._retain_working_dir,
                sudo_user=sudo_user.user if sudo_user else None,
            )
        except OSError as error:
            self._log.warning(
                f"Could not start the session's lifeline ({error}): if this process dies, "
                "processes started by the session may outlive it."
            )
            return None

    # ---- properties ----------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def working_directory(self) -> Path:
        directories = getattr(self, "_directories", None)
        if directories is None:
            raise RuntimeError("The Session's working directory was not created.")
        return Path(directories.working)

    @property
    def files_directory(self) -> Path:
        return Path(self._directories.files)

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def action_status(self) -> ActionStatus | None:
        return self._status

    @property
    def cancel_requested(self) -> bool:
        """Whether the running action has been asked to cancel and has not ended yet.

        ``state`` stays RUNNING meanwhile, exactly as in ``openjd.sessions``; this (and
        ``action_status.cancel_requested``) tells a cancel in progress from a normal run.
        """
        with self._lock:
            status = self._status
            running = self._action is not None
        return running and status is not None and status.cancel_requested

    @property
    def environments_entered(self) -> tuple[EnvironmentIdentifier, ...]:
        return tuple(self._entered)

    def get_enabled_extensions(self) -> list[str]:
        return list(self._revision_extensions.extensions)

    def __repr__(self) -> str:
        return f"<Session {self._session_id!r} state={self._state.value}>"

    # ---- context manager ---------------------------------------------------------------

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()

    # ---- environments --------------------------------------------------------------------

    def enter_environment(
        self,
        *,
        environment: EnvironmentModel,
        identifier: EnvironmentIdentifier | None = None,
        os_env_vars: dict[str, str] | None = None,
        step_name: str | None = None,
        resolved_symtab: Any | None = None,
    ) -> EnvironmentIdentifier:
        """Start entering ``environment``; returns the identifier to exit it with."""
        if self._state != SessionState.READY:
            raise RuntimeError("Session must be in the READY state to enter an Environment.")
        if identifier is not None and identifier in self._environments:
            raise RuntimeError(
                f"Environment {identifier} has already been entered in this Session."
            )
        refuse_second_wrap_layer(environment, self._environments.values())
        identifier = identifier or f"{self._session_id}:{uuid.uuid4().hex}"
        self._log.section_banner(f"Entering Environment: {environment.name}")
        self._environments[identifier] = environment
        self._entered.append(identifier)
        self._env_changes[identifier] = SimplifiedEnvironmentVariableChanges()
        if step_name is not None:
            self._env_step_names[identifier] = step_name
        setup = self._environment_setup(identifier, ActionKind.ENTER, os_env_vars, resolved_symtab)
        self._run(setup)
        return identifier

    def exit_environment(
        self,
        *,
        identifier: EnvironmentIdentifier,
        os_env_vars: dict[str, str] | None = None,
        keep_session_running: bool = False,
        resolved_symtab: Any | None = None,
    ) -> None:
        """Start exiting the most recently entered environment."""
        if self._state not in (SessionState.READY, SessionState.READY_ENDING):
            raise RuntimeError(
                "Session must be in the READY or READY_ENDING state to exit an Environment."
            )
        if identifier not in self._environments:
            raise RuntimeError(f"Cannot exit unknown Environment with identifier {identifier}")
        if self._entered[-1] != identifier:
            raise RuntimeError(
                f"Cannot exit Environment {identifier}. Must exit Environment "
                f"{self._entered[-1]} first."
            )
        if not keep_session_running:
            self._ending_only = True
        environment = self._environments[identifier]
        self._log.section_banner(f"Exiting Environment: {environment.name}")
        # The environment's own variables still apply to its onExit.
        setup = self._environment_setup(identifier, ActionKind.EXIT, os_env_vars, resolved_symtab)
        self._entered.pop()
        del self._environments[identifier]
        self._run(setup)

    def _environment_setup(
        self,
        identifier: EnvironmentIdentifier,
        kind: ActionKind,
        os_env_vars: Mapping[str, str] | None,
        resolved_symtab: Any | None,
    ) -> ActionSetup:
        environment = self._environments[identifier]
        script = environment.script
        action = None
        if script is not None:
            action = script.actions.onEnter if kind == ActionKind.ENTER else script.actions.onExit
        setup = ActionSetup(
            kind=kind,
            title=f"Environment: {environment.name}",
            action=action,
            let=script.let if script else None,
            files=script.embeddedFiles if script else None,
            file_prefix="Env.File",
            file_scope=identifier,
            environment_id=identifier,
            default_notify_period_s=ENV_ACTION_DEFAULT_NOTIFY_PERIOD_SECONDS,
            default_timeout_s=ENV_EXIT_DEFAULT_TIMEOUT_SECONDS if kind == ActionKind.EXIT else None,
        )
        try:
            if resolved_symtab is not None:
                self._env_bases[identifier] = resolved_base_entries(resolved_symtab)
            base = self._env_bases.get(identifier)
            symtab = self._symbol_table(None, self._env_step_names.get(identifier), base)
            if kind == ActionKind.ENTER and environment.variables:
                self._declare_variables(identifier, environment.variables, symtab)
        except ValueError as error:
            return setup.failed(str(error))
        setup = setup.ready(symtab, self._action_env(os_env_vars))
        hook: WrapHook = "onWrapEnvEnter" if kind == ActionKind.ENTER else "onWrapEnvExit"
        return self._wrapped(setup, hook, {"WrappedEnv.Name": environment.name}, base, identifier)

    def _declare_variables(
        self, identifier: EnvironmentIdentifier, variables: Mapping[str, Any], symtab: SymbolTable
    ) -> None:
        environment = self._environments[identifier]
        try:
            resolved = {name: value.resolve(symtab=symtab) for name, value in variables.items()}
        except ValueError as error:
            raise ValueError(
                f"Failed to resolve the environment variables for {environment.name}: {error}"
            ) from error
        for name, value in resolved.items():
            self._log.info(f"Setting: {name}={value}", LogContent.PARAMETER_INFO)
        self._env_changes[identifier] = SimplifiedEnvironmentVariableChanges(resolved)
        self._session_variables.define(resolved)

    # ---- wrap actions (RFC 0008) -----------------------------------------------------------

    def _wrapper(
        self, hook: WrapHook, exclude: EnvironmentIdentifier | None = None
    ) -> tuple[EnvironmentIdentifier, EnvironmentModel] | None:
        entered = [(identifier, self._environments[identifier]) for identifier in self._entered]
        return find_wrapper(entered, hook, exclude)

    def _wrapped(
        self,
        setup: ActionSetup,
        hook: WrapHook,
        names: Mapping[str, str],
        base: Mapping[str, Any] | None,
        exclude: EnvironmentIdentifier | None = None,
    ) -> ActionSetup:
        """``setup`` as it runs: unchanged, or the wrapping environment's ``hook`` in its
        place (RFC 0008)."""
        wrapper = self._wrapper(hook, exclude)
        if wrapper is None or setup.action is None or setup.failure is not None:
            return setup
        wrapper_id = wrapper[0]
        # The hook resolves in session scope plus its own environment's enter-time context,
        # never in the wrapped action's (a task's Task.Param.* is not the hook's to read).
        hook_base = {**(base or {}), **self._env_bases.get(wrapper_id, {})}
        try:
            hook_symtab = self._symbol_table(None, self._env_step_names.get(wrapper_id), hook_base)
        except ValueError as error:
            return setup.failed(str(error))
        return hook_setup(
            setup,
            hook,
            wrapper,
            hook_symtab=hook_symtab,
            names=names,
            environment=self._session_variables.as_list(),
        )

    def _env_change_recorder(self, setup: ActionSetup) -> EnvChangeRecorder | None:
        """Where the action's ``openjd_env`` requests go.

        An environment's onEnter/onExit (or the hook in its place) defines variables for
        later actions. A task cannot (How Jobs Are Run), but what a wrapped task's hook
        defines is kept for later hooks' WrappedAction.Environment, as the conformance
        suite (and openjd-rs) expect.
        """
        session_variables = self._session_variables
        if setup.kind in (ActionKind.ENTER, ActionKind.EXIT):
            changes = self._env_changes.get(setup.environment_id or "")

            def record(change: EnvironmentVariableChange) -> None:
                if changes is not None:
                    changes.record(change)
                session_variables.record(change)

            return record
        if setup.kind == ActionKind.TASK and setup.wrapped is not None:
            return session_variables.record
        return None

    # ---- tasks and subprocesses ---------------------------------------------------------

    def run_task(
        self,
        *,
        step_script: StepScriptModel,
        task_parameter_values: TaskParameterSet,
        os_env_vars: dict[str, str] | None = None,
        log_task_banner: bool = True,
        step_name: str | None = None,
        resolved_symtab: Any | None = None,
    ) -> None:
        """Start running one task of a step.

        ``step_name`` is required while an entered environment wraps tasks (RFC 0008): it
        is the hook's ``WrappedStep.Name``.
        """
        if self._state != SessionState.READY:
            raise RuntimeError("Session must be in the READY state to run a task.")
        wrapper = self._wrapper("onWrapTaskRun")
        if wrapper is not None and step_name is None:
            raise ValueError(
                "run_task() requires step_name when a wrap environment "
                f"('{wrapper[1].name}') is active: RFC 0008's WrappedStep.Name "
                "has no value to render without it."
            )
        if log_task_banner:
            self._log.section_banner("Running Task")
        self._log_task_parameters(task_parameter_values)
        setup = ActionSetup(
            kind=ActionKind.TASK,
            title="Task",
            action=step_script.actions.onRun,
            let=step_script.let,
            files=step_script.embeddedFiles,
            file_prefix="Task.File",
            file_scope="task",
            default_notify_period_s=TASK_RUN_DEFAULT_NOTIFY_PERIOD_SECONDS,
        )
        try:
            base = resolved_base_entries(resolved_symtab) if resolved_symtab is not None else None
            symtab = self._symbol_table(task_parameter_values, step_name, base)
        except ValueError as error:
            self._run(setup.failed(str(error)))
            return
        setup = setup.ready(symtab, self._action_env(os_env_vars))
        names = {"WrappedStep.Name": step_name} if step_name is not None else {}
        self._run(self._wrapped(setup, "onWrapTaskRun", names, base))

    def _log_task_parameters(self, values: TaskParameterSet) -> None:
        if not values:
            return
        self._log.info("Parameter values:", LogContent.PARAMETER_INFO)
        for name, value in values.items():
            self._log.info(f"{name}({value.type.value}) = {value.value}", LogContent.PARAMETER_INFO)

    def run_subprocess(
        self,
        *,
        command: str,
        args: Sequence[str] | None = None,
        timeout: int | None = None,
        os_env_vars: dict[str, str] | None = None,
        use_session_env_vars: bool = True,
        log_banner_message: str | None = None,
    ) -> None:
        """Start an ad-hoc command in the session (arguments are used exactly as given)."""
        if self._state != SessionState.READY:
            raise RuntimeError(
                "Session must be in the READY state to run a subprocess. "
                f"Current state: {self._state.value}"
            )
        if timeout is not None and (not isinstance(timeout, int) or timeout < 1):
            raise ValueError("timeout must be a positive integer")
        if not isinstance(command, str) or not command.strip():
            raise ValueError("command must be a non-empty string")
        if log_banner_message:
            self._log.section_banner(log_banner_message)
        env = self._action_env(os_env_vars, include_environments=use_session_env_vars)
        setup = ActionSetup(
            kind=ActionKind.SUBPROCESS,
            title="Subprocess",
            argv=[command, *(args or [])],
            timeout_s=timeout,
        )
        self._run(setup.ready(SymbolTable(), env))

    # ---- cancel, wait, cleanup -----------------------------------------------------------

    def cancel_action(
        self, *, time_limit: timedelta | None = None, mark_action_failed: bool = False
    ) -> None:
        """Ask the running action to stop with its own cancelation method; returns at once.

        ``time_limit`` caps the notify period of NOTIFY_THEN_TERMINATE.
        """
        with self._lock:
            action = self._action
            if self._state != SessionState.RUNNING or not action:
                raise RuntimeError("No actions are running")
            # The state stays RUNNING until the action ends, as in openjd.sessions: programs
            # poll `while session.state == RUNNING` after a cancel.
            if self._status is not None:
                self._status = replace(self._status, cancel_requested=True)
        limit = time_limit.total_seconds() if time_limit is not None else None
        action.cancel(CancelRequest(CancelReason.USER, limit, mark_action_failed))

    def wait(self, timeout: float | None = None) -> ActionStatus:
        """Block until the latest action has ended and its callback has run; return its status.

        Raises ``TimeoutError`` when ``timeout`` seconds pass first, and ``RuntimeError``
        when no action was ever started.
        """
        with self._lock:
            if self._started_actions == 0:
                raise RuntimeError("No action has been started in this Session.")
            done = self._lock.wait_for(
                lambda: self._delivered_actions == self._started_actions, timeout
            )
            if not done:
                raise TimeoutError(f"The action did not end within {timeout} seconds.")
            assert self._status is not None
            return self._status

    def cleanup(self) -> None:
        """End the session: cancel a running action, stop every process the session
        started, and delete the working directory (unless ``retain_working_dir``)."""
        with self._lock:
            if self._state == SessionState.ENDED:
                return
            action = self._action
        if action is not None:
            self._log.info("Canceling the running action before cleanup.")
            action.cancel(CancelRequest(CancelReason.CLEANUP, force=True))
            if not action.is_current_thread():
                action.wait_finished()
        _process_tree.kill_tree(self._tag_prefix)
        self._pump_worker.shutdown()
        self._finalizer.detach()
        if not self._retain_working_dir:
            self._log.section_banner("Session Cleanup")
            self._log.info(f"Deleting working directory: {self.working_directory}")
            sudo_user = self._sudo_user()
            remove_tree(self.working_directory, sudo_user.user if sudo_user else None, self._log)
        if self._lifeline is not None:
            self._lifeline.release()
        with self._lock:
            self._state = SessionState.ENDED
            self._lock.notify_all()

    # ---- shared action plumbing --------------------------------------------------------

    def _sudo_user(self) -> PosixSessionUser | None:
        user = self._user
        if isinstance(user, PosixSessionUser) and not user.is_process_user():
            return user
        return None

    def _symbol_table(
        self,
        task_parameters: TaskParameterSet | None,
        step_name: str | None,
        base: Mapping[str, Any] | None,
    ) -> SymbolTable:
        return build_symbol_table(
            working_directory=str(self.working_directory),
            job_parameters=self._job_parameter_values,
            task_parameters=task_parameters,
            rules=self._rules,
            host_rules=self._host_rules,
            rules_file=str(self._write_rules_file()),
            job_name=self._job_name,
            step_name=step_name,
            base=base,
        )

    def _write_rules_file(self) -> Path:
        """Write the rules file once; the rules never change during a session."""
        path = self._rules_file
        if path is not None and path.exists():
            return path
        path = self.files_directory / "path_mapping_rules.json"
        try:
            path.write_text(path_mapping_file_text(self._rules), encoding="utf-8")
            sudo_user = self._sudo_user()
            path.chmod(0o640 if sudo_user else 0o600)
            if sudo_user is not None:
                shutil.chown(path, group=sudo_user.group)
        except OSError as error:
            raise ValueError(
                f"Could not write the path mapping rules file in {self.files_directory}: {error}"
            ) from error
        self._rules_file = path
        return path

    def _action_env(
        self, os_env_vars: Mapping[str, str] | None, include_environments: bool = True
    ) -> dict[str, str | None]:
        env: dict[str, str | None] = {**self._os_env_vars, **(os_env_vars or {})}
        if include_environments:
            for identifier in self._entered:
                self._env_changes[identifier].apply_to_environment(env)
        return env

    def _run(self, setup: ActionSetup) -> None:
        with self._lock:
            self._started_actions += 1
            number = self._started_actions
            self._state = SessionState.RUNNING
            self._status = ActionStatus(ActionState.RUNNING)
        run = ActionRun(
            setup=setup,
            number=number,
            tag=f"{self._tag_prefix}{number}",
            log=self._log,
            redactor=self._redactor,
            working_directory=self.working_directory,
            files_directory=self.files_directory,
            sudo_user=self._sudo_user(),
            redaction_enabled=self._redaction_enabled(),
            record_env_change=self._env_change_recorder(setup),
            publish=self._publish,
            finish=self._finish,
            pump_worker=self._pump_worker,
        )
        with self._lock:
            self._action = run
        run.start()

    def _redaction_enabled(self) -> bool:
        extensions = self._revision_extensions
        return (
            extensions.spec_rev != SpecificationRevision.v2023_09
            or "REDACTED_ENV_VARS" in extensions.extensions
        )

    def _publish(self, status: ActionStatus) -> None:
        """A RUNNING update from the action (start, progress, status, fail message)."""
        with self._lock:
            self._status = status
        self._notify(status)

    def _finish(self, run: ActionRun, status: ActionStatus) -> None:
        """The action ended: update the state first, so the callback already sees it."""
        with self._lock:
            self._status = status
            if self._action is run:
                self._action = None
            if status.state != ActionState.SUCCESS:
                self._ending_only = True
            if self._state != SessionState.ENDED:
                self._state = SessionState.READY_ENDING if self._ending_only else SessionState.READY
        self._notify(status)
        with self._lock:
            self._delivered_actions = max(self._delivered_actions, run.number)
            self._lock.notify_all()

    def _notify(self, status: ActionStatus) -> None:
        # Like the reference: a callback object that is falsy is not called.
        if not self._callback:
            return
        try:
            self._callback(self._session_id, status)
        except Exception as error:
            # A failing callback must not break the session or the action.
            self._log.error(f"Exception in action callback: {error!r}", LogContent.EXCEPTION_INFO)
