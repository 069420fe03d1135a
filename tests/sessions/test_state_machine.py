"""Session states, the calls each state allows, and callback order."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from helpers import make_job, one_step_job, python_action
from openjd_notebook.sessions import ActionState, ActionStatus, SessionState


def _task(code: str) -> Any:
    job, _ = one_step_job(python_action(code))
    return job.steps[0].script


def _environment(on_enter: str | None = None, on_exit: str | None = None, **extra: Any) -> Any:
    actions = {}
    if on_enter is not None:
        actions["onEnter"] = python_action(on_enter)
    if on_exit is not None:
        actions["onExit"] = python_action(on_exit)
    environment: dict[str, Any] = {"name": "Env", **extra}
    if actions:
        environment["script"] = {"actions": actions}
    job, _ = make_job(
        {
            "jobEnvironments": [environment],
            "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "true"}}}}],
        }
    )
    return job.jobEnvironments[0]


def test_new_session_is_ready_and_cleanup_ends_it(make_session: Any) -> None:
    session = make_session()
    assert session.state == SessionState.READY
    assert session.action_status is None
    assert session.working_directory.is_dir()
    session.cleanup()
    assert session.state == SessionState.ENDED
    assert not session.working_directory.exists()
    session.cleanup()  # idempotent


def test_task_runs_to_success(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_task("print('hi')"), task_parameter_values={})
    assert session.state in (SessionState.RUNNING, SessionState.READY)
    status = session.wait(timeout=10)
    assert status == ActionStatus(ActionState.SUCCESS, exit_code=0)
    assert status.pid is not None and status.duration_s is not None
    assert session.state == SessionState.READY


def test_failed_task_makes_the_session_ending_only(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_task("raise SystemExit(3)"), task_parameter_values={})
    assert session.wait(timeout=10) == ActionStatus(ActionState.FAILED, exit_code=3)
    assert session.state == SessionState.READY_ENDING
    with pytest.raises(RuntimeError, match="READY state to run a task"):
        session.run_task(step_script=_task("pass"), task_parameter_values={})
    with pytest.raises(RuntimeError, match="READY state to enter an Environment"):
        session.enter_environment(environment=_environment("pass"))


def test_calls_while_running_raise(make_session: Any) -> None:
    session = make_session()
    session.run_task(step_script=_task("import time; time.sleep(5)"), task_parameter_values={})
    with pytest.raises(RuntimeError, match="READY state to run a task"):
        session.run_task(step_script=_task("pass"), task_parameter_values={})
    with pytest.raises(RuntimeError, match="READY or READY_ENDING state to exit"):
        session.exit_environment(identifier="x")
    with pytest.raises(RuntimeError, match="READY state to run a subprocess"):
        session.run_subprocess(command="true")
    session.cancel_action()
    assert session.wait(timeout=10).state == ActionState.CANCELED


def test_cancel_without_an_action_raises(make_session: Any) -> None:
    with pytest.raises(RuntimeError, match="No actions are running"):
        make_session().cancel_action()


def test_wait_before_any_action_raises_and_wait_times_out(make_session: Any) -> None:
    session = make_session()
    with pytest.raises(RuntimeError, match="No action has been started"):
        session.wait()
    session.run_task(step_script=_task("import time; time.sleep(5)"), task_parameter_values={})
    with pytest.raises(TimeoutError):
        session.wait(timeout=0.2)
    session.cancel_action()
    session.wait(timeout=10)


def test_environment_identifiers_and_exit_order(make_session: Any) -> None:
    session = make_session()
    outer = session.enter_environment(environment=_environment("pass", "pass"), identifier="outer")
    session.wait(timeout=10)
    inner = session.enter_environment(environment=_environment("pass", "pass"))
    session.wait(timeout=10)
    assert session.environments_entered == (outer, inner)
    with pytest.raises(RuntimeError, match="already been entered"):
        session.enter_environment(environment=_environment("pass"), identifier="outer")
    with pytest.raises(RuntimeError, match=f"Must exit Environment {inner} first"):
        session.exit_environment(identifier=outer)
    with pytest.raises(RuntimeError, match="Cannot exit unknown Environment"):
        session.exit_environment(identifier="nope")
    session.exit_environment(identifier=inner)
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    assert session.state == SessionState.READY_ENDING
    session.exit_environment(identifier=outer)
    session.wait(timeout=10)
    assert session.environments_entered == ()


def test_keep_session_running_allows_more_tasks(make_session: Any) -> None:
    session = make_session()
    identifier = session.enter_environment(environment=_environment("pass", "pass"))
    session.wait(timeout=10)
    session.exit_environment(identifier=identifier, keep_session_running=True)
    session.wait(timeout=10)
    assert session.state == SessionState.READY
    session.run_task(step_script=_task("pass"), task_parameter_values={})
    assert session.wait(timeout=10).state == ActionState.SUCCESS


def test_environment_without_actions_succeeds_synchronously(make_session: Any) -> None:
    calls: list[ActionStatus] = []
    session = make_session(callback=lambda _id, status: calls.append(status))
    identifier = session.enter_environment(environment=_environment(variables={"A": "1"}))
    assert calls == [ActionStatus(ActionState.SUCCESS)]
    assert session.state == SessionState.READY
    session.exit_environment(identifier=identifier)
    assert calls[-1] == ActionStatus(ActionState.SUCCESS)
    assert session.state == SessionState.READY_ENDING


def test_failed_enter_still_needs_its_exit(make_session: Any) -> None:
    session = make_session()
    identifier = session.enter_environment(
        environment=_environment("raise SystemExit(1)", "print('exiting')")
    )
    assert session.wait(timeout=10) == ActionStatus(ActionState.FAILED, exit_code=1)
    assert session.environments_entered == (identifier,)
    session.exit_environment(identifier=identifier)
    assert session.wait(timeout=10).state == ActionState.SUCCESS


def test_callbacks_arrive_in_order_and_see_the_new_state(make_session: Any) -> None:
    seen: list[tuple[ActionStatus, SessionState]] = []
    done = threading.Event()
    holder: dict[str, Any] = {}

    def callback(session_id: str, status: ActionStatus) -> None:
        assert session_id == "ordered"
        seen.append((status, holder["session"].state))
        if status.state != ActionState.RUNNING:
            done.set()

    session = make_session(session_id="ordered", callback=callback)
    holder["session"] = session
    code = "print('openjd_progress: 50'); print('openjd_status: half'); print('openjd_fail: meh')"
    session.run_task(step_script=_task(code), task_parameter_values={})
    assert done.wait(10)
    statuses = [status for status, _ in seen]
    assert statuses == [
        ActionStatus(ActionState.RUNNING),
        ActionStatus(ActionState.RUNNING, progress=50.0),
        ActionStatus(ActionState.RUNNING, progress=50.0, status_message="half"),
        ActionStatus(ActionState.RUNNING, 50.0, "half", "meh"),
        ActionStatus(ActionState.SUCCESS, 50.0, "half", "meh", 0),
    ]
    assert seen[-1][1] == SessionState.READY


def test_a_raising_callback_is_isolated(make_session: Any) -> None:
    def callback(_id: str, _status: ActionStatus) -> None:
        raise ValueError("callback bug")

    session = make_session(callback=callback)
    session.run_task(step_script=_task("print('openjd_progress: 10')"), task_parameter_values={})
    assert session.wait(timeout=10).state == ActionState.SUCCESS


def test_callback_can_chain_the_next_task(make_session: Any) -> None:
    finished: list[int] = []
    all_done = threading.Event()
    holder: dict[str, Any] = {}

    def callback(_id: str, status: ActionStatus) -> None:
        if status.state == ActionState.SUCCESS:
            finished.append(1)
            if len(finished) < 3:
                holder["session"].run_task(step_script=_task("pass"), task_parameter_values={})
            else:
                all_done.set()

    session = make_session(callback=callback)
    holder["session"] = session
    session.run_task(step_script=_task("pass"), task_parameter_values={})
    assert all_done.wait(15)
    assert len(finished) == 3


def test_context_manager_cleans_up(make_session: Any) -> None:
    with make_session() as session:
        directory = session.working_directory
        assert directory.is_dir()
    assert not directory.exists()
    assert session.state == SessionState.ENDED


def test_bad_root_directory_is_refused(tmp_path: Any) -> None:
    from openjd_notebook.sessions import Session

    with pytest.raises(RuntimeError, match="exists and is a directory"):
        Session(
            session_id="x",
            job_parameter_values={},
            session_root_directory=tmp_path / "missing",
        )


def test_working_directory_is_private_and_under_the_root(make_session: Any) -> None:
    session = make_session()
    assert session.working_directory.parent.name == "root"
    assert session.working_directory.stat().st_mode & 0o777 == 0o700
    assert session.files_directory.parent == session.working_directory
