"""Tests for the stdout message grammar (behaviour spec items 38-46)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import pytest

from openjd_notebook.sessions._protocol import (
    Fail,
    Malformed,
    OutputMessage,
    Progress,
    SetEnv,
    SetLogLevel,
    Status,
    UnsetEnv,
    parse_output_line,
)
from openjd_notebook.sessions._redaction import Redactor

ASSIGN_ERROR = "Failed to parse environment variable assignment."
NAME_ERROR = "Failed to parse environment variable name."
PROGRESS_ERROR = "Progress must be a floating point value between 0.0 and 100.0, inclusive."


def near_miss(line: str, secret: str | None = None) -> Malformed:
    text = f"Open Job Description: Incorrectly formatted openjd env command ({line})"
    return Malformed(text, True, text, secret, kind="near_miss", env_scoped=False)


def fatal(kind: str, text: str, secret: str | None = None) -> Malformed:
    return Malformed(text, True, text, secret, kind=kind, env_scoped=True)


# ---------------------------------------------------------------------------- valid messages


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("openjd_progress: 0", Progress(0.0)),
        ("openjd_progress: 100", Progress(100.0)),
        ("openjd_progress: 42.5", Progress(42.5)),
        ("openjd_progress:  42.5 ", Progress(42.5)),
        ("openjd_progress: 1e1", Progress(10.0)),
        ("openjd_progress: 1_0", Progress(10.0)),  # Python float() syntax
        ("openjd_status: Rendering frame 3", Status("Rendering frame 3")),
        ("openjd_status:  padded ", Status(" padded ")),
        ("openjd_status: openjd_fail: x", Status("openjd_fail: x")),
        ("openjd_fail: disk full", Fail("disk full")),
        ("openjd_env: FOO=bar", SetEnv("FOO", "bar", False, "FOO=bar")),
        ("openjd_env:   FOO=bar", SetEnv("FOO", "bar", False, "  FOO=bar")),
        ("openjd_env: FOO=", SetEnv("FOO", "", False, "FOO=")),
        ("openjd_env: _F1=a=b c ", SetEnv("_F1", "a=b c ", False, "_F1=a=b c ")),
        ('openjd_env: "FOO=l1\\nl2"', SetEnv("FOO", "l1\nl2", False, '"FOO=l1\\nl2"')),
        ('openjd_env: "FOO=a\\"b"', SetEnv("FOO", 'a"b', False, '"FOO=a\\"b"')),
        ('openjd_env: "FOO="', SetEnv("FOO", "", False, '"FOO="')),
        ('openjd_env: FOO="x', SetEnv("FOO", '"x', False, 'FOO="x')),
        ("openjd_redacted_env: PW=s3cr3t", SetEnv("PW", "s3cr3t", True, "PW=s3cr3t")),
        ('openjd_redacted_env: "PW=a\\nb"', SetEnv("PW", "a\nb", True, '"PW=a\\nb"')),
        ("openjd_unset_env: FOO", UnsetEnv("FOO")),
        ("openjd_unset_env:   _x9", UnsetEnv("_x9")),
        ("openjd_session_runtime_loglevel: DEBUG", SetLogLevel(logging.DEBUG)),
        ("openjd_session_runtime_loglevel: info", SetLogLevel(logging.INFO)),
        ("openjd_session_runtime_loglevel:  Warning ", SetLogLevel(logging.WARNING)),
        ("openjd_session_runtime_loglevel: eRRoR", SetLogLevel(logging.ERROR)),
        ("openjd_status: x\n", Status("x")),  # `$` tolerates one trailing newline
    ],
)
def test_valid_messages(line: str, expected: OutputMessage) -> None:
    assert parse_output_line(line) == expected


# ---------------------------------------------------------------------------- plain output


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello world",
        "  openjd_status: x",
        "OPENJD_STATUS: y",
        "openjd_status:z",
        "openjd_status: ",
        "openjd_status:",
        "openjd_progress 5",
        "Openjd_fail: x",
        "openjd_environment: ready",
        "openjd_env_setup: done",
        "openjd_unset_environment: x",
        "openjd_redacted_environment: x",
        "  openjd_progress: 5",
        "xopenjd_env: A=1",
        "echo openjd_env: A=1",
        "ok",
        "O",
        "   ",
        "\t\tindented output",
        "openjd_status: a\nb",  # the payload may not span lines
    ],
)
def test_plain_output(line: str) -> None:
    assert parse_output_line(line) is None


def test_only_o_lowercases_to_o() -> None:
    # The fast path relies on this: no other character lower-cases to something
    # starting with "o", and every str.isspace() character is in the candidate set.
    from openjd_notebook.sessions import _protocol

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if char.lower().startswith("o"):
            assert char in "oO"
        if char.isspace():
            assert char in _protocol._CANDIDATE_FIRST_CHARS


# ---------------------------------------------------------------------------- near-misses (44)


@pytest.mark.parametrize(
    "line",
    [
        "openjd_env FOO=bar",
        "OPENJD_ENV: X=1",
        "Openjd_Env: X=1",
        "  openjd_env: X=1",
        "\topenjd_unset_env: X",
        "openjd_env:X=1",
        "openjd_env: ",
        "openjd_env",
        "openjd_env:: X=1",
        "openjd_unset_env FOO",
        "openjd_unset_env:FOO",
        "OPENJD_UNSET_ENV: FOO",
        "openjd_unset_env",
        "openjd_redacted_env:",
        "  openjd_redacted_env",
    ],
)
def test_near_miss_fails_action(line: str) -> None:
    assert parse_output_line(line) == near_miss(line)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("OPENJD_REDACTED_ENV: PW=hunter2", "hunter2"),
        ("openjd_redacted_env PW=hunter2", "hunter2"),
        ("openjd_redacted_env:PW=hunter2", "hunter2"),
        ("  openjd_redacted_env: hunter2", "hunter2"),
    ],
)
def test_near_miss_redacted_env_hands_back_the_secret(line: str, secret: str) -> None:
    assert parse_output_line(line) == near_miss(line, secret)


# ---------------------------------------------------------------------------- malformed payloads


@pytest.mark.parametrize(
    "payload",
    ["FOO", " ", "1FOO=x", "FO-O=x", "FOO BAR=x", "=x", "Ä=x", '"1A=x"', "'FOO=x'"],
)
def test_malformed_env_assignment(payload: str) -> None:
    assert parse_output_line(f"openjd_env: {payload}") == fatal("env", ASSIGN_ERROR)


@pytest.mark.parametrize("payload", ["1FOO", "FOO BAR", "FOO ", "FOO=x", "-", " ", "Ä"])
def test_malformed_unset_env_name(payload: str) -> None:
    assert parse_output_line(f"openjd_unset_env: {payload}") == fatal("unset_env", NAME_ERROR)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ('"FOO=bar', "Unterminated string starting at: line 1 column 1 (char 0)"),
        ('  "FOO=bar', "Unterminated string starting at: line 1 column 1 (char 0)"),
        # Every decode error uses the "Unterminated" wording, as in the reference.
        ('"FOO=bar" tail', "Unterminated string starting at: line 1 column 11 (char 10)"),
        ('"FOO=\\q"', "Unterminated string starting at: line 1 column 6 (char 5)"),
    ],
)
def test_undecodable_json_env_is_logged_not_fatal(payload: str, error: str) -> None:
    result = parse_output_line(f"openjd_env: {payload}")
    assert result == Malformed(error, False, None, None, kind="env")


def test_undecodable_json_redacted_env_keeps_the_secret() -> None:
    result = parse_output_line('openjd_redacted_env: "PW=hunter2')
    assert isinstance(result, Malformed)
    assert not result.fails_action
    assert result.error == "Unterminated string starting at: line 1 column 1 (char 0)"
    assert result.secret_payload == "hunter2"


@pytest.mark.parametrize(
    ("payload", "enabled", "expected"),
    [
        ("PW", False, fatal("redacted_env", ASSIGN_ERROR, "PW")),
        ("1PW=abc", False, fatal("redacted_env", ASSIGN_ERROR, "abc")),
        (
            "PW",
            True,
            Malformed(
                "Malformed openjd_redacted_env command: missing equals sign.",
                False,
                None,
                "PW",
                kind="redacted_env",
            ),
        ),
        (
            "1PW=abc",
            True,
            Malformed(
                "Malformed openjd_redacted_env command: invalid format.",
                False,
                None,
                "abc",
                kind="redacted_env",
            ),
        ),
        ("   ", False, fatal("redacted_env", ASSIGN_ERROR, None)),
    ],
)
def test_malformed_redacted_env(payload: str, enabled: bool, expected: Malformed) -> None:
    line = f"openjd_redacted_env: {payload}"
    assert parse_output_line(line, redactions_enabled=enabled) == expected


@pytest.mark.parametrize(
    "payload", ["-0.1", "100.01", "101", "nan", "inf", "-inf", "abc", "5%", "1,5"]
)
def test_progress_out_of_range_or_garbage(payload: str) -> None:
    result = parse_output_line(f"openjd_progress: {payload}")
    assert result == Malformed(PROGRESS_ERROR, False, None, None, kind="progress")


@pytest.mark.parametrize(("payload", "shown"), [("BOGUS", "BOGUS"), (" trace ", "TRACE")])
def test_unknown_log_level(payload: str, shown: str) -> None:
    result = parse_output_line(f"openjd_session_runtime_loglevel: {payload}")
    error = f"Unknown log level: {shown}. Known values: DEBUG,INFO,WARNING,ERROR"
    assert result == Malformed(error, False, None, None, kind="session_runtime_loglevel")


# ---------------------------------------------------------------------------- vs the reference

reference = pytest.importorskip("openjd.sessions._action_filter")
model = pytest.importorskip("openjd.model")

COMPARISON_LINES = [
    "plain output",
    "  openjd_status: x",
    "OPENJD_STATUS: y",
    "openjd_status:z",
    "openjd_status: ",
    "openjd_status: hello",
    "openjd_fail: boom",
    "openjd_progress: 12.5",
    'openjd_progress:  " 42.5 "',
    "openjd_progress:  42.5 ",
    "openjd_progress: 100.5",
    "openjd_progress: -1",
    "openjd_progress: nan",
    "openjd_env: FOO=bar",
    "openjd_env: FOO=",
    "openjd_env:  FOO=a=b",
    'openjd_env: "FOO=l1\\nl2"',
    'openjd_env: "FOO=bar',
    'openjd_env: "FOO=bar" x',
    "openjd_env: FOO",
    "openjd_env: 1FOO=x",
    "openjd_env FOO=bar",
    "OPENJD_ENV: X=1",
    "openjd_env:X=1",
    "openjd_env",
    "openjd_environment: ready",
    "openjd_env_setup: done",
    "openjd_unset_env: FOO",
    "openjd_unset_env: 1FOO",
    "openjd_unset_env: FOO ",
    "OPENJD_UNSET_ENV: FOO",
    "openjd_redacted_env: PW=s3cr3t",
    'openjd_redacted_env: "PW=ab\\ncd\\nef"',
    "openjd_redacted_env: PW",
    "openjd_redacted_env: 1PW=abc",
    'openjd_redacted_env: "PW=abc',
    "OPENJD_REDACTED_ENV: PW=abc",
    "openjd_session_runtime_loglevel: debug",
    "openjd_session_runtime_loglevel: BOGUS",
    "openjd_session_runtime_loglevel: \u0131nfo",  # dotless i upper-cases to INFO
    "\u3000openjd_env: X=1",
    "openjd_env:\tX=1",
    "openjd_progress: 1_0",
    "openjd_status: a\nb",
    "openjd_env: A=1\nopenjd_env",
    "openjd_status: x\n",
]


def reference_effects(line: str, enabled: bool) -> tuple[list[tuple[str, Any, bool]], str]:
    """Run one line through the reference filter the way its Session does."""
    calls: list[tuple[str, Any, bool]] = []
    extensions = model.RevisionExtensions(
        spec_rev=model.SpecificationRevision.v2023_09,
        supported_extensions=["REDACTED_ENV_VARS"] if enabled else [],
    )
    filt = reference.ActionMonitoringFilter(
        session_id="s",
        callback=lambda kind, value, fail: calls.append((kind.value, value, fail)),
        revision_extensions=extensions,
    )
    record = logging.LogRecord("openjd.sessions", logging.INFO, __file__, 0, line, None, None)
    record.session_id = "s"
    assert filt.filter(record)
    return calls, record.msg


def our_effects(line: str, enabled: bool) -> tuple[list[tuple[str, Any, bool]], str]:
    """What an engine built on parse_output_line does, in the reference's callback terms."""
    message = parse_output_line(line, redactions_enabled=enabled)
    redactor = Redactor()
    calls: list[tuple[str, Any, bool]] = []
    logged = line
    if isinstance(message, Progress):
        calls.append(("progress", message.percent, False))
    elif isinstance(message, Status):
        calls.append(("status", message.message, False))
    elif isinstance(message, Fail):
        calls.append(("fail", message.message, False))
    elif isinstance(message, SetEnv):
        if message.redacted:
            redactor.add(message.value, message.raw_payload)
        if enabled or not message.redacted:
            calls.append(("env", {"name": message.name, "value": message.value}, False))
    elif isinstance(message, UnsetEnv):
        calls.append(("unset_env", message.name, False))
    elif isinstance(message, SetLogLevel):
        calls.append(("session_runtime_loglevel", message.level, False))
    elif isinstance(message, Malformed):
        logged, call = malformed_effects(message, line, redactor)
        calls.extend(call)
    return calls, redactor.redact(logged)


def malformed_effects(
    message: Malformed, line: str, redactor: Redactor
) -> tuple[str, list[tuple[str, Any, bool]]]:
    # Known deviations, kept out of the comparison: the reference registers no secret
    # for a near-miss or an undecodable JSON form, and appends no error to a fatal
    # malformed redacted_env line.
    leaks = message.kind == "near_miss" or message.error.startswith("Unterminated")
    if message.secret_payload and not leaks:
        redactor.add(message.secret_payload)
    calls: list[tuple[str, Any, bool]] = []
    if message.fails_action:
        kind = "fail" if message.kind == "near_miss" else message.kind
        calls.append(("env" if kind == "redacted_env" else kind, message.fail_message, True))
    if message.kind == "redacted_env" and message.fails_action:
        return line, calls
    return f"{line} -- ERROR: {message.error}", calls


@pytest.mark.parametrize("enabled", [False, True])
@pytest.mark.parametrize("line", COMPARISON_LINES)
def test_matches_reference_filter(line: str, enabled: bool) -> None:
    assert our_effects(line, enabled) == reference_effects(line, enabled)


# ---------------------------------------------------------------------------- speed


def test_plain_lines_take_the_fast_path() -> None:
    lines = [f"frame {i} rendered in 0.{i}s" for i in range(20_000)]
    start = time.perf_counter()
    for line in lines:
        parse_output_line(line)
    elapsed = time.perf_counter() - start
    # Generous bound (about 100x the measured cost) so a slow CI box does not flake.
    assert elapsed < 0.2
