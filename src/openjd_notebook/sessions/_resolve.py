"""Resolving an action's fields against a symbol table, through openjd-model.

Everything that interprets OpenJD format strings and EXPR values goes through the model's
own ``resolve``/``resolve_value`` and ``evaluate_let_bindings``; this module only applies the
template-schema rules for what the results mean (skipped arguments, flattened lists,
integer fields, the deferred cancelation mode).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openjd.model import SymbolTable, evaluate_let_bindings
from openjd.model.v2023_09 import CancelationMethodDeferred, CancelationMode

from ._types import ActionModel

__all__ = [
    "ResolvedAction",
    "apply_let_bindings",
    "resolve_action",
    "resolve_args",
    "resolve_cancelation",
    "resolve_timeout",
]

_NATIVE_MODULE = "openjd._openjd_rs"
_STRICT_INT = re.compile(r"[+-]?[0-9]+")
_MAX_INT_FIELD = 2**63 - 1
_MAX_ENFORCEABLE_TIMEOUT_S = 2**62 // 10**9
_MAX_LET_BINDING_LENGTH = 4096
"""Longer bindings are refused: the model's parser can overflow its native stack on them."""


@dataclass(frozen=True)
class ResolvedAction:
    argv: list[str]
    timeout_s: int | None
    notify_period_s: int | None
    """NOTIFY_THEN_TERMINATE grace period, or None when the action is TERMINATEd."""


def _expr_kind(value: Any) -> str:
    """'plain', 'null', 'list' or 'scalar' for a value that resolution returned."""
    if _NATIVE_MODULE not in sys.modules:
        return "plain"  # no EXPR value can exist before the native engine is loaded
    from openjd.expr import ExprValue, TypeCode

    if not isinstance(value, ExprValue):
        return "plain"
    if value.is_null:
        return "null"
    return "list" if value.type.type_code == TypeCode.LIST else "scalar"


def resolve_args(args: Sequence[Any] | None, symtab: SymbolTable) -> list[str]:
    """An action's arguments; EXPR nulls are skipped and EXPR lists flatten in place."""
    resolved: list[str] = []
    for arg in args or ():
        try:
            value = arg.resolve_value(symtab=symtab)
        except ValueError:
            resolved.append(arg.resolve(symtab=symtab))
            continue
        kind = _expr_kind(value)
        if kind == "list":
            resolved.extend(str(element) for element in value)
        elif kind != "null":
            resolved.append(value if isinstance(value, str) else str(value))
    return resolved


def _resolve_int_field(
    value: Any, symtab: SymbolTable, *, low: int, high: int | None, name: str
) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        if value > _MAX_INT_FIELD:
            raise ValueError(f"{name} must be at most {_MAX_INT_FIELD}, got '{value}'")
        return value
    resolved = value.resolve_value(symtab=symtab)
    if _expr_kind(resolved) == "null":
        return None
    text = str(resolved)
    bounds = f"between {low} and {high}" if high is not None else f"an integer >= {low}"
    if _STRICT_INT.fullmatch(text) is None:
        raise ValueError(f"{name} must be {bounds}, got '{text}'")
    number = int(text)
    if number < low or (high is not None and number > high) or number > _MAX_INT_FIELD:
        raise ValueError(f"{name} must be {bounds}, got '{number}'")
    return number


def resolve_cancelation(
    cancelation: Any, symtab: SymbolTable, default_period_s: int
) -> tuple[str | None, int | None]:
    """The effective cancelation as ``(mode, notify period)``.

    ``mode`` is ``"TERMINATE"``, ``"NOTIFY_THEN_TERMINATE"`` or None when the action declares
    none (or a deferred mode resolved to null, which drops the whole object). The period is
    set only for NOTIFY_THEN_TERMINATE, with the schema default when the field is omitted.
    """
    if cancelation is None:
        return None, None
    mode = cancelation.mode
    period_field = getattr(cancelation, "notifyPeriodInSeconds", None)
    if isinstance(cancelation, CancelationMethodDeferred):
        mode_value = cancelation.mode.resolve_value(symtab=symtab)
        if _expr_kind(mode_value) == "null":
            return None, None
        mode = str(mode_value)
    period = _resolve_int_field(period_field, symtab, low=1, high=600, name="notifyPeriodInSeconds")
    if mode in (CancelationMode.TERMINATE, CancelationMode.TERMINATE.value):
        if period is not None:
            raise ValueError("a TERMINATE cancelation does not accept notifyPeriodInSeconds")
        return CancelationMode.TERMINATE.value, None
    if mode in (CancelationMode.NOTIFY_THEN_TERMINATE, CancelationMode.NOTIFY_THEN_TERMINATE.value):
        return (
            CancelationMode.NOTIFY_THEN_TERMINATE.value,
            default_period_s if period is None else period,
        )
    raise ValueError(
        f"cancelation mode must resolve to TERMINATE, NOTIFY_THEN_TERMINATE or null; got '{mode}'"
    )


def resolve_timeout(timeout: Any, symtab: SymbolTable) -> int | None:
    """The action's own timeout in seconds, or None when it sets none (or it resolves to null)."""
    return _resolve_int_field(timeout, symtab, low=1, high=None, name="timeout")


def resolve_action(
    action: ActionModel,
    symtab: SymbolTable,
    *,
    default_notify_period_s: int,
    default_timeout_s: int | None = None,
) -> ResolvedAction:
    """Resolve command, arguments, timeout and cancelation. Raises ValueError when invalid."""
    argv = [action.command.resolve(symtab=symtab), *resolve_args(action.args, symtab)]
    timeout = resolve_timeout(action.timeout, symtab)
    if timeout is None:
        timeout = default_timeout_s
    elif timeout > _MAX_ENFORCEABLE_TIMEOUT_S:
        timeout = None
    _mode, period = resolve_cancelation(action.cancelation, symtab, default_notify_period_s)
    return ResolvedAction(argv=argv, timeout_s=timeout, notify_period_s=period)


def apply_let_bindings(let_bindings: Sequence[str] | None, symtab: SymbolTable) -> None:
    """Evaluate EXPR ``let`` bindings into ``symtab``. Raises ValueError when invalid."""
    if not let_bindings:
        return
    for binding in let_bindings:
        if len(binding) > _MAX_LET_BINDING_LENGTH:
            raise ValueError(
                f"let binding {binding[:40]!r}... is {len(binding)} characters long; "
                f"the limit is {_MAX_LET_BINDING_LENGTH}"
            )
    evaluate_let_bindings(symtab=symtab, let_bindings=list(let_bindings))
