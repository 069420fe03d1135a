"""`openjd-notebook check` agrees with what runs: a job checked together with its environment
templates is refused exactly when running it would be refused before anything starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from openjd_notebook.cli import main

SUITE = Path(
    os.environ.get("OPENJD_CONFORMANCE_DIR")
    or Path(__file__).resolve().parents[1].parent / "shared" / "openjd-conformance"
)
WRAP_CASES = sorted((SUITE / "2023-09" / "WRAP_ACTIONS" / "jobs").glob("*.test.yaml"))


def _write(document: Any, path: Path) -> str:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.mark.skipif(not WRAP_CASES, reason=f"no conformance suite at {SUITE}")
@pytest.mark.parametrize(
    "case", WRAP_CASES, ids=[p.name.removesuffix(".test.yaml") for p in WRAP_CASES]
)
def test_check_refuses_exactly_the_wrap_jobs_that_cannot_start(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = yaml.safe_load(case.read_text(encoding="utf-8"))
    arguments = ["check", _write(test["template"], tmp_path / "template.yaml")]
    for index, environment in enumerate(test.get("environments", [])):
        arguments += ["--environment", _write(environment, tmp_path / f"env{index}.yaml")]
    code = main(arguments)
    output = capsys.readouterr().out
    # Every invalid wrap case of the suite is refused before the run starts (the runtime
    # cancelation checks that RFC 0008 leaves to the run are in the valid cases' templates).
    expected = 1 if ".invalid." in case.name else 0
    assert code == expected, output
    if expected:
        assert "passes validation" not in output


def test_check_names_both_wrap_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hooks = {
        name: {"command": "echo"} for name in ("onWrapEnvEnter", "onWrapTaskRun", "onWrapEnvExit")
    }

    def environment(name: str) -> str:
        document = {
            "specificationVersion": "environment-2023-09",
            "extensions": ["EXPR", "WRAP_ACTIONS"],
            "environment": {"name": name, "script": {"actions": hooks}},
        }
        return _write(document, tmp_path / f"{name}.yaml")

    job = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "J",
        "steps": [{"name": "Render", "script": {"actions": {"onRun": {"command": "echo"}}}}],
    }
    job_file = _write(job, tmp_path / "job.yaml")
    assert main(["check", job_file, "--environment", environment("Docker")]) == 0
    assert "with 1 environment template(s)" in capsys.readouterr().out
    code = main(["check", job_file, "--env", environment("Docker"), "--env", environment("Podman")])
    assert code == 1
    assert "('Docker', 'Podman'); RFC 0008 allows one wrap layer" in capsys.readouterr().out


def test_the_cli_shows_the_runners_own_warnings_on_stderr_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The package logs to a NullHandler (no last-resort stderr text in notebooks); the CLI
    shows its runner's warnings itself, one line each, and leaves a session's records to
    the action's log."""
    import logging

    from openjd_notebook.cli import _runner_warnings_on_stderr

    runner_log = logging.getLogger("openjd_notebook.jobs.local")
    with _runner_warnings_on_stderr():
        runner_log.warning("worker-1 could not close its session")
        runner_log.warning("a session record", extra={"session_id": "s"})
        runner_log.info("not shown")
    runner_log.warning("after the command: not shown")
    assert capsys.readouterr().err.splitlines() == [
        "openjd-notebook: warning: worker-1 could not close its session"
    ]


@pytest.mark.parametrize("kind", ["fifo", "device", "alias-bomb"])
def test_the_cli_refuses_parameter_files_that_never_end_or_explode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """-p file://... of a FIFO, /dev/zero or a YAML alias bomb: exit 2 with a short error."""
    import time

    job = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "J",
        "parameterDefinitions": [{"name": "Who", "type": "STRING"}],
        "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "true"}}}}],
    }
    values = tmp_path / "values.yaml"
    if kind == "fifo":
        os.mkfifo(values)
    elif kind == "device":
        values = Path("/dev/zero")
    else:
        levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
        levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
        values.write_text("\n".join([*levels, "Who: *a8"]) + "\n")
    started = time.monotonic()
    code = main(["run", _write(job, tmp_path / "job.yaml"), "-p", f"file://{values}"])
    assert time.monotonic() - started < 5
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("openjd-notebook: error: ") and "Traceback" not in err, err
    assert len(err.splitlines()) <= 3  # the message, and for YAML the line with a caret


def test_a_command_line_run_imports_no_pandas_ipython_or_widgets(tmp_path: Path) -> None:
    """Start-up is most of a short job's time: the record and the summary are written with
    the standard library, and the notebook side is never imported."""
    import subprocess
    import sys

    job = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "J",
        "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "true"}}}}],
    }
    template = _write(job, tmp_path / "job.yaml")
    code = (
        "import sys\n"
        "from openjd_notebook.cli import main\n"
        f"code = main(['run', {template!r}, '--runs-root', {str(tmp_path / 'runs')!r}])\n"
        "heavy = sorted(m for m in ('pandas', 'numpy', 'IPython', 'ipywidgets') if m in sys.modules)\n"
        "print('EXIT', code, 'HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "EXIT 0 HEAVY []" in done.stdout, done.stdout + done.stderr
    assert (next((tmp_path / "runs").iterdir()) / "tasks.csv").read_text().startswith("step,task")
