"""What an action is to run and in which context: built by the session, run by ``ActionRun``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from openjd.model import SymbolTable

from ._env_vars import EnvironmentVariableChange

if TYPE_CHECKING:
    from ._wrap import WrappedTarget

__all__ = ["ActionKind", "ActionSetup", "EnvChangeRecorder"]


class ActionKind(str, Enum):
    ENTER = "enter"
    EXIT = "exit"
    TASK = "task"
    SUBPROCESS = "subprocess"


@dataclass(frozen=True)
class ActionSetup:
    """What to run and with which context; built by the session, consumed by ``ActionRun``."""

    kind: ActionKind
    title: str
    action: Any | None = None
    let: Sequence[str] | None = None
    files: Sequence[Any] | None = None
    file_prefix: str = "Task.File"
    file_scope: str = "task"
    environment_id: str | None = None
    default_notify_period_s: int = 30
    default_timeout_s: int | None = None
    argv: Sequence[str] | None = None
    """A literal command line (``run_subprocess``), used instead of ``action``."""
    timeout_s: int | None = None
    symtab: SymbolTable | None = None
    env: Mapping[str, str | None] | None = None
    failure: str | None = None
    """Set when the session could not prepare the action; it fails before starting."""
    wrapped: WrappedTarget | None = None
    """Set when ``action`` is a wrap hook (RFC 0008) running in place of this action;
    ``kind`` and ``environment_id`` still describe the wrapped action."""

    def ready(self, symtab: SymbolTable, env: Mapping[str, str | None]) -> ActionSetup:
        return replace(self, symtab=symtab, env=env)

    def failed(self, message: str) -> ActionSetup:
        return replace(self, failure=message)


EnvChangeRecorder = Callable[[EnvironmentVariableChange], None]
"""Where an action's ``openjd_env``/``openjd_unset_env`` requests go."""
