"""Actions that run as another POSIX user, through sudo (``PosixSessionUser``).

These tests need root on Linux with ``sudo`` and ``useradd``: they create a test user
once per module and remove it afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from openjd.model import Job

from helpers import StatusMessages, make_job
from openjd_notebook.sessions import (
    LOG,
    ActionState,
    ActionStatus,
    LogContent,
    PosixSessionUser,
    Session,
)

USER = "openjd-test-user"
WAIT_S = 5.0

MakeSession = Callable[..., Session]


def _missing_requirements() -> str | None:
    if not sys.platform.startswith("linux"):
        return "cross-user sessions are tested on Linux only"
    if os.geteuid() != 0:
        return "creating a test user and sudo-ing to it needs root"
    missing = [tool for tool in ("sudo", "useradd", "userdel") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (.ci/run installs the sudo package)"
    return None


pytestmark = pytest.mark.skipif(
    _missing_requirements() is not None, reason=str(_missing_requirements())
)


# ---- fixtures --------------------------------------------------------------------------


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def user_processes() -> list[psutil.Process]:
    """Live (not zombie) processes of the test user."""
    found = []
    for process in psutil.process_iter(["username", "status"]):
        if process.info["username"] == USER and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


@pytest.fixture(scope="module")
def session_user() -> Iterator[PosixSessionUser]:
    """The test user, with a group of its own name that the session shares files through."""
    created = False
    if not _user_exists(USER):
        command = ["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", USER]
        subprocess.run(command, check=True, capture_output=True)
        created = True
    yield PosixSessionUser(USER, group=USER)
    for process in user_processes():  # only ever started by these tests
        with contextlib.suppress(psutil.Error):
            process.kill()
    if created:
        subprocess.run(["userdel", "--remove", USER], check=False, capture_output=True)


@pytest.fixture
def session_root() -> Iterator[Path]:
    """Overrides conftest's: pytest's tmp_path is 0o700, which the test user cannot enter."""
    root = Path(tempfile.mkdtemp(prefix="openjd-session-user-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    collected: list[logging.LogRecord] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            collected.append(record)

    handler = Collector()
    LOG.addHandler(handler)
    yield collected
    LOG.removeHandler(handler)


# ---- helpers ---------------------------------------------------------------------------


def output(records: list[logging.LogRecord]) -> list[str]:
    return [
        record.getMessage()
        for record in records
        if getattr(record, "openjd_log_content", None) == LogContent.COMMAND_OUTPUT
    ]


def shell(script: str, **extra: Any) -> dict[str, Any]:
    return {"command": "/bin/sh", "args": ["-c", script], **extra}


def task_job(on_run: dict[str, Any], **script_extra: Any) -> Job:
    step = {"name": "Step", "script": {"actions": {"onRun": on_run}, **script_extra}}
    job, _ = make_job({"steps": [step]})
    return job


def run(session: Session, job: Job) -> ActionStatus:
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    return session.wait(timeout=WAIT_S)


# ---- tests -----------------------------------------------------------------------------


def test_task_runs_as_the_session_user_in_the_working_directory(
    make_session: MakeSession, session_user: PosixSessionUser, records: list[logging.LogRecord]
) -> None:
    session = make_session(user=session_user)

    status = run(session, task_job(shell("id -un; id -gn; pwd")))

    assert status.state == ActionState.SUCCESS
    assert status.exit_code == 0
    assert output(records) == [USER, USER, str(session.working_directory)]


def test_working_directory_is_shared_with_the_users_group(
    make_session: MakeSession, session_user: PosixSessionUser
) -> None:
    session = make_session(user=session_user)

    for directory in (session.working_directory, session.files_directory):
        info = directory.stat()
        assert stat.S_IMODE(info.st_mode) == 0o770
        assert info.st_gid == pwd.getpwnam(USER).pw_gid


def test_environment_variables_reach_the_workload_through_sudo(
    make_session: MakeSession,
    session_user: PosixSessionUser,
    records: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENJD_TEST_HOST_ONLY", "host")  # sudo -i must not pass it on
    tricky = 'it\'s $HOME; `id` "quoted"'
    environment = {
        "name": "Env",
        "variables": {"DECLARED": tricky},
        "script": {"actions": {"onEnter": shell("echo 'openjd_env: FROM_ENTER=entered'")}},
    }
    printer = shell(
        'printf "%s|%s|%s|%s|%s\\n" "$DECLARED" "$FROM_SESSION" "$FROM_ENTER" '
        '"$OPENJD_SESSION_WORKING_DIR" "${OPENJD_TEST_HOST_ONLY-unset}"'
    )
    job, _ = make_job(
        {
            "jobEnvironments": [environment],
            "steps": [{"name": "Step", "script": {"actions": {"onRun": printer}}}],
        }
    )
    session = make_session(user=session_user, os_env_vars={"FROM_SESSION": "a b"})
    assert job.jobEnvironments is not None

    session.enter_environment(environment=job.jobEnvironments[0])
    assert session.wait(timeout=WAIT_S).state == ActionState.SUCCESS
    assert run(session, job).state == ActionState.SUCCESS

    expected = f"{tricky}|a b|entered|{session.working_directory}|unset"
    assert output(records)[-1] == expected


def test_variable_with_an_invalid_name_is_skipped_with_a_warning(
    make_session: MakeSession, session_user: PosixSessionUser, records: list[logging.LogRecord]
) -> None:
    session = make_session(user=session_user, os_env_vars={"BAD-NAME": "x", "GOOD": "y"})

    status = run(session, task_job(shell('echo "$GOOD"')))

    assert status.state == ActionState.SUCCESS
    assert output(records) == ["y"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert any("BAD-NAME" in warning for warning in warnings)


def test_embedded_files_are_readable_and_runnable_by_the_user(
    make_session: MakeSession, session_user: PosixSessionUser, records: list[logging.LogRecord]
) -> None:
    files = [
        {"name": "Data", "type": "TEXT", "data": "embedded payload"},
        {"name": "Run", "type": "TEXT", "runnable": True, "data": "#!/bin/sh\necho runnable ok\n"},
    ]
    job = task_job(shell("cat {{Task.File.Data}}; echo; {{Task.File.Run}}"), embeddedFiles=files)
    session = make_session(user=session_user)

    status = run(session, job)

    assert status.state == ActionState.SUCCESS
    assert output(records) == ["embedded payload", "runnable ok"]


def test_path_mapping_rules_file_is_readable_by_the_user(
    make_session: MakeSession, session_user: PosixSessionUser, records: list[logging.LogRecord]
) -> None:
    session = make_session(user=session_user)

    status = run(session, task_job(shell("cat {{Session.PathMappingRulesFile}}")))

    assert status.state == ActionState.SUCCESS
    assert output(records) == ["{}"]


def test_cancel_kills_every_process_of_the_workload(
    make_session: MakeSession, session_user: PosixSessionUser
) -> None:
    watcher = StatusMessages()
    session = make_session(user=session_user, callback=watcher)
    job = task_job(shell("sleep 60 & echo 'openjd_status: ready'; sleep 60"))

    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    watcher.wait_for("ready")
    assert user_processes()
    session.cancel_action()
    status = session.wait(timeout=WAIT_S)

    assert status.state == ActionState.CANCELED
    assert user_processes() == []


def test_timeout_kills_every_process_of_the_workload(
    make_session: MakeSession, session_user: PosixSessionUser
) -> None:
    session = make_session(user=session_user)
    job = task_job(shell("sleep 60 & sleep 60", timeout=1))

    status = run(session, job)

    assert status.state == ActionState.TIMEOUT
    assert user_processes() == []


def test_cleanup_removes_files_the_user_kept_private(
    make_session: MakeSession, session_user: PosixSessionUser, records: list[logging.LogRecord]
) -> None:
    session = make_session(user=session_user)
    job = task_job(
        shell("umask 077; mkdir private; echo x > private/file; echo y > top; chmod 500 private")
    )
    assert run(session, job).state == ActionState.SUCCESS
    working_directory = session.working_directory
    private = working_directory / "private"
    assert private.stat().st_uid == pwd.getpwnam(USER).pw_uid
    assert stat.S_IMODE((working_directory / "top").stat().st_mode) == 0o600

    session.cleanup()

    assert not working_directory.exists()
    assert not [r for r in records if r.levelno >= logging.ERROR]


def test_cleanup_during_a_running_action_kills_it_and_removes_the_directory(
    make_session: MakeSession, session_user: PosixSessionUser
) -> None:
    watcher = StatusMessages()
    session = make_session(user=session_user, callback=watcher)
    job = task_job(shell("sleep 60 & echo 'openjd_status: ready'; sleep 60"))

    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    watcher.wait_for("ready")
    working_directory = session.working_directory
    session.cleanup()

    assert user_processes() == []
    assert not working_directory.exists()


def test_notify_then_terminate_delivers_sigterm_to_the_workload(
    make_session: MakeSession, session_user: PosixSessionUser
) -> None:
    watcher = StatusMessages()
    session = make_session(user=session_user, callback=watcher)
    workload = shell(
        "trap 'echo SIGTERM > term.txt; exit 0' TERM; echo 'openjd_status: ready'; "
        "while :; do sleep 0.1; done",
        cancelation={"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 3},
    )
    job = task_job(workload)

    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    watcher.wait_for("ready")
    session.cancel_action()
    status = session.wait(timeout=WAIT_S)

    assert status.state == ActionState.CANCELED
    assert (session.working_directory / "term.txt").read_text() == "SIGTERM\n"
    assert user_processes() == []


def test_the_script_with_the_variables_is_private_and_gone_once_started(
    make_session: MakeSession, session_user: PosixSessionUser, records: list[logging.LogRecord]
) -> None:
    """The per-action script holds the exports, redacted values included: it is the target
    user's alone (we run as root) and deletes itself once the shell has it open."""
    session = make_session(user=session_user, os_env_vars={"OPENJD_TEST_SECRET": "s3cret"})
    files = session.files_directory
    code = f'ls -a {files}; echo "secret=$OPENJD_TEST_SECRET"'
    status = run(session, task_job(shell(code)))
    assert status.state == ActionState.SUCCESS
    lines = output(records)
    assert "secret=s3cret" in lines
    assert not [line for line in lines if line.startswith("action-")], lines
    assert not list(files.glob("action-*.sh"))


def test_the_script_is_readable_by_the_target_user_only(
    session_user: PosixSessionUser, tmp_path: Path
) -> None:
    from openjd_notebook.sessions import _launch

    script = tmp_path / "action-1.sh"
    _launch.write_sudo_script(script, ["true"], {"TOKEN": "s3cret"}, "tag", tmp_path, session_user)
    status = script.stat()
    assert status.st_uid == pwd.getpwnam(USER).pw_uid
    assert stat.S_IMODE(status.st_mode) == 0o700
