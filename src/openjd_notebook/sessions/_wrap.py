"""Wrap actions (RFC 0008, the WRAP_ACTIONS extension).

An environment that defines ``onWrapEnvEnter``, ``onWrapTaskRun`` and ``onWrapEnvExit`` runs
those hooks *instead of* the onEnter/onExit of every environment entered after it and the
onRun of every task, typically to run them inside a container. A hook sees the action it
replaces as ``WrappedAction.*`` symbols, resolved in the scope that action would have had
(its own ``let`` bindings and embedded files), never in the hook's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openjd.model import SymbolTable

from ..wrap_hooks import WRAP_HOOKS, WrapHook, defines_wrap_hooks, wrap_hook
from ._resolve import resolve_args, resolve_cancelation, resolve_timeout
from ._setup import ActionKind, ActionSetup
from ._types import (
    ENV_ACTION_DEFAULT_NOTIFY_PERIOD_SECONDS,
    ENV_EXIT_DEFAULT_TIMEOUT_SECONDS,
    ActionModel,
    EnvironmentModel,
)

__all__ = [
    "WRAP_HOOKS",
    "WrapHook",
    "WrappedTarget",
    "defines_wrap_hooks",
    "find_wrapper",
    "hook_setup",
    "refuse_second_wrap_layer",
    "wrap_hook",
    "wrapped_action_symbols",
]


@dataclass(frozen=True)
class WrappedTarget:
    """The action a hook runs in place of, and the scope that action would have run in."""

    action: ActionModel
    symtab: SymbolTable
    """The wrapped action's own scope, before its embedded files and ``let`` bindings."""
    let: Sequence[str] | None
    files: Sequence[Any] | None
    file_prefix: str
    file_scope: str
    default_notify_period_s: int
    """What NOTIFY_THEN_TERMINATE would have given the wrapped action (120 on a task)."""
    environment: tuple[str, ...]
    """``WrappedAction.Environment``: the session-defined variables as ``KEY=value``."""
    names: Mapping[str, str] = field(default_factory=dict)
    """``WrappedEnv.Name`` or ``WrappedStep.Name``."""
    failure_lead: str = "Failed to resolve the wrapped action"
    """How a failure to resolve the wrapped action is introduced in its fail message."""


def wrapped_action_symbols(target: WrappedTarget, scope: SymbolTable) -> dict[str, Any]:
    """The ``WrappedAction.*`` values, resolved in ``scope`` (the wrapped action's own, with
    its files and ``let`` bindings applied). Raises ValueError when the action does not
    resolve, as it would have failed unwrapped.

    ``Timeout`` and the cancelation values are typed ``int?``/``string?``: None (an EXPR
    null) when the wrapped action sets none, so a hook can forward them field for field.
    """
    action = target.action
    mode, period = resolve_cancelation(action.cancelation, scope, target.default_notify_period_s)
    return {
        "WrappedAction.Command": action.command.resolve(symtab=scope),
        "WrappedAction.Args": resolve_args(action.args, scope),
        "WrappedAction.Environment": list(target.environment),
        "WrappedAction.Timeout": resolve_timeout(action.timeout, scope),
        "WrappedAction.Cancelation.Mode": mode,
        "WrappedAction.Cancelation.NotifyPeriodInSeconds": period,
        **target.names,
    }


def refuse_second_wrap_layer(
    environment: EnvironmentModel, entered: Iterable[EnvironmentModel]
) -> None:
    """RFC 0008: at most one entered environment may define wrap hooks."""
    if not defines_wrap_hooks(environment):
        return
    for existing in entered:
        if defines_wrap_hooks(existing):
            raise RuntimeError(
                "RFC 0008: a session may have at most one Environment defining wrap hooks "
                f"(onWrapEnvEnter / onWrapTaskRun / onWrapEnvExit). Environment "
                f"'{existing.name}' already defines wrap hooks; cannot also enter "
                f"'{environment.name}'."
            )


def find_wrapper(
    entered: Sequence[tuple[str, EnvironmentModel]], hook: WrapHook, exclude: str | None = None
) -> tuple[str, EnvironmentModel] | None:
    """The innermost entered environment whose ``hook`` replaces actions, if any.

    ``exclude`` is the environment being entered or exited: an environment's own onEnter
    and onExit are never wrapped by its own hooks.
    """
    for identifier, environment in reversed(entered):
        if identifier != exclude and wrap_hook(environment, hook) is not None:
            return identifier, environment
    return None


def hook_setup(
    setup: ActionSetup,
    hook: WrapHook,
    wrapper: tuple[str, EnvironmentModel],
    *,
    hook_symtab: SymbolTable,
    names: Mapping[str, str],
    environment: tuple[str, ...],
) -> ActionSetup:
    """The wrapping environment's ``hook`` set up to run in place of ``setup``.

    ``kind`` and ``environment_id`` stay the wrapped action's (where its ``openjd_env``
    requests go); the wrapped action itself travels as the ``WrappedTarget``.
    """
    wrapper_id, wrap_env = wrapper
    script = wrap_env.script
    assert script is not None and setup.action is not None and setup.symtab is not None
    if setup.kind == ActionKind.TASK:
        subject = "Task action"
    else:
        wrapped_name = "onEnter" if setup.kind == ActionKind.ENTER else "onExit"
        subject = f"{wrapped_name} action of {names.get('WrappedEnv.Name')}"
    target = WrappedTarget(
        action=setup.action,
        symtab=setup.symtab,
        let=setup.let,
        files=setup.files,
        file_prefix=setup.file_prefix,
        file_scope=setup.file_scope,
        default_notify_period_s=setup.default_notify_period_s,
        environment=environment,
        names=dict(names),
        failure_lead=f"Failed to resolve the wrapped {subject} for {wrap_env.name}'s {hook}",
    )
    return ActionSetup(
        kind=setup.kind,
        title=f"Environment: {wrap_env.name} ({hook})",
        action=wrap_hook(wrap_env, hook),
        let=script.let,
        files=script.embeddedFiles,
        file_prefix="Env.File",
        file_scope=wrapper_id,
        environment_id=setup.environment_id,
        default_notify_period_s=ENV_ACTION_DEFAULT_NOTIFY_PERIOD_SECONDS,
        default_timeout_s=ENV_EXIT_DEFAULT_TIMEOUT_SECONDS if hook == "onWrapEnvExit" else None,
        symtab=hook_symtab,
        env=setup.env,
        wrapped=target,
    )
