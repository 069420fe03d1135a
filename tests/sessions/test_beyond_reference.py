"""What the engine does better than openjd-sessions 0.14, each checked with real processes."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from helpers import PYTHON, one_step_job, python_action
from openjd_notebook.sessions import LOG, ActionState, ActionStatus, Session, SessionState

# Starts a grandchild that escapes the process group (setsid) and one that double-forks,
# writes their pids to pids.txt and then sleeps.
ESCAPERS = (
    "import os, sys, time, subprocess\n"
    "escaper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
    " start_new_session=True)\n"
    "pids = [escaper.pid]\n"
    "read, write = os.pipe()\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        os.write(write, str(os.getpid()).encode())\n"
    "        time.sleep(60)\n"
    "    os._exit(0)\n"
    "pids.append(int(os.read(read, 32)))\n"
    "open('pids.txt', 'w').write(' '.join(map(str, pids)))\n"
    "print('spawned', flush=True)\n"
    "time.sleep({sleep})\n"
)


def _script(code: str, **action: Any) -> Any:
    job, _ = one_step_job(python_action(code, **action))
    return job.steps[0].script


def _wait_for_file(path: Path, timeout: float = 10) -> str:
    give_up = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < give_up, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _escaper_pids(session: Session) -> list[int]:
    return [int(pid) for pid in _wait_for_file(session.working_directory / "pids.txt").split()]


def test_cancel_kills_setsid_and_double_forked_descendants(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_script(ESCAPERS.format(sleep=60)), task_parameter_values={})
    pids = _escaper_pids(session)
    assert all(_alive(pid) for pid in pids)
    session.cancel_action()
    assert session.wait(timeout=15).state == ActionState.CANCELED
    assert not any(_alive(pid) for pid in pids)


def test_cleanup_kills_background_processes_left_by_actions(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_script(ESCAPERS.format(sleep=0)), task_parameter_values={})
    assert session.wait(timeout=15).state == ActionState.SUCCESS
    pids = _escaper_pids(session)
    assert all(_alive(pid) for pid in pids), "a finished action leaves its background work alone"
    session.cleanup()
    assert not any(_alive(pid) for pid in pids)


def test_action_ends_promptly_when_a_background_child_holds_stdout(make_session: Any) -> None:
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
    )
    session = make_session()
    session.run_task(step_script=_script(code), task_parameter_values={})
    status = session.wait(timeout=15)
    assert status.state == ActionState.SUCCESS
    assert status.duration_s is not None and status.duration_s < 3  # the reference takes 6 s
    assert _alive(int((session.working_directory / "child.pid").read_text()))


def _thread_cpu_ticks(native_id: int) -> int:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_a_silent_action_costs_no_cpu(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_script("import time; time.sleep(3)"), task_parameter_values={})
    time.sleep(0.3)
    pid = session.action_status.pid
    (pump,) = [thread for thread in threading.enumerate() if thread.name == f"openjd-action-{pid}"]
    assert pump.native_id is not None
    before = _thread_cpu_ticks(pump.native_id)
    time.sleep(1.5)
    after = _thread_cpu_ticks(pump.native_id)
    # The reference's 1 ms polling loop spends ~6 ticks (60 ms) in this window.
    assert after - before <= 1
    session.wait(timeout=10)


def test_cleanup_cancels_a_running_action_before_deleting(make_session: Any) -> None:
    calls: list[ActionStatus] = []
    session = make_session(callback=lambda _id, status: calls.append(status))
    session.run_task(step_script=_script(ESCAPERS.format(sleep=60)), task_parameter_values={})
    pids = _escaper_pids(session)
    directory = session.working_directory
    started = time.monotonic()
    session.cleanup()
    assert time.monotonic() - started < 10  # the reference blocks until the task ends by itself
    assert calls[-1].state == ActionState.CANCELED
    assert session.state == SessionState.ENDED
    assert not directory.exists()
    assert not any(_alive(pid) for pid in pids)


def test_no_files_pile_up_in_the_working_directory(make_session: Any) -> None:
    job, _ = one_step_job(
        {"command": "{{Task.File.Run}}"},
        script_extra={
            "embeddedFiles": [
                {"name": "Run", "type": "TEXT", "runnable": True, "data": "#!/bin/sh\ntrue\n"}
            ]
        },
    )
    session = make_session()
    for _ in range(100):
        session.run_task(step_script=job.steps[0].script, task_parameter_values={})
        assert session.wait(timeout=10).state == ActionState.SUCCESS
    assert [entry.name for entry in session.working_directory.iterdir()] == [
        session.files_directory.name
    ]
    assert len(list(session.files_directory.iterdir())) <= 2  # the rules file and Task.File.Run


def test_runtime_log_level_is_per_session(make_session: Any) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    LOG.addHandler(handler)
    try:
        chatty = make_session(session_id="chatty")
        quiet = make_session(session_id="quiet")
        chatty.run_task(
            step_script=_script("print('openjd_session_runtime_loglevel: DEBUG')"),
            task_parameter_values={},
        )
        chatty.wait(timeout=10)
        for session in (chatty, quiet):
            session.run_task(
                step_script=_script("print('openjd_env: A=1')"), task_parameter_values={}
            )
            session.wait(timeout=10)
    finally:
        LOG.removeHandler(handler)
    debug_sessions = {record.session_id for record in records if record.levelno == logging.DEBUG}  # type: ignore[attr-defined]
    assert debug_sessions == {"chatty"}
    assert LOG.level == logging.NOTSET and not LOG.filters


def test_dropped_session_does_not_leak_processes_or_directories(session_root: Path) -> None:
    session = Session(
        session_id="dropped", job_parameter_values={}, session_root_directory=session_root
    )
    session.run_task(step_script=_script(ESCAPERS.format(sleep=60)), task_parameter_values={})
    pids = _escaper_pids(session)
    directory = session.working_directory
    session.cancel_action()
    session.wait(timeout=15)
    del session
    gc.collect()
    assert not directory.exists()
    assert not any(_alive(pid) for pid in pids)


def test_wait_returns_the_final_status_without_a_callback(make_session: Any) -> None:
    session = make_session()
    session.run_subprocess(command=PYTHON, args=["-c", "raise SystemExit(4)"])
    assert session.wait() == ActionStatus(ActionState.FAILED, exit_code=4)
    assert os.getpid() > 0
