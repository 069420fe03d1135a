"""Run records are private to the user who ran them: folders 0700, files 0600.

Logs hold whatever actions printed, which can be sensitive, so every file and folder of a
record is created private whatever the umask (a team shares a record on purpose, with
``chmod -R g+rX``). The runs root itself is created as the umask says: it is shared.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "make_private_dirs", "open_private"]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE_MODE)


def open_private(path: Path, mode: str = "a") -> IO[str]:
    """``open(path, mode)`` as UTF-8 text, creating the file 0600 when it is new."""
    return open(path, mode, encoding="utf-8", opener=_private_opener)


def make_private_dirs(directory: Path, *, inside: Path) -> None:
    """Create ``directory`` and its missing parents up to ``inside``, each 0700."""
    missing = []
    current = directory
    while current != inside and not current.is_dir():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another worker's log made it first
        os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
