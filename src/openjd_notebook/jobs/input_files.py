"""Reading a text file a user named (a template, parameter values, path mapping rules) safely.

A user can name anything: a FIFO that never sends end-of-file, ``/dev/zero`` or ``/dev/urandom``
that never end, a directory, a socket, or a huge file. ``read_text_file`` reads only regular
files, never blocks on opening one (the file is checked with ``stat`` first, opened with
``O_NONBLOCK`` so that a FIFO swapped in after the check cannot block, and checked again with
``fstat``), reads at most ``MAX_INPUT_BYTES`` and decodes UTF-8, naming the file, the byte offset
and the line when the bytes are not UTF-8. Each refusal is an ``InputFileError``; the operating
system's own errors (no such file, permission denied) stay ``OSError``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, NoReturn

from ._template_text import format_of, parse_text
from .errors import InputFileError, TemplateError

__all__ = ["MAX_INPUT_BYTES", "read_document", "read_text_file"]

MAX_INPUT_BYTES = 16 * 1024 * 1024
"""The largest file read as a template, parameter values or path mapping rules (16 MiB)."""

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_text_file(
    path: str | os.PathLike[str], *, what: str = "file", limit: int = MAX_INPUT_BYTES
) -> str:
    """The UTF-8 text of the regular file ``path``, newlines read as text mode reads them.

    ``what`` names the file's role in messages ("template", "job parameter file").
    Raises ``InputFileError`` for anything but a regular file, a file over ``limit`` bytes or
    bytes that are not UTF-8, and ``OSError`` when the file cannot be opened at all.
    """
    path = Path(path)
    _check_regular(path, os.stat(path).st_mode, what)
    fd = os.open(path, _OPEN_FLAGS)
    with open(fd, "rb", closefd=True) as file:
        status = os.fstat(fd)
        _check_regular(path, status.st_mode, what)  # the file the name pointed at may have changed
        _check_size(path, status.st_size, what, limit)
        data = file.read(limit + 1)  # the file may grow after fstat; never read past the limit
    if len(data) > limit:
        _refuse_size(path, f"over {limit:,} bytes", what, limit)
    return _decoded(data, path, what).replace("\r\n", "\n").replace("\r", "\n")


def read_document(
    path: str | os.PathLike[str], *, what: str = "file", limit: int = MAX_INPUT_BYTES
) -> Any:
    """The parsed content of a JSON (``.json``) or YAML file read with ``read_text_file``.

    YAML is parsed with the same guards as templates (an alias expansion budget). A syntax error
    is an ``InputFileError`` naming the file, the line and the column.
    """
    path = Path(path)
    text = read_text_file(path, what=what, limit=limit)
    try:
        return parse_text(text, format_of(path), path)
    except TemplateError as error:
        raise InputFileError(f"{what} {path}: {_without_name(error, path)}", path) from error


def _without_name(error: TemplateError, path: Path) -> str:
    # A TemplateError leads with the file's name; this message names the whole path instead.
    return str(error).removeprefix(f"{path.name}, ").removeprefix(f"{path.name}: ")


def _check_regular(path: Path, mode: int, what: str) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise InputFileError(
        f"Cannot read {what} {path}: it is {kind}; only a regular file can be read.", path
    )


def _check_size(path: Path, size: int, what: str, limit: int) -> None:
    if size > limit:
        _refuse_size(path, f"{size:,} bytes", what, limit)


def _refuse_size(path: Path, size: str, what: str, limit: int) -> NoReturn:
    raise InputFileError(
        f"Cannot read {what} {path}: it is {size}, over the limit of {_size_text(limit)} "
        f"({limit:,} bytes).",
        path,
    )


def _size_text(size: int) -> str:
    mebibytes = size / (1024 * 1024)
    return f"{mebibytes:g} MiB" if mebibytes >= 1 else f"{size:,} bytes"


def _decoded(data: bytes, path: Path, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        bad = data[error.start : error.end].hex(" ")
        raise InputFileError(
            f"Cannot read {what} {path}: it is not UTF-8 text; byte offset {error.start:,} "
            f"(line {line}, column {column}) holds {bad} ({error.reason}).",
            path,
        ) from None
