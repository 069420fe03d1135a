"""Enums, aliases and defaults shared by the engine's modules."""

from __future__ import annotations

from enum import Enum

from openjd.model.v2023_09 import Action as Action_2023_09
from openjd.model.v2023_09 import Environment as Environment_2023_09
from openjd.model.v2023_09 import EnvironmentScript as EnvironmentScript_2023_09
from openjd.model.v2023_09 import StepScript as StepScript_2023_09

__all__ = [
    "ENV_ACTION_DEFAULT_NOTIFY_PERIOD_SECONDS",
    "ENV_EXIT_DEFAULT_TIMEOUT_SECONDS",
    "TASK_RUN_DEFAULT_NOTIFY_PERIOD_SECONDS",
    "ActionModel",
    "ActionState",
    "EnvironmentIdentifier",
    "EnvironmentModel",
    "EnvironmentScriptModel",
    "SessionState",
    "StepScriptModel",
]

EnvironmentIdentifier = str
StepScriptModel = StepScript_2023_09
EnvironmentModel = Environment_2023_09
EnvironmentScriptModel = EnvironmentScript_2023_09
ActionModel = Action_2023_09

# Template Schemas 5.3.2: the notify period when NOTIFY_THEN_TERMINATE omits it.
TASK_RUN_DEFAULT_NOTIFY_PERIOD_SECONDS = 120
ENV_ACTION_DEFAULT_NOTIFY_PERIOD_SECONDS = 30
# An onExit without a timeout must not hang a session forever.
ENV_EXIT_DEFAULT_TIMEOUT_SECONDS = 300


class ActionState(str, Enum):
    """Where one action (an onEnter, onRun, onExit or subprocess) is in its life."""

    RUNNING = "running"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    FAILED = "failed"
    SUCCESS = "success"


class SessionState(str, Enum):
    """Where a Session is in its life; see ``Session`` for the legal calls in each."""

    READY = "ready"
    RUNNING = "running"
    CANCELING = "canceling"
    READY_ENDING = "ready_ending"
    ENDED = "ended"
