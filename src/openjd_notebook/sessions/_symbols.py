"""Building the symbol table that an action's format strings resolve against."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from openjd.model import ParameterValue, ParameterValueType, SymbolTable

from ._path_mapping import PathMappingRule, to_host_path_separators

__all__ = ["build_symbol_table", "expr_host_rules", "resolved_base_entries"]


def _map_path(path: str, rules: Sequence[PathMappingRule]) -> str:
    for rule in rules:
        matched, result = rule.apply(path=path)
        if matched:
            return to_host_path_separators(result)
    return to_host_path_separators(path)


def _processed(value: ParameterValue, rules: Sequence[PathMappingRule]) -> Any:
    # Only PATH values are mapped; the Raw* symbols always keep what was submitted.
    if value.type == ParameterValueType.PATH:
        return _map_path(value.value, rules)
    if value.type == ParameterValueType.LIST_PATH and isinstance(value.value, list):
        return [_map_path(path, rules) for path in value.value]
    return value.value


def _expr_types(value_type: ParameterValueType) -> tuple[str, str | None]:
    """The EXPR types of a parameter's ``Param`` and ``RawParam`` symbols (spec 1.2.2).

    A CHUNK[INT] chunk is a ``range_expr``, so ``len()``, ``list()``, iteration and indexing
    see its frames (openjd-sessions leaves it a string, where they see characters). The engine
    prints a ``range_expr`` in canonical form (``4-5`` as ``4,5``), so the raw symbol stays
    the chunk's text as produced, like a raw PATH stays the path as submitted.
    """
    if value_type == ParameterValueType.CHUNK_INT:
        return ParameterValueType.RANGE_EXPR.value, None
    if value_type == ParameterValueType.PATH:
        return value_type.value, None
    if value_type == ParameterValueType.LIST_PATH:
        return value_type.value, ParameterValueType.LIST_STRING.value
    return value_type.value, value_type.value


def _add_parameters(
    symtab: SymbolTable,
    prefix: str,
    raw_prefix: str,
    values: Mapping[str, ParameterValue],
    rules: Sequence[PathMappingRule],
) -> None:
    for name, value in values.items():
        key, raw_key = f"{prefix}.{name}", f"{raw_prefix}.{name}"
        symtab[raw_key] = value.value
        symtab[key] = _processed(value, rules)
        # Only EXPR reads these types; other templates interpolate the stored strings.
        expr_type, raw_expr_type = _expr_types(value.type)
        symtab.expr_types[key] = expr_type
        if raw_expr_type is not None:
            symtab.expr_types[raw_key] = raw_expr_type


def build_symbol_table(
    *,
    working_directory: str,
    job_parameters: Mapping[str, ParameterValue],
    task_parameters: Mapping[str, ParameterValue] | None,
    rules: Sequence[PathMappingRule],
    host_rules: list[Any] | None,
    rules_file: str,
    job_name: str | None,
    step_name: str | None,
    base: Mapping[str, Any] | None = None,
) -> SymbolTable:
    symtab = SymbolTable()
    symtab.expr_host_rules = host_rules
    for name, value in (base or {}).items():
        symtab[name] = value
    symtab["Session.WorkingDirectory"] = working_directory
    symtab.expr_types["Session.WorkingDirectory"] = ParameterValueType.PATH.value
    if job_name is not None and "Job.Name" not in symtab:
        symtab["Job.Name"] = job_name
    if step_name is not None:
        symtab["Step.Name"] = step_name
    _add_parameters(symtab, "Param", "RawParam", job_parameters, rules)
    if task_parameters:
        _add_parameters(symtab, "Task.Param", "Task.RawParam", task_parameters, rules)
    symtab["Session.HasPathMappingRules"] = "true" if rules else "false"
    symtab.expr_types["Session.HasPathMappingRules"] = ParameterValueType.BOOL.value
    symtab["Session.PathMappingRulesFile"] = rules_file
    symtab.expr_types["Session.PathMappingRulesFile"] = ParameterValueType.PATH.value
    return symtab


def expr_host_rules(rules: Sequence[PathMappingRule]) -> list[Any] | None:
    """The rules in the EXPR engine's form, so ``apply_path_mapping()`` works in expressions."""
    if not rules:
        return []  # still host scope, and no need to load the native engine
    try:
        from openjd.expr import PathFormat as ExprPathFormat
        from openjd.expr import PathMappingRule as ExprPathMappingRule
    except ImportError:
        return None
    return [
        ExprPathMappingRule(
            source_path_format=getattr(ExprPathFormat, rule.source_path_format.name),
            source_path=str(rule.source_path),
            destination_path=str(rule.destination_path),
        )
        for rule in rules
    ]


def resolved_base_entries(resolved_symtab: Any) -> dict[str, Any]:
    """Flatten a step's ``resolved_symtab`` (from ``create_job``) into host-format entries."""
    from openjd.expr import PathFormat as ExprPathFormat

    host_format = ExprPathFormat.WINDOWS if os.name == "nt" else ExprPathFormat.POSIX
    table = resolved_symtab.to_symtab(path_format=host_format)
    return {name: table[name] for name in table.symbols}
