"""One action of a session, from setup to its final status.

``ActionSetup`` says what to run; ``ActionRun`` prepares it (embedded files, ``let``
bindings, resolution), launches it, interprets its stdout messages and reports a frozen
``ActionStatus`` for every change.
"""

from __future__ import annotations

import contextlib
import errno
import shlex
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from openjd.model import SymbolTable

from . import _embedded_files, _launch
from ._env_vars import (
    EnvironmentVariableChange,
    EnvironmentVariableSetChange,
    EnvironmentVariableUnsetChange,
)
from ._logging import LogContent, SessionLog
from ._process import (
    ActionProcess,
    CancelReason,
    CancelRequest,
    LaunchSpec,
    ProcessOutcome,
    split_long_line,
)
from ._protocol import (
    Fail,
    Malformed,
    Progress,
    SetEnv,
    SetLogLevel,
    Status,
    UnsetEnv,
    parse_output_line,
)
from ._redaction import Redactor
from ._resolve import ResolvedAction, apply_let_bindings, resolve_action
from ._setup import ActionKind, ActionSetup, EnvChangeRecorder
from ._status import ActionStatus
from ._types import ActionState
from ._users import PosixSessionUser
from ._worker import SerialWorker
from ._wrap import WrappedTarget, wrapped_action_symbols

__all__ = ["ActionRun"]


_SHELL_STATUS: Mapping[int, tuple[int, str]] = MappingProxyType(
    {errno.ENOENT: (127, "not found"), errno.EACCES: (126, "Permission denied")}
)
"""How /bin/sh reports a command it cannot exec: exit status and message."""


class _SetupError(Exception):
    """The action could not be prepared; it fails before its process starts."""


def _exit_code_text(pid: int, code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"Process pid {pid} exited with code: {code} (killed by {name})"
    return f"Process pid {pid} exited with code: {code} (unsigned) / {hex(code)} (hex)"


class ActionRun:
    """Runs one ``ActionSetup``; ``publish`` and ``finish`` report back to the session."""

    def __init__(
        self,
        *,
        setup: ActionSetup,
        number: int,
        tag: str,
        log: SessionLog,
        redactor: Redactor,
        working_directory: Path,
        files_directory: Path,
        sudo_user: PosixSessionUser | None,
        redaction_enabled: bool,
        record_env_change: EnvChangeRecorder | None,
        publish: Callable[[ActionStatus], None],
        finish: Callable[[ActionRun, ActionStatus], None],
        pump_worker: SerialWorker,
    ) -> None:
        self.number = number
        self._setup = setup
        self._tag = tag
        self._log = log
        self._redactor = redactor
        self._working_directory = working_directory
        self._files_directory = files_directory
        self._sudo_user = sudo_user
        self._redaction_enabled = redaction_enabled
        self._record_env = record_env_change
        self._publish = publish
        self._finish_callback = finish
        self._pump_worker = pump_worker
        self._lock = threading.Lock()
        self._status = ActionStatus(ActionState.RUNNING)
        self._process: ActionProcess | None = None
        self._early_cancels: list[CancelRequest] = []
        self._finished = threading.Event()
        self._script_path: Path | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Prepare and launch on the calling thread; the rest happens on the pump thread."""
        setup = self._setup
        if setup.failure is not None:
            self._log.error(setup.failure)
            self._end(replace(self._status, state=ActionState.FAILED, fail_message=setup.failure))
            return
        if setup.action is None and setup.argv is None:
            self._end(ActionStatus(ActionState.SUCCESS))
            return
        if setup.wrapped is not None:
            try:
                self._inject_wrapped(setup.wrapped)
            except (ValueError, OSError) as error:
                # As the reference does for a session-level failure: one FAILED report.
                message = self._redactor.redact(f"{setup.wrapped.failure_lead}: {error}")
                self._log.error(message)
                self._end(replace(self._status, state=ActionState.FAILED, fail_message=message))
                return
        try:
            spec = self._prepare()
        except _SetupError as error:
            # Reported like the action's own openjd_fail message, then as the failure.
            message = self._redactor.redact(str(error))
            self._update(fail_message=message)
            self._log.info(f"openjd_fail: {message}", LogContent.EXCEPTION_INFO)
            self._end(replace(self._status, state=ActionState.FAILED))
            return
        self._launch(spec)

    def _prepare(self) -> LaunchSpec:
        setup = self._setup
        assert setup.symtab is not None and setup.env is not None
        self._log.subsection_banner("Phase: Setup")
        try:
            resolved = self._resolve(setup, setup.symtab)
        except (ValueError, OSError) as error:
            raise _SetupError(str(error)) from error
        return self._launch_spec(resolved, setup.env)

    def _inject_wrapped(self, target: WrappedTarget) -> None:
        """Resolve the wrapped action in its own scope and hand its values to the hook."""
        # A copy: the wrapped action's files and let bindings must not reach the hook.
        scope = SymbolTable(source=target.symtab)
        self._prepare_scope(
            scope,
            title="the wrapped action",
            let=target.let,
            files=target.files,
            file_prefix=target.file_prefix,
            file_scope=target.file_scope,
        )
        symtab = self._setup.symtab
        assert symtab is not None
        for name, value in wrapped_action_symbols(target, scope).items():
            symtab[name] = value

    def _prepare_scope(
        self,
        symtab: SymbolTable,
        *,
        title: str,
        let: Sequence[str] | None,
        files: Sequence[Any] | None,
        file_prefix: str,
        file_scope: str,
    ) -> None:
        """Embedded file paths first (``let`` may use them), then ``let``, then the files'
        contents (their ``data`` may use the bindings)."""
        allocated = _embedded_files.allocate_files(
            files, symbol_prefix=file_prefix, scope=file_scope, directory=self._files_directory
        )
        if allocated:
            self._log.info(f"Allocating embedded file paths for {title}.")
            for file in allocated:
                self._log.info(f"Mapping: {file.symbol} -> {file.path}", LogContent.FILE_PATH)
        _embedded_files.bind_symbols(allocated, symtab)
        apply_let_bindings(let, symtab)
        if allocated:
            self._log.info(f"Writing embedded files to disk for {title}.")
            group = self._sudo_user.group if self._sudo_user else None
            _embedded_files.write_files(allocated, symtab, group)
            for file in allocated:
                self._log.info(f"Wrote: {file.model.name} -> {file.path}", LogContent.FILE_PATH)

    def _resolve(self, setup: ActionSetup, symtab: SymbolTable) -> ResolvedAction:
        if setup.argv is not None:
            return ResolvedAction(list(setup.argv), setup.timeout_s, None)
        self._prepare_scope(
            symtab,
            title=setup.title,
            let=setup.let,
            files=setup.files,
            file_prefix=setup.file_prefix,
            file_scope=setup.file_scope,
        )
        assert setup.action is not None
        return resolve_action(
            setup.action,
            symtab,
            default_notify_period_s=setup.default_notify_period_s,
            default_timeout_s=setup.default_timeout_s,
        )

    def _launch_spec(self, resolved: ResolvedAction, env: Mapping[str, str | None]) -> LaunchSpec:
        argv = resolved.argv
        process_env = _launch.process_environment(env, self._tag)
        user = self._sudo_user
        if user is not None:
            self._script_path = self._files_directory / f"action-{self.number}.sh"
            skipped = _launch.write_sudo_script(
                self._script_path, argv, env, self._tag, self._working_directory, user
            )
            for name in skipped:
                self._log.warning(f"Skipping environment variable with invalid name: {name}")
            argv = _launch.sudo_argv(user, self._script_path)
        return LaunchSpec(
            argv=argv,
            env=process_env,
            cwd=self._working_directory,
            tag=self._tag,
            notify_period_s=resolved.notify_period_s,
            timeout_s=resolved.timeout_s,
            cancel_info_path=self._working_directory / "cancel_info.json",
            sudo_user=user.user if user else None,
        )

    def _launch(self, spec: LaunchSpec) -> None:
        self._log.subsection_banner("Phase: Running action")
        # A secret the action is about to declare is not registered yet: mask it here.
        command = Redactor.mask_redacted_env_requests(shlex.join(spec.argv))
        self._log.info(f"Running command {command}", LogContent.PROCESS_CONTROL)
        process = ActionProcess(spec, self._log, self._on_lines, self._on_exit, self._redactor)
        try:
            pid = process.start()
        except OSError as error:
            if error.errno == errno.ENOEXEC:
                # Not a binary and no "#!" line: run it with the shell, as exec in sh does.
                self._launch(replace(spec, argv=["/bin/sh", *spec.argv]))
                return
            self._remove_script()
            self._fail_to_start(spec.argv[0], error)
            return
        self._log.info(f"Command started as pid: {pid}", LogContent.PROCESS_CONTROL)
        self._log.info("Output:")
        with self._lock:
            self._process = process
            early, self._early_cancels = self._early_cancels, []
            self._status = replace(self._status, pid=pid, started_at=datetime.now(timezone.utc))
            status = self._status
        self._publish(status)
        for request in early:
            process.cancel(request)
        process.start_pump(self._pump_worker)

    def _fail_to_start(self, command: str, error: OSError) -> None:
        shell_status = _SHELL_STATUS.get(error.errno or 0)
        if shell_status is None:
            message = f"Process failed to start: {error}"
            self._log.error(message, LogContent.PROCESS_CONTROL)
            self._end(replace(self._status, state=ActionState.FAILED, fail_message=message))
            return
        # The reference starts every action through `exec` in /bin/sh, so programs written
        # for it see a started action that exits 127 (126) with the shell's message.
        code, reason = shell_status
        self._publish(self._status)
        self._log.log_lines([f"exec: {command}: {reason}"], LogContent.COMMAND_OUTPUT)
        self._log.info(
            f"Process could not start ({command}: {reason}); exited with code: {code}",
            LogContent.PROCESS_CONTROL,
        )
        status = replace(self._status, state=ActionState.FAILED, exit_code=code)
        self._end(replace(status, launch_error=f"{command}: {reason}"))

    # ---- requests ----------------------------------------------------------------------

    def cancel(self, request: CancelRequest) -> None:
        """Forward a cancel request; one that arrives before the launch waits for it."""
        with self._lock:
            if request.reason in (CancelReason.USER, CancelReason.CLEANUP):
                self._status = replace(self._status, cancel_requested=True)
            process = self._process
            if process is None:
                self._early_cancels.append(request)
                return
        process.cancel(request)

    def is_current_thread(self) -> bool:
        process = self._process
        return process is not None and process.is_pump_thread()

    def wait_finished(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    # ---- stdout messages (pump thread) ---------------------------------------------------

    def _on_lines(self, lines: list[str]) -> None:
        """Log a batch of output; a message's callback runs before its line is logged."""
        plain: list[str] = []
        for line in lines:
            # Split here, not in the pump: a secret declared earlier in this batch is known
            # by now, so no cut falls inside it.
            for record in split_long_line(line, self._redactor):
                message = parse_output_line(record, redactions_enabled=self._redaction_enabled)
                if message is None:
                    plain.append(record)
                    continue
                self._log.log_lines(plain, LogContent.COMMAND_OUTPUT)
                plain = []
                logged = self._apply_message(message, record)
                self._log.log_lines([logged], LogContent.COMMAND_OUTPUT)
        self._log.log_lines(plain, LogContent.COMMAND_OUTPUT)

    def _apply_message(self, message: Any, line: str) -> str:
        """Act on one stdout message; returns the line as it should be logged."""
        if isinstance(message, Progress):
            self._update(progress=message.percent)
        elif isinstance(message, Status):
            # Status and fail messages travel far (task tables, records, events, saved
            # notebooks): they are masked like the log, which the reference does not do.
            self._update(status_message=self._redactor.redact(message.message))
        elif isinstance(message, Fail):
            self._update(fail_message=self._redactor.redact(message.message))
        elif isinstance(message, SetEnv):
            self._set_env(message)
        elif isinstance(message, UnsetEnv):
            self._record_env_change(EnvironmentVariableUnsetChange(message.name))
        elif isinstance(message, SetLogLevel):
            self._log.runtime_level = message.level
        elif isinstance(message, Malformed):
            return self._malformed(message, line)
        return line

    def _update(self, publish: bool = True, **changes: Any) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)
            status = self._status
        if publish:
            self._publish(status)

    def _set_env(self, message: SetEnv) -> None:
        if message.redacted:
            self._redactor.add(message.value, message.raw_payload)
            if not self._redaction_enabled:
                self._log.warning(
                    "Received openjd_redacted_env message but REDACTED_ENV_VARS extension is "
                    "not enabled"
                )
                return
        self._record_env_change(EnvironmentVariableSetChange(message.name, message.value))

    def _record_env_change(self, change: EnvironmentVariableChange) -> None:
        # The session decides where a change goes: only an environment's own actions may
        # change the variables later actions run with.
        if self._record_env is not None:
            self._record_env(change)
        else:
            self._log.debug(f"Ignoring environment change {change.name} outside an environment")

    def _malformed(self, message: Malformed, line: str) -> str:
        if message.secret_payload:
            self._redactor.add(message.secret_payload)
        in_environment = self._setup.kind in (ActionKind.ENTER, ActionKind.EXIT)
        if message.fails_action and (in_environment or not message.env_scoped):
            fail_message = self._redactor.redact(message.fail_message or message.error)
            # A malformed env command ends the action with one FAILED report; a near-miss
            # is reported as it is seen, like any other openjd_fail.
            self._update(fail_message=fail_message, publish=not message.env_scoped)
            self.cancel(CancelRequest(CancelReason.PROTOCOL_ERROR, mark_failed=True, force=True))
        return f"{line} -- ERROR: {message.error}"

    # ---- the end -------------------------------------------------------------------------

    def _on_exit(self, outcome: ProcessOutcome) -> None:
        self._remove_script()
        code = outcome.exit_code
        if code is not None and self._status.pid is not None:
            self._log.info(_exit_code_text(self._status.pid, code), LogContent.PROCESS_CONTROL)
        state = self._final_state(outcome)
        self._end(replace(self._status, state=state, exit_code=code, ended_at=outcome.ended_at))

    @staticmethod
    def _final_state(outcome: ProcessOutcome) -> ActionState:
        reason = outcome.cancel_reason
        if reason is None:
            return ActionState.SUCCESS if outcome.exit_code == 0 else ActionState.FAILED
        if outcome.mark_failed or reason == CancelReason.PROTOCOL_ERROR:
            return ActionState.FAILED
        return ActionState.TIMEOUT if reason == CancelReason.TIMEOUT else ActionState.CANCELED

    def _end(self, status: ActionStatus) -> None:
        if status.ended_at is None and status.state != ActionState.RUNNING:
            status = replace(status, ended_at=datetime.now(timezone.utc))
        with self._lock:
            self._status = status
        try:
            self._finish_callback(self, status)
        finally:
            self._finished.set()

    def _remove_script(self) -> None:
        if self._script_path is not None:
            with contextlib.suppress(OSError):
                self._script_path.unlink()
