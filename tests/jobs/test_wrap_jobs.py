"""Whole jobs under a wrapping environment (RFC 0008), with real processes.

The hook scripts here stand in for a container runtime: they print what they were given
and run the wrapped command, the way `docker run ... {{WrappedAction.Command}}` would.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import PYTHON
from openjd_notebook import Template, TemplateError, run_job, start_job
from openjd_notebook.jobs import Event, LogLines

RUN_WRAPPED = (
    "import subprocess, sys\n"
    "print(sys.argv[1], flush=True)\n"
    "sys.exit(subprocess.run(sys.argv[2:]).returncode)"
)


def hook(label: str, **fields: Any) -> dict[str, Any]:
    args = ["-c", RUN_WRAPPED, label, "{{ WrappedAction.Command }}", "{{ WrappedAction.Args }}"]
    return {"command": PYTHON, "args": args, **fields}


def py(code: str, **fields: Any) -> dict[str, Any]:
    return {"command": PYTHON, "args": ["-c", code], **fields}


def wrap_env_template(name: str = "Container", **hooks: dict[str, Any]) -> Template:
    actions = {
        "onWrapEnvEnter": hook("wrap-enter:{{ WrappedEnv.Name }}"),
        "onWrapTaskRun": hook("wrap-task:{{ WrappedStep.Name }}"),
        "onWrapEnvExit": hook("wrap-exit:{{ WrappedEnv.Name }}"),
        **hooks,
    }
    document = {
        "specificationVersion": "environment-2023-09",
        "extensions": ["EXPR", "WRAP_ACTIONS"],
        "environment": {"name": name, "script": {"actions": actions}},
    }
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


def job_template(
    frames: str = "1-3", code: str = "print('frame {{Task.Param.Frame}}')"
) -> Template:
    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Wrapped",
        "jobEnvironments": [
            {
                "name": "Tools",
                "script": {
                    "actions": {
                        "onEnter": py("print('tools on')"),
                        "onExit": py("print('tools off')"),
                    }
                },
            }
        ],
        "steps": [
            {
                "name": "Render",
                "parameterSpace": {
                    "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": frames}]
                },
                "script": {"actions": {"onRun": py(code)}},
            }
        ],
    }
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "sessions").mkdir()
    return {"runs_root": tmp_path / "runs", "session_root": tmp_path / "sessions"}


def test_an_environment_template_wraps_every_action_of_the_job(roots: dict[str, Path]) -> None:
    result = run_job(job_template(), environments=[wrap_env_template()], **roots)
    assert result.ok, result.error
    assert list(result.tasks["state"]) == ["success"] * 3
    for index in range(3):
        log = result.log("Render", index)
        assert "wrap-task:Render" in log
        assert f"frame {index + 1}" in log
    names = [(e.name, e.state) for e in result.environments.itertuples()]
    assert names == [("Container", "success"), ("Tools", "success")]  # in entry order
    run_log = "\n".join(path.read_text() for path in sorted(result.run_dir.rglob("*.log")))
    assert "wrap-enter:Tools" in run_log and "tools on" in run_log
    assert "wrap-exit:Tools" in run_log and "tools off" in run_log


def test_two_wrapping_environments_are_refused_before_anything_runs(
    roots: dict[str, Path],
) -> None:
    environments = [wrap_env_template("A"), wrap_env_template("B")]
    with pytest.raises(TemplateError, match=r"Step 'Render' would run inside 2 environments"):
        job_template().instantiate(environments=environments)
    with pytest.raises(TemplateError, match="one wrap layer per session"):
        run_job(job_template(), environments=environments, **roots)
    assert not roots["runs_root"].exists()  # refused before anything ran or was recorded


def test_a_failing_wrapped_task_fails_with_its_exit_code(roots: dict[str, Path]) -> None:
    code = "import sys; sys.exit(4 if {{Task.Param.Frame}} == 2 else 0)"
    result = run_job(job_template(code=code), environments=[wrap_env_template()], **roots)
    assert result.state == "failed"
    rows = result.tasks.set_index("task")
    assert rows.loc[1, "state"] == "failed" and rows.loc[1, "exit_code"] == 4
    # The environments are still exited, through the wrap hook.
    assert [e.state for e in result.environments.itertuples()] == ["success", "success"]


def test_each_worker_wraps_its_own_tasks(roots: dict[str, Path]) -> None:
    result = run_job(job_template("1-4"), environments=[wrap_env_template()], workers=2, **roots)
    assert result.ok, result.error
    workers = set(result.tasks["worker"])
    assert len(workers) == 2
    entered = [(e.name, e.worker) for e in result.environments.itertuples()]
    assert sorted(entered) == sorted((name, w) for w in workers for name in ("Tools", "Container"))


STUBBORN_HOOK = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (print('hook got SIGTERM', flush=True), sys.exit(3)))\n"
    "print('hook ready', flush=True)\n"
    "time.sleep(60)"
)


def test_a_graceful_cancel_reaches_the_hook(roots: dict[str, Path]) -> None:
    hook_action = py(
        STUBBORN_HOOK, cancelation={"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 30}
    )
    ready = threading.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, LogLines) and event.task == 0 and "hook ready" in event.lines:
            ready.set()

    run = start_job(
        job_template("1"),
        environments=[wrap_env_template(onWrapTaskRun=hook_action)],
        on_event=on_event,
        cancel_grace=10,
        **roots,
    )
    assert ready.wait(30), "the hook did not start"
    run.cancel()
    result = run.wait(30)
    assert result.state == "canceled"
    assert "hook got SIGTERM" in result.log("Render", 0)
    assert result.tasks.loc[0, "exit_code"] == 3
