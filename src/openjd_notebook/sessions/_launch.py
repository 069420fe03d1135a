"""Turning a resolved action into the process to start: environment, argv, identity."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._process_tree import PROCESS_TAG_VARIABLE
from ._users import PosixSessionUser, SessionUser

__all__ = ["process_environment", "sudo_argv", "write_sudo_script"]

_VALID_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUSTED_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin")


def process_environment(
    changes: Mapping[str, str | None], tag: str, inherit: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment overlaid with ``changes`` (``None`` unsets) and the tag."""
    env = dict(os.environ if inherit is None else inherit)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env[PROCESS_TAG_VARIABLE] = tag
    return env


def needs_sudo(user: SessionUser | None) -> bool:
    return user is not None and not user.is_process_user()


def _trusted(command: str) -> str:
    # Privileged helpers come from fixed system directories, never from PATH.
    for directory in _TRUSTED_DIRS:
        candidate = os.path.join(directory, command)
        if os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"Could not find '{command}' in {', '.join(_TRUSTED_DIRS)}")


def write_sudo_script(
    path: Path,
    argv: Sequence[str],
    changes: Mapping[str, str | None],
    tag: str,
    cwd: Path,
    user: PosixSessionUser,
) -> list[str]:
    """Write the script that ``sudo -i`` runs (it resets the environment), return names skipped.

    The script carries the variables instead of the command line, so values never show up
    in other users' ``ps`` output. It holds secrets (redacted variables), so it is readable
    by as few as can be: the target user alone when this process may give it the file
    (root), else the owner and the sharing group; and it deletes itself as soon as the
    shell has it open, so it rests on disk only while sudo starts.
    """
    skipped = [name for name in changes if not _VALID_NAME.fullmatch(name)]
    lines = ["#!/bin/sh", 'rm -f -- "$0"']
    for name, value in {**changes, PROCESS_TAG_VARIABLE: tag}.items():
        if name in skipped:
            continue
        lines.append(f"unset {name}" if value is None else f"export {name}={shlex.quote(value)}")
    lines += [f"cd {shlex.quote(str(cwd))}", f"exec {shlex.join(argv)}", ""]
    # Created with no permission for anyone else; widened only as far as the user needs.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines))
    _give_to(path, user)
    return skipped


def _give_to(script: Path, user: PosixSessionUser) -> None:
    if os.geteuid() == 0:
        import pwd

        target = pwd.getpwnam(user.user)
        os.chown(script, target.pw_uid, target.pw_gid)  # 0o700: the target user only
        return
    shutil.chown(script, group=user.group)
    os.chmod(script, 0o750)  # the target user reads it through the shared group


def sudo_argv(user: PosixSessionUser, script: Path) -> list[str]:
    return [_trusted("sudo"), "-n", "-u", user.user, "-i", _trusted("setsid"), "-w", str(script)]
