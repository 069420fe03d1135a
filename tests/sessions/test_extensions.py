"""Template extensions, decoded by openjd-model and each exercised by a real action:
REDACTED_ENV_VARS, TASK_CHUNKING, FEATURE_BUNDLE_1, EXPR and WRAP_ACTIONS."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openjd.model import (
    Job,
    RevisionExtensions,
    SpecificationRevision,
    StepParameterSpaceIterator,
    create_job_with_symbol_tables,
    decode_job_template,
    preprocess_job_parameters,
)

from helpers import StatusMessages, make_job, python_action
from openjd_notebook.sessions import (
    LOG,
    ActionState,
    ActionStatus,
    LogContent,
    Session,
    SessionState,
)

MakeSession = Callable[..., Session]

SECRET = "hunter2-value"
REDACTED = "********"
WAIT_S = 5.0

# Writes the value of $SECRET (or "<unset>") to seen.txt in the working directory.
RECORD_SECRET = (
    "import os; open('seen.txt', 'w').write(os.environ.get('SECRET', '<unset>'))\n"
    "print(os.environ.get('SECRET', '<unset>'))"
)
# Writes the action's arguments to argv.json in the working directory.
RECORD_ARGV = "import json, sys; open('argv.json', 'w').write(json.dumps(sys.argv[1:]))"


# ---- helpers ---------------------------------------------------------------------------


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record the engine logs while the test runs, at any level."""
    collected: list[logging.LogRecord] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            collected.append(record)

    handler = Collector(level=logging.DEBUG)
    LOG.addHandler(handler)
    yield collected
    LOG.removeHandler(handler)


def messages(records: list[logging.LogRecord], session_id: str | None = None) -> list[str]:
    return [
        record.getMessage()
        for record in records
        if session_id is None or getattr(record, "session_id", None) == session_id
    ]


def output(records: list[logging.LogRecord], session_id: str | None = None) -> list[str]:
    """The lines the actions printed, as logged."""
    return [
        record.getMessage()
        for record in records
        if getattr(record, "openjd_log_content", None) == LogContent.COMMAND_OUTPUT
        and (session_id is None or getattr(record, "session_id", None) == session_id)
    ]


def with_extensions(*names: str) -> RevisionExtensions:
    return RevisionExtensions(spec_rev=SpecificationRevision.v2023_09, supported_extensions=names)


def print_hidden(*lines: str) -> dict[str, Any]:
    """An action printing ``lines``, which do not appear literally in its command line."""
    encoded = "\n".join(lines).encode().hex()
    return python_action(f"print(bytes.fromhex({encoded!r}).decode())")


def args_action(code: str, *args: str, **extra: Any) -> dict[str, Any]:
    """A Python action with extra (format-string) arguments after the code."""
    return python_action(code, args=["-c", code, *args], **extra)


def env_then_task_job(on_enter: dict[str, Any], on_run: dict[str, Any]) -> Job:
    """A job with one environment (the given onEnter) and one step (the given onRun)."""
    job, _ = make_job(
        {
            "jobEnvironments": [{"name": "Env", "script": {"actions": {"onEnter": on_enter}}}],
            "steps": [{"name": "Step", "script": {"actions": {"onRun": on_run}}}],
        }
    )
    return job


def one_task_job(on_run: dict[str, Any]) -> Job:
    job, _ = make_job({"steps": [{"name": "Step", "script": {"actions": {"onRun": on_run}}}]})
    return job


def enter(session: Session, job: Job) -> ActionStatus:
    assert job.jobEnvironments is not None
    session.enter_environment(environment=job.jobEnvironments[0])
    return session.wait(timeout=WAIT_S)


def run(session: Session, job: Job, params: Any = None, **kwargs: Any) -> ActionStatus:
    session.run_task(step_script=job.steps[0].script, task_parameter_values=params or {}, **kwargs)
    return session.wait(timeout=WAIT_S)


def read(session: Session, name: str) -> str:
    return (session.working_directory / name).read_text()


# ---- REDACTED_ENV_VARS ------------------------------------------------------------------


def test_redacted_env_reaches_the_task_and_never_the_log(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    job = env_then_task_job(
        print_hidden(f"openjd_redacted_env: SECRET={SECRET}"), python_action(RECORD_SECRET)
    )
    session = make_session(revision_extensions=with_extensions("REDACTED_ENV_VARS"))

    assert enter(session, job).state == ActionState.SUCCESS
    assert run(session, job).state == ActionState.SUCCESS

    assert read(session, "seen.txt") == SECRET
    assert f"openjd_redacted_env: SECRET={REDACTED}" in output(records)
    assert REDACTED in output(records)  # the task's own print of the value
    assert not [message for message in messages(records) if SECRET in message]


def test_redacted_env_in_the_declaring_command_line_is_not_logged(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    job = env_then_task_job(
        python_action(f"print('openjd_redacted_env: SECRET={SECRET}')"),
        python_action(RECORD_SECRET),
    )
    session = make_session(revision_extensions=with_extensions("REDACTED_ENV_VARS"))

    assert enter(session, job).state == ActionState.SUCCESS

    assert not [message for message in messages(records) if SECRET in message]


def test_redacted_env_without_the_extension_warns_redacts_and_sets_nothing(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    job = env_then_task_job(
        print_hidden(f"openjd_redacted_env: SECRET={SECRET}"), python_action(RECORD_SECRET)
    )
    session = make_session()

    assert enter(session, job).state == ActionState.SUCCESS
    assert run(session, job).state == ActionState.SUCCESS

    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert (
        "Received openjd_redacted_env message but REDACTED_ENV_VARS extension is not enabled"
        in warnings
    )
    assert f"openjd_redacted_env: SECRET={REDACTED}" in output(records)
    assert read(session, "seen.txt") == "<unset>"
    assert not [message for message in messages(records) if SECRET in message]


def test_redacted_env_json_form_sets_a_multi_line_secret_and_masks_every_line(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    secret = "first-secret-line\nthe-middle-line\nlast-secret-line"
    job = env_then_task_job(
        print_hidden("openjd_redacted_env: " + json.dumps(f"SECRET={secret}")),
        python_action(RECORD_SECRET),
    )
    session = make_session(revision_extensions=with_extensions("REDACTED_ENV_VARS"))

    assert enter(session, job).state == ActionState.SUCCESS
    assert run(session, job).state == ActionState.SUCCESS

    assert read(session, "seen.txt") == secret
    assert f'openjd_redacted_env: "SECRET={REDACTED}' in output(records)
    # The task printed the three lines of the value; each is masked.
    assert output(records)[-3:] == [REDACTED] * 3
    leaked = [m for m in messages(records) for line in secret.split("\n") if line in m]
    assert not leaked


def test_redacted_env_later_lines_containing_the_secret_are_masked_in_place(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    job = env_then_task_job(
        print_hidden(f"openjd_redacted_env: SECRET={SECRET}"),
        python_action("import os; print('token=' + os.environ['SECRET'] + ';end')"),
    )
    session = make_session(revision_extensions=with_extensions("REDACTED_ENV_VARS"))

    enter(session, job)
    assert run(session, job).state == ActionState.SUCCESS

    assert f"token={REDACTED};end" in output(records)


def test_one_sessions_secret_is_not_masked_in_another_sessions_output(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    # The reference masks session A's secret everywhere (one filter on a global logger).
    job = env_then_task_job(
        print_hidden(f"openjd_redacted_env: SECRET={SECRET}"),
        print_hidden(f"B prints {SECRET}"),
    )
    extensions = with_extensions("REDACTED_ENV_VARS")
    session_a = make_session(session_id="A", revision_extensions=extensions)
    session_b = make_session(session_id="B", revision_extensions=extensions)

    enter(session_a, job)
    assert run(session_b, job).state == ActionState.SUCCESS
    assert run(session_a, job).state == ActionState.SUCCESS

    assert output(records, "B") == [f"B prints {SECRET}"]
    assert output(records, "A")[-1] == f"B prints {REDACTED}"


def test_runtime_loglevel_of_one_session_changes_neither_another_session_nor_log(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    # openjd_env from a task is ignored and only reported at DEBUG: a probe for the level.
    set_debug = one_task_job(print_hidden("openjd_session_runtime_loglevel: DEBUG"))
    probe = one_task_job(print_hidden("openjd_env: PROBE=1"))
    level_before = LOG.level
    session_a = make_session(session_id="A")
    session_b = make_session(session_id="B")

    assert run(session_a, set_debug).state == ActionState.SUCCESS
    assert run(session_b, probe).state == ActionState.SUCCESS
    assert run(session_a, probe).state == ActionState.SUCCESS

    def debug_records(session_id: str) -> list[logging.LogRecord]:
        return [
            r
            for r in records
            if r.levelno == logging.DEBUG and getattr(r, "session_id", None) == session_id
        ]

    assert debug_records("A"), "session A's own level did not change"
    assert not debug_records("B")
    assert LOG.level == level_before


# ---- TASK_CHUNKING -----------------------------------------------------------------------


def chunked_job(task_range: Any, count: int, constraint: str) -> Job:
    frame = {
        "name": "Frame",
        "type": "CHUNK[INT]",
        "range": task_range,
        "chunks": {"defaultTaskCount": count, "rangeConstraint": constraint},
    }
    code = "import sys; open('chunks.txt', 'a').write(sys.argv[1] + '\\n')"
    step = {
        "name": "Render",
        "parameterSpace": {"taskParameterDefinitions": [frame]},
        "script": {"actions": {"onRun": args_action(code, "{{Task.Param.Frame}}")}},
    }
    job, _ = make_job({"steps": [step]}, extensions=["TASK_CHUNKING"])
    return job


def run_every_chunk(session: Session, job: Job) -> list[str]:
    """Run each chunk the model's iterator yields; returns the chunks as iterated."""
    chunks = []
    for params in StepParameterSpaceIterator(space=job.steps[0].parameterSpace):
        chunks.append(params["Frame"].value)
        assert run(session, job, params).state == ActionState.SUCCESS
    return chunks


def expand(chunk: str) -> list[int]:
    frames: list[int] = []
    for part in chunk.split(","):
        first, _, last = part.partition("-")
        frames.extend(range(int(first), int(last or first) + 1))
    return frames


def test_chunked_task_sees_its_contiguous_chunk_as_a_range_string(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    job = chunked_job("1-10", 3, "CONTIGUOUS")
    session = make_session()

    chunks = run_every_chunk(session, job)

    seen = read(session, "chunks.txt").splitlines()
    assert seen == chunks
    assert seen[0] == "1-3"
    assert all(len(chunk.split("-")) == 2 for chunk in seen)
    assert [frame for chunk in seen for frame in expand(chunk)] == list(range(1, 11))
    assert "Frame(CHUNK[INT]) = 1-3" in messages(records)


def test_chunked_task_sees_a_noncontiguous_chunk_as_a_list(make_session: MakeSession) -> None:
    job = chunked_job([1, 3, 5, 7, 9], 2, "NONCONTIGUOUS")
    session = make_session()

    run_every_chunk(session, job)

    assert read(session, "chunks.txt").splitlines() == ["1,3", "5,7", "9"]


# ---- FEATURE_BUNDLE_1 --------------------------------------------------------------------


def bundle_job(on_run: dict[str, Any], parameters: dict[str, Any]) -> tuple[Job, Any]:
    definitions = [
        {"name": name, "type": "INT" if isinstance(value, int) else "STRING", "default": value}
        for name, value in parameters.items()
    ]
    step = {"name": "Step", "script": {"actions": {"onRun": on_run}}}
    return make_job(
        {"parameterDefinitions": definitions, "steps": [step]}, extensions=["FEATURE_BUNDLE_1"]
    )


# Reports readiness, then waits; SIGTERM only leaves term.txt behind (and, with
# EXIT_ON_TERM set, ends the process with exit code 0).
PATIENT_WORKLOAD = """
import os, signal, sys, time
def on_term(*_):
    open('term.txt', 'w').write('SIGTERM')
    if os.environ.get('EXIT_ON_TERM'):
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print('openjd_status: ready', flush=True)
for _ in range(300):
    time.sleep(0.1)
"""


def test_timeout_from_a_job_parameter_times_the_action_out(make_session: MakeSession) -> None:
    job, values = bundle_job(
        python_action("import time; time.sleep(30)", timeout="{{Param.T}}"), {"T": 1}
    )
    session = make_session(job_parameter_values=values)
    started = time.monotonic()

    status = run(session, job)

    assert status.state == ActionState.TIMEOUT
    assert 0.9 <= time.monotonic() - started < 4
    assert session.state == SessionState.READY_ENDING


def test_notify_period_from_a_job_parameter_bounds_the_grace_period(
    make_session: MakeSession,
) -> None:
    cancelation = {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": "{{Param.N}}"}
    job, values = bundle_job(python_action(PATIENT_WORKLOAD, cancelation=cancelation), {"N": 1})
    watcher = StatusMessages()
    session = make_session(job_parameter_values=values, callback=watcher)

    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    watcher.wait_for("ready")
    started = time.monotonic()
    session.cancel_action()
    status = session.wait(timeout=WAIT_S)  # far below the 120 s default period

    assert status.state == ActionState.CANCELED
    assert status.exit_code == -9
    assert 0.9 <= time.monotonic() - started < 4
    assert read(session, "term.txt") == "SIGTERM"


@pytest.mark.parametrize(
    ("mode", "expected_exit_code", "notified"),
    [("NOTIFY_THEN_TERMINATE", 0, True), ("TERMINATE", -9, False)],
)
def test_cancelation_mode_from_a_job_parameter_is_applied(
    make_session: MakeSession, mode: str, expected_exit_code: int, notified: bool
) -> None:
    job, values = bundle_job(
        python_action(PATIENT_WORKLOAD, cancelation={"mode": "{{Param.M}}"}), {"M": mode}
    )
    watcher = StatusMessages()
    session = make_session(
        job_parameter_values=values, callback=watcher, os_env_vars={"EXIT_ON_TERM": "1"}
    )

    session.run_task(step_script=job.steps[0].script, task_parameter_values={})
    watcher.wait_for("ready")
    session.cancel_action()
    status = session.wait(timeout=WAIT_S)

    assert status.state == ActionState.CANCELED
    assert status.exit_code == expected_exit_code
    assert (session.working_directory / "term.txt").exists() == notified


def test_timeout_resolving_below_one_fails_before_start(make_session: MakeSession) -> None:
    job, values = bundle_job(python_action("open('ran.txt', 'w')", timeout="{{Param.T}}"), {"T": 0})
    session = make_session(job_parameter_values=values)

    status = run(session, job)

    assert status.state == ActionState.FAILED
    assert status.exit_code is None
    assert status.fail_message is not None and "timeout" in status.fail_message
    assert not (session.working_directory / "ran.txt").exists()


def test_bash_interpreter_sugar_runs_its_script_with_args(
    make_session: MakeSession, records: list[logging.LogRecord]
) -> None:
    job, values = make_job(
        {"steps": [{"name": "Sugar", "bash": {"script": 'echo "sugar:$1"', "args": ["extra"]}}]},
        extensions=["FEATURE_BUNDLE_1"],
    )
    session = make_session(job_parameter_values=values)

    assert run(session, job).state == ActionState.SUCCESS
    assert output(records) == ["sugar:extra"]


@pytest.mark.parametrize(("end_of_line", "crlf_count"), [("CRLF", 2), ("LF", 0)])
def test_embedded_file_end_of_line_is_applied(
    make_session: MakeSession, end_of_line: str, crlf_count: int
) -> None:
    code = "import sys; open('eol.txt', 'w').write(str(open(sys.argv[1], 'rb').read().count(b'\\r\\n')))"
    script = {
        "embeddedFiles": [
            {"name": "F", "type": "TEXT", "data": "a\r\nb\nc", "endOfLine": end_of_line}
        ],
        "actions": {"onRun": args_action(code, "{{Task.File.F}}")},
    }
    job, values = make_job(
        {"steps": [{"name": "Step", "script": script}]}, extensions=["FEATURE_BUNDLE_1"]
    )
    session = make_session(job_parameter_values=values)

    assert run(session, job).state == ActionState.SUCCESS
    assert read(session, "eol.txt") == str(crlf_count)


# ---- EXPR ----------------------------------------------------------------------------------


def expr_job(script: dict[str, Any], **template: Any) -> tuple[Job, Any]:
    return make_job(
        {"steps": [{"name": "Render", "script": script}], **template}, extensions=["EXPR"]
    )


def test_let_bindings_resolve_into_arguments(make_session: MakeSession) -> None:
    job, values = expr_job(
        {
            "let": ["half = Param.N // 2", "label = 'f' + string(half)"],
            "actions": {"onRun": args_action(RECORD_ARGV, "{{half}}", "{{label}}")},
        },
        parameterDefinitions=[{"name": "N", "type": "INT", "default": 20}],
    )
    session = make_session(job_parameter_values=values)

    assert run(session, job).state == ActionState.SUCCESS
    assert json.loads(read(session, "argv.json")) == ["10", "f10"]


def test_list_let_binding_flattens_into_separate_arguments(make_session: MakeSession) -> None:
    job, values = expr_job(
        {
            "let": ["frames = [1, 2, 3]"],
            "actions": {"onRun": args_action(RECORD_ARGV, "{{frames}}")},
        }
    )
    session = make_session(job_parameter_values=values)

    assert run(session, job).state == ActionState.SUCCESS
    assert json.loads(read(session, "argv.json")) == ["1", "2", "3"]


def test_job_name_and_step_name_come_from_the_session_and_run_task(
    make_session: MakeSession,
) -> None:
    job, values = expr_job(
        {"actions": {"onRun": args_action(RECORD_ARGV, "{{Job.Name}}", "{{Step.Name}}")}}
    )
    session = make_session(job_parameter_values=values, job_name="Nightly")

    assert run(session, job, step_name="Render").state == ActionState.SUCCESS
    assert json.loads(read(session, "argv.json")) == ["Nightly", "Render"]


def test_step_name_reaches_a_step_environment(make_session: MakeSession) -> None:
    on_enter = args_action(RECORD_ARGV, "{{Step.Name}}")
    step = {
        "name": "Render",
        "stepEnvironments": [{"name": "StepEnv", "script": {"actions": {"onEnter": on_enter}}}],
        "script": {"actions": {"onRun": python_action("pass")}},
    }
    job, values = make_job({"steps": [step]}, extensions=["EXPR"])
    session = make_session(job_parameter_values=values)
    environments = job.steps[0].stepEnvironments
    assert environments is not None

    session.enter_environment(environment=environments[0], step_name="Render")

    assert session.wait(timeout=WAIT_S).state == ActionState.SUCCESS
    assert json.loads(read(session, "argv.json")) == ["Render"]


def test_step_level_let_reaches_the_task_through_resolved_symtab(
    make_session: MakeSession,
) -> None:
    template = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "NightlyJob",
        "extensions": ["EXPR"],
        "parameterDefinitions": [{"name": "N", "type": "INT", "default": 6}],
        "steps": [
            {
                "name": "Render",
                "let": ["double = Param.N * 2"],
                "script": {
                    "actions": {"onRun": args_action(RECORD_ARGV, "{{double}}", "{{Job.Name}}")}
                },
            }
        ],
    }
    job_template = decode_job_template(template=template, supported_extensions=["EXPR"])
    values = preprocess_job_parameters(
        job_template=job_template,
        job_parameter_values={},
        job_template_dir=Path.cwd(),
        current_working_dir=Path.cwd(),
    )
    created = create_job_with_symbol_tables(job_template=job_template, job_parameter_values=values)
    session = make_session(job_parameter_values=values)

    status = run(
        session,
        created.job,
        step_name="Render",
        resolved_symtab=created.step_symbol_tables["Render"],
    )

    assert status.state == ActionState.SUCCESS
    assert json.loads(read(session, "argv.json")) == ["12", "NightlyJob"]


def test_let_binding_over_4096_characters_fails_before_start(make_session: MakeSession) -> None:
    binding = "big = '" + "a" * 4100 + "'"
    job, values = expr_job(
        {"let": [binding], "actions": {"onRun": python_action("open('ran.txt', 'w')")}}
    )
    session = make_session(job_parameter_values=values)

    status = run(session, job)

    assert status.state == ActionState.FAILED
    assert status.exit_code is None
    assert status.fail_message is not None
    assert "let binding" in status.fail_message and "4096" in status.fail_message
    assert str(len(binding)) in status.fail_message
    assert session.state == SessionState.READY_ENDING
    assert not (session.working_directory / "ran.txt").exists()


def test_let_binding_of_exactly_4096_characters_runs(make_session: MakeSession) -> None:
    binding = "big = '" + "a" * (4096 - len("big = ''")) + "'"
    assert len(binding) == 4096
    job, values = expr_job(
        {"let": [binding], "actions": {"onRun": args_action(RECORD_ARGV, "{{len(big)}}")}}
    )
    session = make_session(job_parameter_values=values)

    assert run(session, job).state == ActionState.SUCCESS
    assert json.loads(read(session, "argv.json")) == ["4088"]


def test_let_binding_failing_at_run_time_fails_before_start_naming_the_binding(
    make_session: MakeSession,
) -> None:
    job, values = expr_job(
        {
            "let": ["bad = 10 // Param.Z"],
            "actions": {"onRun": python_action("open('ran.txt', 'w')")},
        },
        parameterDefinitions=[{"name": "Z", "type": "INT", "default": 0}],
    )
    session = make_session(job_parameter_values=values)

    status = run(session, job)

    assert status.state == ActionState.FAILED
    assert status.exit_code is None
    assert not (session.working_directory / "ran.txt").exists()
    assert status.fail_message is not None
    assert "bad" in status.fail_message and "Division by zero" in status.fail_message
