"""Wrap actions (RFC 0008, the WRAP_ACTIONS extension).

An environment that defines ``onWrapEnvEnter``, ``onWrapTaskRun`` and ``onWrapEnvExit`` runs
those hooks *instead of* the onEnter/onExit of every environment entered after it and the
onRun of every task, typically to run them inside a container. A hook sees the action it
replaces as ``WrappedAction.*`` symbols, resolved in the scope that action would have had
(its own ``let`` bindings and embedded files), never in the hook's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openjd.model import SymbolTable

from ._resolve import resolve_args, resolve_cancelation, resolve_timeout
from ._types import ActionModel, EnvironmentModel

__all__ = [
    "WRAP_HOOKS",
    "WrapHook",
    "WrappedTarget",
    "defines_wrap_hooks",
    "wrap_hook",
    "wrapped_action_symbols",
]

WrapHook = Literal["onWrapEnvEnter", "onWrapTaskRun", "onWrapEnvExit"]
WRAP_HOOKS: tuple[WrapHook, ...] = ("onWrapEnvEnter", "onWrapTaskRun", "onWrapEnvExit")


def wrap_hook(environment: EnvironmentModel, hook: WrapHook) -> ActionModel | None:
    """The environment's ``hook`` action, or None when it defines none."""
    script = environment.script
    if script is None:
        return None
    action: ActionModel | None = getattr(script.actions, hook, None)
    return action


def defines_wrap_hooks(environment: EnvironmentModel) -> bool:
    return any(wrap_hook(environment, hook) is not None for hook in WRAP_HOOKS)


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
