"""Identities that a session's actions can run as."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

__all__ = ["BadCredentialsException", "PosixSessionUser", "SessionUser", "WindowsSessionUser"]


class BadCredentialsException(Exception):
    """The credentials given for a session user were rejected by the OS."""


class SessionUser(ABC):
    """The OS user that a session's actions run as."""

    user: str

    @staticmethod
    @abstractmethod
    def _get_process_user() -> str:
        """The name of the user running this process."""

    def is_process_user(self) -> bool:
        """True when actions would run as the user running this process (no sudo needed)."""
        return self.user == self._get_process_user()


class PosixSessionUser(SessionUser):
    """Run actions as ``user`` through passwordless ``sudo``; ``group`` shares the files."""

    __slots__ = ("group", "user")

    user: str
    group: str

    def __init__(self, user: str, *, group: str | None = None) -> None:
        if os.name != "posix":
            raise RuntimeError("PosixSessionUser is only available on POSIX systems.")
        import grp

        self.user = user
        self.group = group if group else grp.getgrgid(os.getegid()).gr_name

    @staticmethod
    def _get_process_user() -> str:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name

    def __repr__(self) -> str:
        return f"PosixSessionUser(user={self.user!r}, group={self.group!r})"


class WindowsSessionUser(SessionUser):
    """A Windows user. Windows is out of scope for openjd-notebook: constructing one fails."""

    __slots__ = ("logon_token", "password", "user")

    def __init__(
        self, user: str, *, password: str | None = None, logon_token: Any | None = None
    ) -> None:
        if password is not None and logon_token is not None:
            raise ValueError('The "password" and "logon_token" arguments are mutually exclusive')
        raise RuntimeError(
            "WindowsSessionUser is only available on Windows systems, "
            "which openjd-notebook does not support."
        )

    @staticmethod
    def _get_process_user() -> str:
        return os.environ.get("USERNAME", "")
