"""Secrets declared with ``openjd_redacted_env`` never leave a session unmasked: not in
status or fail messages, not split across the records of a long line. Real processes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from openjd.model import RevisionExtensions, SpecificationRevision

from helpers import make_job, python_action
from openjd_notebook.sessions import LOG, ActionState, LogContent, Session
from openjd_notebook.sessions._process import MAX_LINE_CHARACTERS
from openjd_notebook.sessions._redaction import REDACTED

SECRET = "hunter2-correct-horse-battery-staple"
REDACTED_ENV = RevisionExtensions(
    spec_rev=SpecificationRevision.v2023_09, supported_extensions=["REDACTED_ENV_VARS"]
)


@pytest.fixture
def records() -> Iterator[list[str]]:
    """Every record the engine logs while the test runs, as text."""
    lines: list[str] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collector(level=logging.DEBUG)
    LOG.addHandler(handler)
    yield lines
    LOG.removeHandler(handler)


def run_with_secret(make_session: Any, task_code: str) -> tuple[Session, Any, list[Any]]:
    """Enter an environment that declares SECRET, then run ``task_code``; every callback."""
    declare = f"print('openjd_redacted_env: TOKEN={SECRET}')"
    job, values = make_job(
        {
            "jobEnvironments": [
                {"name": "Secrets", "script": {"actions": {"onEnter": python_action(declare)}}}
            ],
            "steps": [{"name": "S", "script": {"actions": {"onRun": python_action(task_code)}}}],
        },
        extensions=["REDACTED_ENV_VARS"],
    )
    statuses: list[Any] = []
    session = make_session(
        job_parameter_values=values,
        revision_extensions=REDACTED_ENV,
        callback=lambda _id, status: statuses.append(status),
    )
    session.enter_environment(environment=job.jobEnvironments[0])
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    return session, session.wait(timeout=30), statuses


def test_status_and_fail_messages_are_masked(make_session: Any, records: list[str]) -> None:
    code = (
        "import os\n"
        "print('openjd_status: rendering with ' + os.environ['TOKEN'])\n"
        "print('openjd_fail: could not log in as ' + os.environ['TOKEN'])\n"
        "raise SystemExit(2)"
    )
    _session, final, statuses = run_with_secret(make_session, code)
    assert final.state == ActionState.FAILED
    assert final.status_message == f"rendering with {REDACTED}"
    assert final.fail_message == f"could not log in as {REDACTED}"
    for status in statuses:
        assert SECRET not in f"{status.status_message} {status.fail_message}"
    assert not [line for line in records if SECRET in line]


@pytest.mark.parametrize("where", [MAX_LINE_CHARACTERS - 10, MAX_LINE_CHARACTERS - 1])
def test_a_secret_across_a_long_lines_split_stays_masked(
    make_session: Any, records: list[str], where: int
) -> None:
    """Lines longer than 64,000 characters become several records; the cut never falls
    inside a secret, so neither half reaches the log."""
    code = f"import os\nprint('x' * {where} + os.environ['TOKEN'] + 'y' * 70000)"
    _session, final, _ = run_with_secret(make_session, code)
    assert final.state == ActionState.SUCCESS
    long_records = [line for line in records if line.startswith("x" * 100)]
    assert long_records and all(len(line) <= MAX_LINE_CHARACTERS for line in long_records)
    text = "".join(line for line in records if set(line) <= set("xy*"))
    assert REDACTED in text
    for half in (SECRET[:10], SECRET[-10:], SECRET[5:15]):
        assert not [line for line in records if half in line], half


def test_a_secret_across_an_endless_lines_split_stays_masked(
    make_session: Any, records: list[str]
) -> None:
    """Output that never ends its line is logged in records as it comes; a secret that
    arrives across the record boundary, in separate writes, is still masked whole."""
    code = (
        "import os, sys, time\n"
        f"sys.stdout.write('x' * {MAX_LINE_CHARACTERS - 5}); sys.stdout.flush(); time.sleep(0.2)\n"
        "sys.stdout.write(os.environ['TOKEN']); sys.stdout.flush(); time.sleep(0.2)\n"
        "sys.stdout.write('z' * 100000); sys.stdout.flush()"
    )
    _session, final, _ = run_with_secret(make_session, code)
    assert final.state == ActionState.SUCCESS
    output = [line for line in records if set(line) <= set("xz*")]
    assert REDACTED in "".join(output)
    assert not [line for line in records if SECRET[:8] in line or SECRET[-8:] in line]


def test_log_content_of_masked_status_lines_is_still_command_output(
    make_session: Any,
) -> None:
    seen: list[tuple[str, Any]] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.getMessage(), getattr(record, "openjd_log_content", None)))

    handler = Collector()
    LOG.addHandler(handler)
    try:
        code = "import os\nprint('openjd_status: ' + os.environ['TOKEN'])"
        run_with_secret(make_session, code)
    finally:
        LOG.removeHandler(handler)
    assert (f"openjd_status: {REDACTED}", LogContent.COMMAND_OUTPUT) in seen
