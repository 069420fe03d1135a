"""The grammar of the ``openjd_*`` messages that an action prints on stdout.

This module is pure: it classifies one line of output and returns a value that
says what the line means. The session engine decides what to do with it
(update progress, set variables, cancel the action, redact secrets, ...).

The grammar and every error text match ``openjd.sessions`` 0.14, so that logs and
``fail_message`` values are the same as with the reference implementation.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "Fail",
    "Malformed",
    "OutputMessage",
    "Progress",
    "SetEnv",
    "SetLogLevel",
    "Status",
    "UnsetEnv",
    "parse_output_line",
]


@dataclass(frozen=True, slots=True)
class Progress:
    """``openjd_progress: <float>``, already checked to be within 0.0..100.0."""

    percent: float


@dataclass(frozen=True, slots=True)
class Status:
    """``openjd_status: <text>``."""

    message: str


@dataclass(frozen=True, slots=True)
class Fail:
    """``openjd_fail: <text>``. The reference only records it; it does not fail the action."""

    message: str


@dataclass(frozen=True, slots=True)
class SetEnv:
    """``openjd_env: NAME=value`` or ``openjd_redacted_env: NAME=value``.

    ``raw_payload`` is the text after ``": "`` exactly as printed; the redactor needs
    it to also mask the still-quoted JSON form of a secret.
    """

    name: str
    value: str
    redacted: bool
    raw_payload: str


@dataclass(frozen=True, slots=True)
class UnsetEnv:
    """``openjd_unset_env: NAME``."""

    name: str


@dataclass(frozen=True, slots=True)
class SetLogLevel:
    """``openjd_session_runtime_loglevel: <level>``, as a ``logging`` level number."""

    level: int


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that looks like a message but is not a valid one.

    The line stays in the log with ``" -- ERROR: " + error`` appended. (For a fatal
    malformed ``openjd_redacted_env`` the reference appends nothing; saying why the
    action died is a deliberate improvement.)

    ``fails_action``: the reference cancels the running action and marks it FAILED,
    with ``fail_message`` as the action's fail message. When ``env_scoped`` is True
    the reference does that only while an environment's action runs (it routes the
    failure through its env-variable handling, which ignores tasks); when False
    (``kind == "near_miss"``) it does it for any action, tasks included.

    ``secret_payload``: for an ``openjd_redacted_env`` line that failed to parse, the
    text that may be the secret. Register it with the redactor before logging the line.

    ``kind``: the message kind the line was meant to be (``"progress"``, ``"env"``,
    ``"redacted_env"``, ``"unset_env"``, ``"session_runtime_loglevel"``) or
    ``"near_miss"`` for an env command with the wrong case, spacing or separator.
    """

    error: str
    fails_action: bool
    fail_message: str | None
    secret_payload: str | None
    kind: str = ""
    env_scoped: bool = False


OutputMessage: TypeAlias = Progress | Status | Fail | SetEnv | UnsetEnv | SetLogLevel | Malformed

# Exact texts of the reference, so fail messages and log lines stay comparable.
_ASSIGNMENT_ERROR = "Failed to parse environment variable assignment."
_NAME_ERROR = "Failed to parse environment variable name."
_PROGRESS_ERROR = "Progress must be a floating point value between 0.0 and 100.0, inclusive."
_NEAR_MISS_ERROR = "Open Job Description: Incorrectly formatted openjd env command ({})"
_REDACTED_MISSING_EQUALS = "Malformed openjd_redacted_env command: missing equals sign."
_REDACTED_INVALID = "Malformed openjd_redacted_env command: invalid format."

_LOG_LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
}

# Lower case, at column 0, exactly ": ", non-empty payload. `$` (not \Z) on purpose:
# like the reference, a single trailing "\n" is tolerated and not part of the payload.
_MESSAGE = re.compile(
    r"openjd_(progress|status|fail|env|redacted_env|unset_env|session_runtime_loglevel): (.+)$"
)
# Applied to the left-stripped, lower-cased line. The delimiter keeps harmless
# words such as "openjd_environment: ready" from killing the action.
_NEAR_MISS = re.compile(r"openjd_(env|redacted_env|unset_env)(?::|\s|\Z)")
# Longest near-miss token ("openjd_redacted_env") plus its delimiter.
_NEAR_MISS_PREFIX_LEN = 20

_PLAIN_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*\Z")
_JSON_ASSIGNMENT = re.compile(r'"[A-Za-z_][A-Za-z0-9_]*=.*\Z')
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Every message and every near-miss starts with "o"/"O" once leading whitespace is
# stripped, and no other character lower-cases to "o". So any line whose first
# character is not one of these is plain output, decided by one set lookup.
# (U+3000 is the highest code point for which str.isspace() is true.)
_CANDIDATE_FIRST_CHARS = frozenset("oO") | frozenset(
    chr(code) for code in range(0x3001) if chr(code).isspace()
)


def parse_output_line(line: str, *, redactions_enabled: bool = False) -> OutputMessage | None:
    """Classify one line of action output; ``None`` means plain output.

    ``redactions_enabled`` is the session's "REDACTED_ENV_VARS" state (a revision newer
    than 2023-09 or the extension). It only changes how a malformed
    ``openjd_redacted_env`` payload is treated, exactly as in the reference.
    """
    if line[:1] not in _CANDIDATE_FIRST_CHARS:
        return None
    match = _MESSAGE.match(line)
    if match is not None:
        return _HANDLERS[match.group(1)](match.group(2), redactions_enabled)
    return _near_miss(line)


def _near_miss(line: str) -> Malformed | None:
    stripped = line.lstrip()
    if stripped[:1] not in "oO":
        return None
    # Only the prefix matters; lowering just it keeps long indented lines cheap.
    match = _NEAR_MISS.match(stripped[:_NEAR_MISS_PREFIX_LEN].lower())
    if match is None:
        return None
    message = _NEAR_MISS_ERROR.format(line)
    secret = None
    if match.group(1) == "redacted_env":
        rest = stripped[match.end(1) :].lstrip(":").lstrip()
        secret = _secret_candidate(rest)
    return Malformed(message, True, message, secret, kind="near_miss", env_scoped=False)


def _progress(payload: str, _redactions_enabled: bool) -> OutputMessage:
    try:
        percent = float(payload)
    except ValueError:
        percent = float("nan")
    # NaN fails both comparisons, so garbage lands here too.
    if 0.0 <= percent <= 100.0:
        return Progress(percent)
    return Malformed(_PROGRESS_ERROR, False, None, None, kind="progress")


def _status(payload: str, _redactions_enabled: bool) -> OutputMessage:
    return Status(payload)


def _fail(payload: str, _redactions_enabled: bool) -> OutputMessage:
    return Fail(payload)


def _env(payload: str, _redactions_enabled: bool) -> OutputMessage:
    try:
        assignment = _parse_assignment(payload.lstrip())
    except ValueError as exc:
        # An undecodable JSON form is logged but, as in the reference, not fatal.
        return Malformed(str(exc), False, None, None, kind="env")
    if assignment is None:
        return _fatal("env", _ASSIGNMENT_ERROR)
    name, value = assignment
    return SetEnv(name, value, False, payload)


def _redacted_env(payload: str, redactions_enabled: bool) -> OutputMessage:
    text = payload.lstrip()
    try:
        assignment = _parse_assignment(text)
    except ValueError as exc:
        # The reference registers nothing here and leaks the secret; we hand it back.
        return Malformed(str(exc), False, None, _secret_candidate(text), kind="redacted_env")
    if assignment is not None:
        name, value = assignment
        return SetEnv(name, value, True, payload)
    secret = _secret_candidate(text)
    if not redactions_enabled:
        return _fatal("redacted_env", _ASSIGNMENT_ERROR, secret)
    error = _REDACTED_INVALID if "=" in text else _REDACTED_MISSING_EQUALS
    return Malformed(error, False, None, secret, kind="redacted_env")


def _unset_env(payload: str, _redactions_enabled: bool) -> OutputMessage:
    name = payload.lstrip()
    if _VARIABLE_NAME.match(name) is None:
        return _fatal("unset_env", _NAME_ERROR)
    return UnsetEnv(name)


def _log_level(payload: str, _redactions_enabled: bool) -> OutputMessage:
    name = payload.upper().strip()
    level = _LOG_LEVELS.get(name)
    if level is None:
        known = ",".join(_LOG_LEVELS)
        error = f"Unknown log level: {name}. Known values: {known}"
        return Malformed(error, False, None, None, kind="session_runtime_loglevel")
    return SetLogLevel(level)


_HANDLERS: dict[str, Callable[[str, bool], OutputMessage]] = {
    "progress": _progress,
    "status": _status,
    "fail": _fail,
    "env": _env,
    "redacted_env": _redacted_env,
    "unset_env": _unset_env,
    "session_runtime_loglevel": _log_level,
}


def _fatal(kind: str, message: str, secret: str | None = None) -> Malformed:
    return Malformed(message, True, message, secret, kind=kind, env_scoped=True)


def _parse_assignment(text: str) -> tuple[str, str] | None:
    """``NAME=value`` or ``"NAME=value"`` (JSON) to ``(name, value)``; None if invalid.

    Raises ValueError with the reference's text when the JSON form does not decode.
    """
    if "=" not in text:
        return None
    if _PLAIN_ASSIGNMENT.match(text) is not None:
        name, _, value = text.partition("=")
        return name, value
    if _JSON_ASSIGNMENT.match(text) is None:
        return None
    try:
        decoded: str = json.loads(text)  # a JSON text starting with '"' is a string
    except json.JSONDecodeError as exc:
        # The reference words every decode error this way, "Extra data" included.
        raise ValueError(
            f"Unterminated string starting at: line {exc.lineno} column {exc.colno} "
            f"(char {exc.pos})"
        ) from None
    name, _, value = decoded.partition("=")
    return name, value


def _secret_candidate(text: str) -> str | None:
    """What may be the secret of a broken redacted assignment: the text after "="."""
    _, equals, value = text.partition("=")
    candidate = value if equals else text
    return candidate or None
