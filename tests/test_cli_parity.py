"""A script written for ``openjd run`` (openjd-cli 0.8) works with the command name changed.

Each invocation runs through both command lines, as real processes, in the same directory:
the exit codes agree and every task's output line appears in both outputs. Where the two
deliberately differ (a bad value on the command line exits 2 here, 1 there), a second test
pins the difference, so the README's list of differences stays true.

openjd-cli is installed once into ``.bench-venvs/openjd-cli`` (shared with the benchmark);
the tests are skipped, saying why, when that cannot be done (no network, no pip).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.timeout(600)  # the first test may install openjd-cli

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_VENV = REPO_ROOT / ".bench-venvs" / "openjd-cli"
REFERENCE_REQUIREMENT = "openjd-cli==0.8.*"
OURS = Path(sys.executable).with_name("openjd-notebook")
PY = sys.executable


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # The benchmark and a test session may install at the same time.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _install_reference() -> Path:
    executable = REFERENCE_VENV / "bin" / "openjd"
    with _locked(REFERENCE_VENV.with_name(".openjd-cli.lock")):
        if not executable.exists():
            shutil.rmtree(REFERENCE_VENV, ignore_errors=True)
            venv.create(REFERENCE_VENV, with_pip=True)
            pip = [str(REFERENCE_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
            subprocess.run([*pip, REFERENCE_REQUIREMENT], check=True, timeout=500)
    return executable


@pytest.fixture(scope="session")
def openjd() -> Path:
    try:
        return _install_reference()
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"openjd-cli 0.8 could not be installed into {REFERENCE_VENV}: {error}")


# ---- templates -------------------------------------------------------------------------------


def _echo(text: str) -> dict[str, Any]:
    return {"command": PY, "args": ["-c", f"print({text!r})"]}


def _frames(name: str, frames: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "parameterSpace": {
            "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": frames}]
        },
        "script": {"actions": {"onRun": _echo(f"{name} frame {{{{Task.Param.Frame}}}}")}},
        **extra,
    }


def _job(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Parity",
        **extra,
        "steps": [*steps],
    }


MESSAGE = [{"name": "Msg", "type": "STRING", "default": "hi"}]
TEMPLATES: dict[str, Any] = {
    "frames.yaml": _job(
        {
            **_frames("Render", "1-3"),
            "script": {
                "actions": {"onRun": _echo("Render frame {{Task.Param.Frame}} {{Param.Msg}}")}
            },
        },
        parameterDefinitions=MESSAGE,
    ),
    "two.yaml": _job(_frames("A", "1-2"), _frames("B", "1-2", dependencies=[{"dependsOn": "A"}])),
    "fails.yaml": _job(
        {
            **_frames("F", "1-3"),
            "script": {
                "actions": {
                    "onRun": {
                        "command": PY,
                        "args": [
                            "-c",
                            "import sys; print('F frame {{Task.Param.Frame}}'); "
                            "sys.exit({{Task.Param.Frame}} == 2)",
                        ],
                    }
                }
            },
        }
    ),
    "chunks.yaml": _job(
        {
            "name": "C",
            "parameterSpace": {
                "taskParameterDefinitions": [
                    {
                        "name": "Frame",
                        "type": "CHUNK[INT]",
                        "range": "1-4",
                        "chunks": {"defaultTaskCount": 2, "rangeConstraint": "CONTIGUOUS"},
                    }
                ]
            },
            "script": {"actions": {"onRun": _echo("C frames {{Task.Param.Frame}}")}},
        },
        extensions=["TASK_CHUNKING"],
    ),
    "scene.yaml": _job(
        {"name": "S", "script": {"actions": {"onRun": _echo("scene={{Param.Scene}}")}}},
        parameterDefinitions=[{"name": "Scene", "type": "PATH"}],
    ),
    "env.yaml": {
        "specificationVersion": "environment-2023-09",
        "environment": {
            "name": "Outer",
            "script": {"actions": {"onEnter": _echo("ENTER"), "onExit": _echo("EXIT")}},
        },
    },
    "bad.yaml": {"specificationVersion": "jobtemplate-2023-09", "name": "Bad", "steps": 3},
}
RULES = json.dumps(
    {
        "version": "pathmapping-1.0",
        "path_mapping_rules": [
            {"source_path_format": "POSIX", "source_path": "/mnt/farm", "destination_path": "/l"}
        ],
    }
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("parity")
    for name, document in TEMPLATES.items():
        (directory / name).write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return directory


def _run(command: list[str], workdir: Path) -> tuple[int, list[str]]:
    done = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TERM": "dumb"},
    )
    # openjd prints "<timestamp>\t<message>"; ours prints the message (with --timestamp-format,
    # after a timestamp and a tab too).
    return done.returncode, [line.rpartition("\t")[2] for line in done.stdout.splitlines()]


# (arguments after the command name, the output lines each task prints, the exit code)
SAME: list[tuple[list[str], list[str], int]] = [
    (["run", "frames.yaml"], ["Render frame 1 hi", "Render frame 2 hi", "Render frame 3 hi"], 0),
    (["run", "frames.yaml", "-p", "Msg=there"], ["Render frame 1 there"], 0),
    (["run", "frames.yaml", "--job-param", '{"Msg": "json"}'], ["Render frame 3 json"], 0),
    (["run", "frames.yaml", "-tp", "Frame=2"], ["Render frame 2 hi"], 0),
    (
        ["run", "frames.yaml", "--task-param", "Frame=3", "--step", "Render"],
        ["Render frame 3 hi"],
        0,
    ),
    (["run", "frames.yaml", "--tasks", '[{"Frame": 3}, {"Frame": 1}]'], ["Render frame 3 hi"], 0),
    (["run", "frames.yaml", "--maximum-tasks", "2"], ["Render frame 1 hi", "Render frame 2 hi"], 0),
    (["run", "frames.yaml", "--timestamp-format", "utc"], ["Render frame 1 hi"], 0),
    (["run", "frames.yaml", "--timestamp-format", "local", "--verbose"], ["Render frame 2 hi"], 0),
    (
        ["run", "frames.yaml", "--environment", "env.yaml"],
        ["ENTER", "Render frame 1 hi", "EXIT"],
        0,
    ),
    (["run", "frames.yaml", "--env", "env.yaml", "--output", "json"], [], 0),
    (["run", "frames.yaml", "--output", "yaml"], [], 0),
    (["run", "two.yaml"], ["A frame 1", "A frame 2", "B frame 1", "B frame 2"], 0),
    (["run", "two.yaml", "--step", "B", "--run-dependencies"], ["A frame 2", "B frame 1"], 0),
    (["run", "two.yaml", "--step", "B", "--no-run-dependencies"], ["B frame 1", "B frame 2"], 0),
    (["run", "chunks.yaml"], ["C frames 1-2", "C frames 3-4"], 0),
    (["run", "chunks.yaml", "--extensions", "TASK_CHUNKING,EXPR"], ["C frames 1-2"], 0),
    (["run", "chunks.yaml", "--extensions", "EXPR"], [], 1),
    (
        ["run", "scene.yaml", "-p", "Scene=/mnt/farm/a.ma", "--path-mapping-rules", RULES],
        ["scene=/l/a.ma"],
        0,
    ),
    (["run", "fails.yaml"], ["F frame 1", "F frame 2"], 1),
    (["run", "bad.yaml"], [], 1),
    (["run", "frames.yaml", "-tp", "Frame=1", "--maximum-tasks", "1"], [], 2),
    (["run", "frames.yaml", "--tasks", "[]", "-tp", "Frame=1"], [], 2),
    (["run", "frames.yaml", "--bogus"], [], 2),
    (["run", "frames.yaml", "--output", "xml"], [], 2),
    (["check", "frames.yaml"], [], 0),
    (["check", "env.yaml", "--output", "json"], [], 0),
    (["check", "chunks.yaml", "--extensions", "TASK_CHUNKING"], [], 0),
    (["check", "chunks.yaml", "--extensions", "EXPR", "--output", "yaml"], [], 1),
    (["check", "bad.yaml"], [], 1),
    (["summary", "frames.yaml"], [], 0),
    (["summary", "two.yaml", "--step", "B", "--output", "json"], [], 0),
    (["summary", "frames.yaml", "-p", "Msg=x", "--output", "yaml"], [], 0),
]


@pytest.mark.parametrize(
    ("argv", "lines", "code"), SAME, ids=[" ".join(case[0])[:60] for case in SAME]
)
def test_same_invocation_same_exit_code_and_task_output(
    openjd: Path, workdir: Path, argv: list[str], lines: list[str], code: int
) -> None:
    reference_code, reference = _run([str(openjd), *argv], workdir)
    our_code, ours = _run([str(OURS), *argv], workdir)
    assert (reference_code, our_code) == (code, code), (reference, ours)
    for line in lines:
        assert line in reference, f"openjd: {line!r} missing"
        assert line in ours, f"openjd-notebook: {line!r} missing"


def test_preserve_keeps_the_working_directory_in_both(openjd: Path, workdir: Path) -> None:
    prefix = "Working directory preserved at: "
    for command in (str(openjd), str(OURS)):
        code, lines = _run([command, "run", "frames.yaml", "--preserve"], workdir)
        kept = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
        assert code == 0 and len(kept) == 1, (command, lines)
        assert Path(kept[0]).is_dir()
        shutil.rmtree(kept[0])


def test_template_help_lists_the_parameters_in_both(openjd: Path, workdir: Path) -> None:
    for command in (str(openjd), str(OURS)):
        code, lines = _run([command, "run", "scene.yaml", "--help"], workdir)
        assert code == 0
        assert any(line.strip().startswith("Scene (PATH) [required]") for line in lines), lines


# (arguments, openjd's exit code, ours): bad values on the command line are usage errors here.
DIFFERENT: list[tuple[list[str], int, int]] = [
    (["run", "scene.yaml"], 1, 2),  # a required job parameter has no value
    (["run", "frames.yaml", "-p", "Nope=1"], 1, 2),  # an unknown job parameter
    (["run", "frames.yaml", "--step", "Nope"], 1, 2),  # an unknown step
    (["run", "frames.yaml", "-tp", "Frame=9"], 1, 2),  # a task outside the parameter space
    (["run", "frames.yaml", "--extensions", "TELEPORT"], 1, 2),  # an unknown extension
    (["summary", "frames.yaml", "--step", "Nope"], 1, 2),
]


@pytest.mark.parametrize(
    ("argv", "reference_code", "our_code"),
    DIFFERENT,
    ids=[" ".join(case[0]) for case in DIFFERENT],
)
def test_bad_values_are_usage_errors_here(
    openjd: Path, workdir: Path, argv: list[str], reference_code: int, our_code: int
) -> None:
    assert _run([str(openjd), *argv], workdir)[0] == reference_code
    assert _run([str(OURS), *argv], workdir)[0] == our_code
