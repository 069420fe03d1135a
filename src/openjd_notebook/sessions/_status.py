"""The frozen snapshot of an action's status that sessions publish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ._types import ActionState

__all__ = ["ActionStatus", "SessionCallbackType"]


@dataclass(frozen=True)
class ActionStatus:
    """Status of the running or most recent action.

    The first five fields match ``openjd.sessions.ActionStatus``. The extras (``pid``,
    ``started_at``, ``ended_at``, ``launch_error``, ``cancel_requested``) are excluded from
    equality so that comparisons written against the reference keep working.
    """

    state: ActionState
    progress: float | None = None
    status_message: str | None = None
    fail_message: str | None = None
    exit_code: int | None = None
    pid: int | None = field(default=None, compare=False)
    started_at: datetime | None = field(default=None, compare=False)
    ended_at: datetime | None = field(default=None, compare=False)
    launch_error: str | None = field(default=None, compare=False)
    """Why the command could not be started ("blender: not found"), when it could not."""
    cancel_requested: bool = field(default=False, compare=False)
    """``Session.cancel_action`` (or cleanup) asked this action to stop. ``Session.state``
    stays RUNNING until it has, as in ``openjd.sessions``."""

    @property
    def duration_s(self) -> float | None:
        """Seconds between start and end, once both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


SessionCallbackType = Callable[[str, ActionStatus], None]
