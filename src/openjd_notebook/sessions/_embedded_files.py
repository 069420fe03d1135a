"""Embedded files of a script: where they go, their symbols, and writing them.

Files without a ``filename`` get a stable name per scope (one per environment, one for
tasks), so running thousands of tasks rewrites the same few files instead of piling up
new ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openjd.model import ParameterValueType, SymbolTable
from openjd.model.v2023_09 import EndOfLine

__all__ = ["EmbeddedFile", "allocate_files", "bind_symbols", "write_files"]


@dataclass(frozen=True)
class EmbeddedFile:
    symbol: str
    path: Path
    model: Any
    """The template's ``EmbeddedFileText``."""


def _check_filename(filename: str) -> None:
    # A filename must stay a plain name inside the files directory.
    if (
        filename in ("", ".", "..")
        or "/" in filename
        or "\\" in filename
        or os.path.isabs(filename)
        or (len(filename) >= 2 and filename[1] == ":")
    ):
        raise ValueError(
            f"Embedded file name '{filename}' must be a plain file name, without directories."
        )


def _scope_key(scope: str) -> str:
    return hashlib.sha1(scope.encode("utf-8")).hexdigest()[:10]


def allocate_files(
    files: Sequence[Any] | None, *, symbol_prefix: str, scope: str, directory: Path
) -> list[EmbeddedFile]:
    """Choose each file's path and bind ``<prefix>.<name>``; raises ValueError if invalid."""
    allocated = []
    for model in files or ():
        if model.filename:
            _check_filename(model.filename)
            path = directory / model.filename
        else:
            path = directory / f"{_scope_key(scope)}-{model.name}"
        allocated.append(EmbeddedFile(f"{symbol_prefix}.{model.name}", path, model))
    return allocated


def bind_symbols(files: Sequence[EmbeddedFile], symtab: SymbolTable) -> None:
    """Bind ``Task.File.<name>``/``Env.File.<name>`` to each file's path.

    EXPR types them ``path`` (spec 1.2.2), so ``.name``/``.stem``/``.parent`` work; templates
    without EXPR ignore the type and read the plain string.
    """
    for file in files:
        symtab[file.symbol] = str(file.path)
        symtab.expr_types[file.symbol] = ParameterValueType.PATH.value


def _with_line_endings(text: str, end_of_line: Any) -> str:
    normalized = text.replace("\r\n", "\n")
    if end_of_line == EndOfLine.CRLF or (end_of_line in (None, EndOfLine.AUTO) and os.name == "nt"):
        return normalized.replace("\n", "\r\n")
    return normalized


def write_files(files: Sequence[EmbeddedFile], symtab: SymbolTable, group: str | None) -> None:
    """Resolve each file's ``data`` and write it; raises ValueError or OSError on failure."""
    for file in files:
        try:
            data = file.model.data.resolve(symtab=symtab)
        except ValueError as error:
            raise ValueError(f"Error resolving format string: {error}") from error
        text = _with_line_endings(data, file.model.endOfLine)
        runnable = bool(file.model.runnable)
        mode = 0o700 if runnable else 0o600
        if group is not None:
            mode |= 0o070 if runnable else 0o060
        _write_private(file.path, text, mode, group)


def _write_private(path: Path, text: str, mode: int, group: str | None) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
        stream.write(text)
    os.chmod(path, mode)  # the mode given to open() only applies to a new file
    if group is not None:
        shutil.chown(path, group=group)
