"""Environment-variable changes made by environments, and how they combine."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass

__all__ = [
    "EnvironmentVariableChange",
    "EnvironmentVariableSetChange",
    "EnvironmentVariableUnsetChange",
    "SessionVariables",
    "SimplifiedEnvironmentVariableChanges",
]


@dataclass(frozen=True)
class EnvironmentVariableSetChange:
    name: str
    value: str


@dataclass(frozen=True)
class EnvironmentVariableUnsetChange:
    name: str


EnvironmentVariableChange = EnvironmentVariableSetChange | EnvironmentVariableUnsetChange


class SimplifiedEnvironmentVariableChanges:
    """The net effect of one environment's changes: the last change to a name wins.

    A value of ``None`` means the variable is unset for later actions.
    """

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._changes: dict[str, str | None] = dict(initial or {})

    def simplify_ordered_changes(self, changes: Sequence[EnvironmentVariableChange]) -> None:
        for change in changes:
            self.record(change)

    def record(self, change: EnvironmentVariableChange) -> None:
        if isinstance(change, EnvironmentVariableSetChange):
            self._changes[change.name] = change.value
        else:
            self._changes[change.name] = None

    def apply_to_environment(self, env: MutableMapping[str, str | None]) -> None:
        env.update(self._changes)

    @property
    def changes(self) -> dict[str, str | None]:
        return dict(self._changes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SimplifiedEnvironmentVariableChanges):
            return NotImplemented
        return self._changes == other._changes

    def __repr__(self) -> str:
        return f"SimplifiedEnvironmentVariableChanges({self._changes!r})"


class SessionVariables:
    """Every variable the session's environments defined, in definition order: what a wrap
    hook sees as ``WrappedAction.Environment`` (RFC 0008).

    Unlike the variables actions run with, it keeps what an exited environment defined; only
    ``openjd_unset_env`` removes a name.
    """

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def define(self, values: Mapping[str, str]) -> None:
        self._values.update(values)

    def record(self, change: EnvironmentVariableChange) -> None:
        if isinstance(change, EnvironmentVariableSetChange):
            self._values[change.name] = change.value
        else:
            self._values.pop(change.name, None)

    def as_list(self) -> tuple[str, ...]:
        return tuple(f"{name}={value}" for name, value in self._values.items())
