"""The options of ``%openjd_run``, with their help, and the checks that turn a bad value into a
one-line ``UsageError`` (argparse raises it through IPython's ``MagicArgumentParser``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

__all__ = [
    "VALUE_OPTIONS",
    "at_least",
    "parse_assignment",
    "run_arguments",
    "seconds",
    "unquote",
]

F = TypeVar("F", bound=Callable[..., Any])


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    whole.__name__ = f"whole number >= {minimum}"
    return whole


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def byte_size(text: str) -> int:
    """An argparse type: a size such as 512M, 64G or a number of bytes."""
    from ..jobs.manifests import parse_byte_size

    try:
        return parse_byte_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def unquote(text: str) -> str:
    """Drop one pair of matching outer quotes: IPython splits magic lines keeping quotes."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """``NAME=VALUE`` (quotes around either part or the whole dropped)."""
    name, equals, value = unquote(text).partition("=")
    if not equals or not name:
        raise UsageError(f"{option} {text!r}: expected NAME=VALUE")
    return name.strip(), unquote(value)


# (flags, keywords) in the order ``%openjd_run?`` lists them.
_RUN_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("template",),
        {
            "nargs": "?",
            "default": None,
            "help": "a Template variable (from %%%%openjd_template NAME), a template file "
            "(.yaml, .json) or a job bundle directory; default: job_template",
        },
    ),
    (
        ("-p", "--param"),
        {
            "action": "append",
            "default": [],
            "metavar": "NAME=VALUE",
            "help": "a job parameter value, repeat for more; taken literally (the line is "
            "not variable-expanded), so Python values go in through --params",
        },
    ),
    (
        ("--params",),
        {
            "metavar": "VAR",
            "help": "a dict in the namespace of job parameter values, e.g. filled from a "
            "papermill 'parameters' cell; -p values win over it",
        },
    ),
    (("--step",), {"metavar": "NAME", "help": "run only this step (and its dependencies)"}),
    (
        ("--no-dependencies",),
        {"action": "store_true", "help": "with --step: do not run the steps it depends on"},
    ),
    (
        ("--tasks",),
        {
            "metavar": "SPEC",
            "help": "only these tasks: 'Frame=1-5', several joined by ';', or a namespace "
            "list of dicts of task parameter values",
        },
    ),
    (
        ("--max-tasks",),
        {"type": at_least(1), "metavar": "N", "help": "at most N tasks (or chunks) per step"},
    ),
    (
        ("--workers",),
        {
            "type": at_least(1),
            "metavar": "N",
            "help": "run N tasks at once, each worker a session like one render node "
            "(default: %%openjd_config workers)",
        },
    ),
    (
        ("--cluster",),
        {
            "metavar": "ADDRESS",
            "help": "run on a Dask cluster: its scheduler address, or 'auto' for this kernel's "
            "client",
        },
    ),
    (
        ("--nodes",),
        {"type": at_least(1), "metavar": "N", "help": "with --cluster: at most N tasks at once"},
    ),
    (
        ("--env",),
        {
            "action": "append",
            "default": [],
            "metavar": "TEMPLATE",
            "help": "an environment template (variable or file) entered before the job's own "
            "environments, as a render farm's queue environment; repeat for more",
        },
    ),
    (
        ("--path-mapping",),
        {
            "metavar": "RULES",
            "help": "path mapping rules: a dict variable, or a JSON or YAML file",
        },
    ),
    (
        ("--cancel-grace",),
        {
            "type": seconds,
            "metavar": "SEC",
            "help": "seconds a canceled action may take to exit before it is killed; caps "
            "the template's notifyPeriodInSeconds (default: %%openjd_config cancel_grace)",
        },
    ),
    (
        ("--hash-budget",),
        {
            "type": byte_size,
            "metavar": "SIZE",
            "help": "hash at most SIZE (e.g. 64G, the default) of the PATH parameters declared "
            "dataFlow IN/OUT; beyond it, size and modification time only",
        },
    ),
    (
        ("--keep-workdir",),
        {
            "action": "store_true",
            "help": "keep the sessions' working directories after the run, to look inside",
        },
    ),
    (
        ("--out",),
        {
            "metavar": "VAR",
            "help": "bind the JobResult (the JobRun with --no-block) to VAR, also when the "
            "run is stopped, instead of returning it",
        },
    ),
    (
        ("--no-block",),
        {
            "action": "store_true",
            "help": "return the JobRun at once; %%openjd_wait and %%openjd_cancel act on it",
        },
    ),
    (
        ("--quiet",),
        {"action": "store_true", "help": "no live dashboard, only the final summary"},
    ),
    (
        ("--raise",),
        {
            "action": "store_true",
            "dest": "raise_on_failure",
            "default": None,
            "help": "raise JobFailedError when the run fails, so Run All, nbclient and "
            "papermill stop (default: %%openjd_config raise_on_failure)",
        },
    ),
)

VALUE_OPTIONS = frozenset(
    flag
    for flags, keywords in _RUN_OPTIONS
    if flags[0].startswith("-") and keywords.get("action") not in ("store_true",)
    for flag in flags
)
"""The options of ``%openjd_run`` that take a value (for tab completion)."""
RUN_FLAGS = tuple(flag for flags, _ in _RUN_OPTIONS for flag in flags if flag.startswith("-"))


def run_arguments(function: F) -> F:
    """Stack ``%openjd_run``'s ``argument`` decorators on ``function`` (innermost first)."""
    for flags, keywords in reversed(_RUN_OPTIONS):
        function = argument(*flags, **keywords)(function)  # type: ignore[no-untyped-call]
    return function
