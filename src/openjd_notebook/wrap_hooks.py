"""Which wrap hooks (RFC 0008, the WRAP_ACTIONS extension) an environment defines.

Kept outside :mod:`openjd_notebook.sessions` so that checking a template for wrap layers
(``openjd-notebook check``, :class:`~openjd_notebook.Template`) does not load the session engine.
"""

from __future__ import annotations

from typing import Literal

from openjd.model.v2023_09 import Action, Environment

__all__ = ["WRAP_HOOKS", "WrapHook", "defines_wrap_hooks", "wrap_hook"]

WrapHook = Literal["onWrapEnvEnter", "onWrapTaskRun", "onWrapEnvExit"]
WRAP_HOOKS: tuple[WrapHook, ...] = ("onWrapEnvEnter", "onWrapTaskRun", "onWrapEnvExit")


def wrap_hook(environment: Environment, hook: WrapHook) -> Action | None:
    """The environment's ``hook`` action, or None when it defines none."""
    script = environment.script
    if script is None:
        return None
    action: Action | None = getattr(script.actions, hook, None)
    return action


def defines_wrap_hooks(environment: Environment) -> bool:
    return any(wrap_hook(environment, hook) is not None for hook in WRAP_HOOKS)
