"""Tasks: parameters, format strings, embedded files, path mapping and output handling."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pytest
from openjd.model import ParameterValue, ParameterValueType, StepParameterSpaceIterator

from helpers import PYTHON, make_job, python_action
from openjd_notebook.sessions import (
    LOG,
    ActionState,
    LogContent,
    PathFormat,
    PathMappingRule,
)


@pytest.fixture
def output_lines() -> Iterator[list[str]]:
    """Every COMMAND_OUTPUT record the engine logs while the test runs."""
    lines: list[str] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "openjd_log_content", None) == LogContent.COMMAND_OUTPUT:
                lines.append(record.getMessage())

    handler = Collector()
    LOG.addHandler(handler)
    yield lines
    LOG.removeHandler(handler)


def _step(
    script: dict[str, Any], parameters: list[dict[str, Any]] | None = None, **job: Any
) -> Any:
    step: dict[str, Any] = {"name": "S", "script": script}
    if parameters:
        step["parameterSpace"] = {"taskParameterDefinitions": parameters}
    return make_job({"steps": [step], **job}, parameters=job.pop("values", None))


def test_parameters_and_raw_parameters_resolve(make_session: Any, output_lines: list[str]) -> None:
    args = [
        "-c",
        "import sys; print(*sys.argv[1:], sep='|')",
        "{{Param.I}}",
        "{{RawParam.S}}",
        "{{Task.Param.F}}",
        "{{Task.RawParam.T}}",
        "{{Session.WorkingDirectory}}",
    ]
    step = {"name": "S", "script": {"actions": {"onRun": {"command": PYTHON, "args": args}}}}
    step["parameterSpace"] = {
        "taskParameterDefinitions": [
            {"name": "F", "type": "FLOAT", "range": ["1.5"]},
            {"name": "T", "type": "STRING", "range": ["tee"]},
        ]
    }
    job, values = make_job(
        {
            "parameterDefinitions": [
                {"name": "I", "type": "INT"},
                {"name": "S", "type": "STRING"},
            ],
            "steps": [step],
        },
        parameters={"I": "7", "S": "ess"},
    )
    session = make_session(job_parameter_values=values)
    (task,) = list(StepParameterSpaceIterator(space=job.steps[0].parameterSpace))
    session.run_task(step_script=job.steps[0].script, task_parameter_values=task)
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    assert output_lines == [f"7|ess|1.5|tee|{session.working_directory}"]


def test_embedded_files_are_written_with_format_strings(make_session: Any) -> None:
    script = {
        "embeddedFiles": [
            {
                "name": "Runner",
                "type": "TEXT",
                "runnable": True,
                "data": '#!/bin/sh\necho "frame {{Task.Param.Frame}}" > out-{{Task.Param.Frame}}.txt\n',
            },
            {
                "name": "Named",
                "type": "TEXT",
                "filename": "named.txt",
                "data": "{{Task.File.Runner}}",
            },
        ],
        "actions": {"onRun": {"command": "{{Task.File.Runner}}"}},
    }
    job, values = _step(script, [{"name": "Frame", "type": "INT", "range": "1-3"}])
    session = make_session(job_parameter_values=values)
    for task in StepParameterSpaceIterator(space=job.steps[0].parameterSpace):
        session.run_task(step_script=job.steps[0].script, task_parameter_values=task)
        assert session.wait(timeout=10).state == ActionState.SUCCESS
    for frame in (1, 2, 3):
        assert (session.working_directory / f"out-{frame}.txt").read_text() == f"frame {frame}\n"
    named = session.files_directory / "named.txt"
    runner = Path(named.read_text())
    assert runner.parent == session.files_directory
    assert runner.stat().st_mode & 0o777 == 0o700
    assert named.stat().st_mode & 0o777 == 0o600


def test_unresolvable_format_string_fails_before_start(make_session: Any) -> None:
    job, values = _step(
        {"actions": {"onRun": {"command": "echo", "args": ["{{Task.Param.Frame}}"]}}},
        [{"name": "Frame", "type": "INT", "range": "1"}],
    )
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    status = session.wait(timeout=10)
    assert status.state == ActionState.FAILED
    assert status.exit_code is None
    assert "Task.Param.Frame" in (status.fail_message or "")


def test_missing_command_fails_with_a_clear_message(make_session: Any) -> None:
    job, values = _step({"actions": {"onRun": {"command": "no-such-command-anywhere"}}})
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    status = session.wait(timeout=10)
    # As the reference reports it (its /bin/sh wrapper exits 127), plus the reason.
    assert (status.state, status.exit_code, status.fail_message) == (ActionState.FAILED, 127, None)
    assert status.launch_error == "no-such-command-anywhere: not found"


def test_path_mapping_rules_map_path_parameters(make_session: Any, output_lines: list[str]) -> None:
    code = "import sys; print(*sys.argv[1:], sep='|')"
    args = [
        "-c",
        code,
        "{{Param.P}}",
        "{{RawParam.P}}",
        "{{Param.W}}",
        "{{Session.HasPathMappingRules}}",
        "{{Session.PathMappingRulesFile}}",
    ]
    job, values = make_job(
        {
            "parameterDefinitions": [
                {"name": "P", "type": "PATH"},
                {"name": "W", "type": "PATH"},
            ],
            "steps": [
                {"name": "S", "script": {"actions": {"onRun": {"command": PYTHON, "args": args}}}}
            ],
        },
        parameters={"P": "/mnt/assets/scene/a.ma", "W": "C:\\Projects\\b.ma"},
    )
    rules = [
        PathMappingRule(
            source_path_format=PathFormat.POSIX,
            source_path=PurePosixPath("/mnt/assets"),
            destination_path=PurePosixPath("/data"),
        ),
        PathMappingRule(
            source_path_format=PathFormat.POSIX,
            source_path=PurePosixPath("/mnt/assets/scene"),
            destination_path=PurePosixPath("/scenes"),
        ),
        PathMappingRule(
            source_path_format=PathFormat.WINDOWS,
            source_path=PureWindowsPath("C:\\Projects"),
            destination_path=PurePosixPath("/projects"),
        ),
    ]
    # A Windows path stays as submitted on Linux, so that a rule can map it.
    values["W"] = ParameterValue(type=ParameterValueType.PATH, value="C:\\Projects\\b.ma")
    session = make_session(job_parameter_values=values, path_mapping_rules=rules)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    mapped, raw, windows, has_rules, rules_file = output_lines[0].split("|")
    assert (mapped, raw, windows, has_rules) == (
        "/scenes/a.ma",
        "/mnt/assets/scene/a.ma",
        "/projects/b.ma",
        "true",
    )
    content = json.loads(Path(rules_file).read_text())
    assert content["version"] == "pathmapping-1.0"
    assert [rule["source_path"] for rule in content["path_mapping_rules"]] == [
        "/mnt/assets/scene",
        "/mnt/assets",
        "C:\\Projects",
    ]


def test_no_path_mapping_rules(make_session: Any, output_lines: list[str]) -> None:
    code = "import sys; print(sys.argv[1], open(sys.argv[2]).read())"
    job, values = _step(
        {
            "actions": {
                "onRun": {
                    "command": PYTHON,
                    "args": [
                        "-c",
                        code,
                        "{{Session.HasPathMappingRules}}",
                        "{{Session.PathMappingRulesFile}}",
                    ],
                }
            }
        }
    )
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    session.wait(timeout=10)
    assert output_lines == ["false {}"]


def test_output_edge_cases(make_session: Any, output_lines: list[str]) -> None:
    code = (
        "import sys; out = sys.stdout.buffer; "
        "out.write(b'bad \\x97 byte\\n'); out.write(b'crlf\\r\\n'); "
        "out.write(b'x' * 200000 + b'\\n'); out.write(b'no newline at the end')"
    )
    job, values = _step({"actions": {"onRun": python_action(code)}})
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    assert output_lines[0] == "bad \\x97 byte"
    assert output_lines[1] == "crlf"
    long_pieces = output_lines[2:-1]
    assert "".join(long_pieces) == "x" * 200000
    assert [len(piece) for piece in long_pieces] == [64000, 64000, 64000, 8000]
    assert output_lines[-1] == "no newline at the end"


def test_stderr_is_merged_and_messages_on_stderr_count(make_session: Any) -> None:
    code = "import sys; print('openjd_progress: 75', file=sys.stderr)"
    job, values = _step({"actions": {"onRun": python_action(code)}})
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    assert session.wait(timeout=10).progress == 75.0


def test_openjd_fail_does_not_fail_a_successful_exit(make_session: Any) -> None:
    job, values = _step({"actions": {"onRun": python_action("print('openjd_fail: looked bad')")}})
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    status = session.wait(timeout=10)
    assert (status.state, status.fail_message, status.exit_code) == (
        ActionState.SUCCESS,
        "looked bad",
        0,
    )


def test_progress_out_of_range_is_reported_in_the_line(
    make_session: Any, output_lines: list[str]
) -> None:
    job, values = _step({"actions": {"onRun": python_action("print('openjd_progress: 150')")}})
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    assert session.wait(timeout=10).progress is None
    assert output_lines == [
        "openjd_progress: 150 -- ERROR: Progress must be a floating point value between 0.0 and 100.0, inclusive."
    ]


def test_near_miss_env_command_kills_a_task(make_session: Any) -> None:
    code = "import time; print('OPENJD_ENV: X=1', flush=True); time.sleep(10)"
    job, values = _step({"actions": {"onRun": python_action(code)}})
    session = make_session(job_parameter_values=values)
    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    status = session.wait(timeout=10)
    assert status.state == ActionState.FAILED
    assert status.exit_code == -9
    assert "Incorrectly formatted openjd env command" in (status.fail_message or "")


def test_run_subprocess_uses_arguments_literally(
    make_session: Any, output_lines: list[str]
) -> None:
    session = make_session()
    session.run_subprocess(
        command=PYTHON, args=["-c", "import sys; print(sys.argv[1])", "{{Param.X}}"]
    )
    assert session.wait(timeout=10).state == ActionState.SUCCESS
    assert output_lines == ["{{Param.X}}"]
    with pytest.raises(ValueError, match="timeout must be a positive integer"):
        session.run_subprocess(command="true", timeout=0)
    with pytest.raises(ValueError, match="command must be a non-empty string"):
        session.run_subprocess(command="")


def test_run_subprocess_without_session_variables(
    make_session: Any, output_lines: list[str]
) -> None:
    job, values = make_job(
        {
            "jobEnvironments": [{"name": "E", "variables": {"FOO": "bar"}}],
            "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "true"}}}}],
        }
    )
    session = make_session(job_parameter_values=values)
    session.enter_environment(environment=job.jobEnvironments[0])
    session.wait(timeout=10)
    code = "import os; print(os.environ.get('FOO'))"
    session.run_subprocess(command=PYTHON, args=["-c", code])
    session.wait(timeout=10)
    session.run_subprocess(command=PYTHON, args=["-c", code], use_session_env_vars=False)
    session.wait(timeout=10)
    assert output_lines == ["bar", "None"]


def test_host_environment_is_inherited(
    make_session: Any, output_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENJD_NOTEBOOK_TEST_INHERITED", "yes")
    session = make_session()
    session.run_subprocess(
        command=PYTHON,
        args=["-c", "import os; print(os.environ['OPENJD_NOTEBOOK_TEST_INHERITED'])"],
    )
    session.wait(timeout=10)
    assert output_lines == ["yes"]
    assert os.environ["OPENJD_NOTEBOOK_TEST_INHERITED"] == "yes"
