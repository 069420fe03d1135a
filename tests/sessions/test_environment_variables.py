"""How environments change the variables that later actions see (behaviours 52-56)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import make_job, python_action
from openjd_notebook.sessions import ActionState, Session, SessionState

DUMP = (
    "import json, os, sys; "
    "open(sys.argv[1], 'a').write(json.dumps({k: os.environ.get(k) for k in sys.argv[2:]}) + '\\n')"
)


def _dump_action(out: Path, *names: str) -> dict[str, Any]:
    return {"command": python_action("")["command"], "args": ["-c", DUMP, str(out), *names]}


def _env(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


def _job(environments: list[dict[str, Any]], on_run: dict[str, Any], **params: str) -> Any:
    template: dict[str, Any] = {"steps": [{"name": "S", "script": {"actions": {"onRun": on_run}}}]}
    if environments:
        template["jobEnvironments"] = environments
    if params:
        template["parameterDefinitions"] = [{"name": name, "type": "STRING"} for name in params]
    return make_job(template, parameters=params)


def _dumps(path: Path) -> list[dict[str, str | None]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run_all(session: Session, job: Any) -> None:
    """Enter every job environment, run the one task, exit in reverse."""
    identifiers = []
    for environment in job.jobEnvironments:
        identifiers.append(session.enter_environment(environment=environment))
        assert session.wait(timeout=10).state == ActionState.SUCCESS
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    for identifier in reversed(identifiers):
        session.exit_environment(identifier=identifier)
        assert session.wait(timeout=10).state == ActionState.SUCCESS


def test_declared_variables_are_format_strings_and_reach_their_own_on_enter(
    make_session: Any, tmp_path: Path
) -> None:
    out = tmp_path / "env.jsonl"
    job, values = _job(
        [
            _env(
                "E",
                variables={"FOO": "{{Param.J}}-value"},
                script={"actions": {"onEnter": _dump_action(out, "FOO")}},
            )
        ],
        _dump_action(out, "FOO"),
        J="jay",
    )
    session = make_session(job_parameter_values=values)
    _run_all(session, job)
    assert _dumps(out) == [{"FOO": "jay-value"}, {"FOO": "jay-value"}]


def test_openjd_env_from_on_enter_applies_to_later_actions_only(
    make_session: Any, tmp_path: Path
) -> None:
    out = tmp_path / "env.jsonl"
    setter = "print('openjd_env: FOO=from-stdout'); print('openjd_env: EMPTY=')"
    enter = {
        "command": python_action("")["command"],
        "args": ["-c", f"{setter}; {DUMP}", str(out), "FOO"],
    }
    job, values = _job(
        [_env("E", variables={"BAR": "declared"}, script={"actions": {"onEnter": enter}})],
        _dump_action(out, "FOO", "BAR", "EMPTY"),
    )
    session = make_session(job_parameter_values=values)
    _run_all(session, job)
    assert _dumps(out) == [{"FOO": None}, {"FOO": "from-stdout", "BAR": "declared", "EMPTY": ""}]


def test_json_form_sets_multi_line_values(make_session: Any, tmp_path: Path) -> None:
    out = tmp_path / "env.jsonl"
    enter = python_action("print('openjd_env: \"FOO=12\\\\n34\"')")
    job, values = _job(
        [_env("E", script={"actions": {"onEnter": enter}})], _dump_action(out, "FOO")
    )
    session = make_session(job_parameter_values=values)
    _run_all(session, job)
    assert _dumps(out) == [{"FOO": "12\n34"}]


def test_unset_env_hides_inherited_and_outer_values(make_session: Any, tmp_path: Path) -> None:
    out = tmp_path / "env.jsonl"
    outer = _env("Outer", variables={"FOO": "outer"})
    inner = _env(
        "Inner",
        script={
            "actions": {
                "onEnter": python_action(
                    "print('openjd_unset_env: FOO'); print('openjd_unset_env: HOME')"
                )
            }
        },
    )
    job, values = _job([outer, inner], _dump_action(out, "FOO", "HOME"))
    session = make_session(job_parameter_values=values)
    _run_all(session, job)
    assert _dumps(out) == [{"FOO": None, "HOME": None}]


def test_inner_overrides_outer_and_on_exit_sees_its_own_variables(
    make_session: Any, tmp_path: Path
) -> None:
    out = tmp_path / "env.jsonl"
    outer = _env(
        "Outer",
        variables={"FOO": "outer", "ONLY_OUTER": "o"},
        script={"actions": {"onExit": _dump_action(out, "FOO", "ONLY_INNER")}},
    )
    inner = _env(
        "Inner",
        variables={"FOO": "inner", "ONLY_INNER": "i"},
        script={"actions": {"onExit": _dump_action(out, "FOO", "ONLY_INNER")}},
    )
    job, values = _job([outer, inner], _dump_action(out, "FOO", "ONLY_OUTER", "ONLY_INNER"))
    session = make_session(job_parameter_values=values)
    _run_all(session, job)
    assert _dumps(out) == [
        {"FOO": "inner", "ONLY_OUTER": "o", "ONLY_INNER": "i"},
        {"FOO": "inner", "ONLY_INNER": "i"},
        {"FOO": "outer", "ONLY_INNER": None},
    ]


def test_environment_values_override_os_env_vars(make_session: Any, tmp_path: Path) -> None:
    out = tmp_path / "env.jsonl"
    job, values = _job(
        [_env("E", variables={"FOO": "env"})], _dump_action(out, "FOO", "SESSION", "CALL")
    )
    session = make_session(
        job_parameter_values=values, os_env_vars={"FOO": "session", "SESSION": "s"}
    )
    session.enter_environment(environment=job.jobEnvironments[0])
    session.wait(timeout=10)
    session.run_task(
        step_script=job.steps[0].script,
        task_parameter_values={},
        os_env_vars={"FOO": "call", "CALL": "c"},
    )
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    assert _dumps(out) == [{"FOO": "env", "SESSION": "s", "CALL": "c"}]


def test_openjd_env_from_a_task_is_ignored(make_session: Any, tmp_path: Path) -> None:
    out = tmp_path / "env.jsonl"
    job, values = _job([], python_action("print('openjd_env: FOO=task')"))
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    session.run_task(
        step_script=_job([], _dump_action(out, "FOO"))[0].steps[0].script, task_parameter_values={}
    )
    session.wait(timeout=10)
    assert _dumps(out) == [{"FOO": None}]


def test_malformed_openjd_env_fails_the_enter(make_session: Any) -> None:
    enter = python_action("import time; print('openjd_env: FOO', flush=True); time.sleep(10)")
    job, values = _job([_env("E", script={"actions": {"onEnter": enter}})], {"command": "true"})
    session = make_session(job_parameter_values=values)
    session.enter_environment(environment=job.jobEnvironments[0])
    status = session.wait(timeout=10)
    assert status.state == ActionState.FAILED
    assert status.fail_message == "Failed to parse environment variable assignment."
    assert session.state == SessionState.READY_ENDING


def test_session_working_dir_variable(make_session: Any, tmp_path: Path) -> None:
    out = tmp_path / "env.jsonl"
    job, values = _job([], _dump_action(out, "OPENJD_SESSION_WORKING_DIR"))
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    session.wait(timeout=10)
    assert _dumps(out) == [{"OPENJD_SESSION_WORKING_DIR": str(session.working_directory)}]
