"""A drop-in, faster and leak-free replacement for the ``openjd.sessions`` package.

Programs written against ``openjd.sessions`` 0.14 run unchanged after replacing
``from openjd.sessions import ...`` with ``from openjd_notebook.sessions import ...``.
"""

from ._logging import LOG, LogContent
from ._path_mapping import PathFormat, PathMappingRule
from ._session import Session
from ._status import ActionStatus, SessionCallbackType
from ._types import (
    ActionState,
    EnvironmentIdentifier,
    EnvironmentModel,
    EnvironmentScriptModel,
    SessionState,
    StepScriptModel,
)
from ._users import BadCredentialsException, PosixSessionUser, SessionUser, WindowsSessionUser
from ._version import version

__all__ = (
    "LOG",
    "ActionState",
    "ActionStatus",
    "BadCredentialsException",
    "EnvironmentIdentifier",
    "EnvironmentModel",
    "EnvironmentScriptModel",
    "LogContent",
    "PathFormat",
    "PathMappingRule",
    "PosixSessionUser",
    "Session",
    "SessionCallbackType",
    "SessionState",
    "SessionUser",
    "StepScriptModel",
    "WindowsSessionUser",
    "version",
)

for _name in ("ActionState", "ActionStatus", "LogContent", "PathFormat", "PathMappingRule"):
    globals()[_name].__module__ = __name__
for _name in ("PosixSessionUser", "Session", "SessionState", "SessionUser"):
    globals()[_name].__module__ = __name__
for _name in ("WindowsSessionUser", "BadCredentialsException"):
    globals()[_name].__module__ = __name__
del _name
