"""The session's working directory: a private directory under a trusted root."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._logging import LogContent, SessionLog

__all__ = ["WorkingDirectories", "create_working_directories", "default_root", "remove_tree"]

_ROOT_MODE = 0o755


@dataclass(frozen=True)
class WorkingDirectories:
    working: Path
    files: Path


def default_root() -> Path:
    """``<tempdir>/OpenJD``, created if needed and refused if another user could control it."""
    root = os.path.join(tempfile.gettempdir(), "OpenJD")
    try:
        os.makedirs(root, mode=_ROOT_MODE, exist_ok=True)
    except OSError as error:
        raise RuntimeError(f"Could not create the session root directory {root}: {error}") from None
    _check_root(root)
    return Path(root)


def _check_root(root: str) -> None:
    # Opened once without following links, so every check applies to the same inode.
    try:
        fd = os.open(root, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY)
    except OSError as error:
        raise RuntimeError(
            f"Refusing to use {root} as the session root: it is not a real directory ({error})."
        ) from None
    try:
        info = os.fstat(fd)
        if info.st_uid not in (os.geteuid(), 0):
            raise RuntimeError(
                f"Refusing to use {root} as the session root: it is owned by uid {info.st_uid}, "
                f"not by this user (uid {os.geteuid()}) or root."
            )
        if stat.S_IMODE(info.st_mode) != _ROOT_MODE and info.st_uid == os.geteuid():
            os.fchmod(fd, _ROOT_MODE)
    finally:
        os.close(fd)


def _warn_about_unsticky_parents(root: Path, log: SessionLog) -> None:
    for directory in (root, *root.parents):
        try:
            mode = directory.stat().st_mode
        except OSError:
            continue
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            log.warning(
                f"Sticky bit is not set on {directory}. This may pose a risk when running work "
                "on this host as users may modify or delete files in this directory which do "
                "not belong to them.",
                LogContent.FILE_PATH,
            )


def create_working_directories(
    root: Path, group: str | None, log: SessionLog
) -> WorkingDirectories:
    """Create the working directory and its embedded-files directory (mode 0o700, or 0o770
    shared with ``group`` when actions run as another user)."""
    _warn_about_unsticky_parents(root, log)
    working = Path(tempfile.mkdtemp(dir=root, prefix=""))
    try:
        files = Path(tempfile.mkdtemp(dir=working, prefix="embedded_files"))
        if group is not None:
            for directory in (working, files):
                shutil.chown(directory, group=group)
                directory.chmod(0o770)
    except BaseException:
        shutil.rmtree(working, ignore_errors=True)
        raise
    return WorkingDirectories(working, files)


def remove_tree(directory: Path, sudo_user: str | None, log: SessionLog) -> None:
    """Delete ``directory``; files the session user made are removed as that user first."""
    if sudo_user is not None:
        entries = [str(entry) for entry in directory.iterdir()]
        if entries:
            subprocess.run(
                ["sudo", "-n", "-u", sudo_user, "-i", "rm", "-rf", *entries],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
    failures: list[str] = []
    shutil.rmtree(directory, onerror=lambda _f, path, error: failures.append(f"{path}: {error[1]}"))
    for failure in failures:
        log.error(f"Could not delete {failure}", LogContent.FILE_PATH)
