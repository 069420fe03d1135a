"""Timeouts, TERMINATE and NOTIFY_THEN_TERMINATE cancelation, with real processes."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from helpers import one_step_job, python_action
from openjd_notebook.sessions import ActionState, ActionStatus, SessionState

# Traps SIGTERM, records it in the working directory and exits with code 0.
GRACEFUL = (
    "import signal, sys, time, pathlib\n"
    "def on_term(*_):\n"
    "    notify = pathlib.Path('cancel_info.json').read_text()\n"
    "    pathlib.Path('got-sigterm').write_text(notify)\n"
    "    print('got sigterm', flush=True)\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, on_term)\n"
    "print('ready', flush=True)\n"
    "time.sleep(30)\n"
)
# Ignores SIGTERM, so only the kill at the end of the notify period stops it.
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(30)\n"
)


def _script(code: str, **action: Any) -> Any:
    job, _ = one_step_job(python_action(code, **action))
    return job.steps[0].script


def _notify(period: int) -> dict[str, Any]:
    return {"cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": period}}


def _wait_for_output(session: Any, name: str = "ready", timeout: float = 10) -> None:
    # The child says "ready" once its signal handler is installed.
    give_up = time.monotonic() + timeout
    while session.action_status is None or session.action_status.pid is None:
        assert time.monotonic() < give_up
        time.sleep(0.01)
    time.sleep(0.3)


def test_timeout_ends_the_action_as_timeout(make_session: Any) -> None:
    session = make_session()
    session.run_task(
        step_script=_script("import time; time.sleep(30)", timeout=1), task_parameter_values={}
    )
    status = session.wait(timeout=10)
    assert status == ActionStatus(ActionState.TIMEOUT, exit_code=-9)
    assert status.duration_s is not None and status.duration_s < 5
    assert session.state == SessionState.READY_ENDING


def test_terminate_cancel_kills_at_once(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_script("import time; time.sleep(30)"), task_parameter_values={})
    assert not session.cancel_requested
    session.cancel_action()
    # As in openjd.sessions the state stays RUNNING until the action has ended; the cancel
    # in progress shows in cancel_requested and in the action status.
    assert session.state in (SessionState.RUNNING, SessionState.READY_ENDING)
    assert session.action_status is not None and session.action_status.cancel_requested
    final = session.wait(timeout=10)
    assert final == ActionStatus(ActionState.CANCELED, exit_code=-9)
    assert final.cancel_requested
    assert session.state == SessionState.READY_ENDING
    assert not session.cancel_requested


def test_notify_then_terminate_writes_cancel_info_then_signals(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_script(GRACEFUL, **_notify(30)), task_parameter_values={})
    _wait_for_output(session)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    session.cancel_action()
    status = session.wait(timeout=10)
    assert status == ActionStatus(ActionState.CANCELED, exit_code=0)
    notify = json.loads((session.working_directory / "got-sigterm").read_text())
    notify_end = datetime.strptime(notify["NotifyEnd"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc
    )
    assert before + timedelta(seconds=28) <= notify_end <= before + timedelta(seconds=32)


def test_time_limit_caps_the_notify_period(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_script(STUBBORN, **_notify(60)), task_parameter_values={})
    _wait_for_output(session)
    started = time.monotonic()
    session.cancel_action(time_limit=timedelta(seconds=1))
    status = session.wait(timeout=20)
    assert status == ActionStatus(ActionState.CANCELED, exit_code=-9)
    assert time.monotonic() - started < 10
    assert (session.working_directory / "cancel_info.json").is_file()


def test_second_cancel_shortens_the_grace_period(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_script(STUBBORN, **_notify(60)), task_parameter_values={})
    _wait_for_output(session)
    session.cancel_action(time_limit=timedelta(seconds=30))
    time.sleep(0.3)
    assert session.state == SessionState.RUNNING
    assert session.cancel_requested
    session.cancel_action(time_limit=timedelta(seconds=0))
    assert session.wait(timeout=10).state == ActionState.CANCELED


def test_mark_action_failed_reports_failed(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_script("import time; time.sleep(30)"), task_parameter_values={})
    session.cancel_action(mark_action_failed=True)
    assert session.wait(timeout=10) == ActionStatus(ActionState.FAILED, exit_code=-9)


def test_timeout_uses_the_actions_own_cancelation(make_session: Any) -> None:
    session = make_session()
    session.run_task(
        step_script=_script(GRACEFUL, timeout=1, **_notify(30)), task_parameter_values={}
    )
    status = session.wait(timeout=10)
    assert status == ActionStatus(ActionState.TIMEOUT, exit_code=0)
    assert (session.working_directory / "got-sigterm").is_file()


def test_cancel_right_after_start_is_not_lost(make_session: Any, tmp_path: Path) -> None:
    session = make_session()
    session.run_task(step_script=_script("import time; time.sleep(30)"), task_parameter_values={})
    session.cancel_action()
    session.cancel_action()  # repeated requests are harmless
    assert session.wait(timeout=10).state == ActionState.CANCELED


# Counts every SIGTERM in a file and keeps running, so only the kill ends it.
COUNTS_SIGTERMS = (
    "import signal, time\n"
    "def on_term(*_):\n"
    "    open('sigterms', 'a').write('TERM\\n')\n"
    "signal.signal(signal.SIGTERM, on_term)\n"
    "print('ready', flush=True)\n"
    "time.sleep(30)\n"
)


def test_each_action_is_notified_once_however_often_it_is_canceled(make_session: Any) -> None:
    """A second SIGTERM means "abort now" to many renderers: later cancels only shorten
    the grace period."""
    session = make_session()
    session.run_task(step_script=_script(COUNTS_SIGTERMS, **_notify(60)), task_parameter_values={})
    _wait_for_output(session)
    started = time.monotonic()
    session.cancel_action(time_limit=timedelta(seconds=30))
    time.sleep(0.3)
    session.cancel_action(time_limit=timedelta(seconds=20))
    session.cancel_action(time_limit=timedelta(seconds=1))
    status = session.wait(timeout=20)
    assert status == ActionStatus(ActionState.CANCELED, exit_code=-9)
    assert time.monotonic() - started < 10
    assert (session.working_directory / "sigterms").read_text() == "TERM\n"
