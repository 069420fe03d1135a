"""The ``openjd-notebook`` command line: in-process through ``main`` and as a real subprocess."""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from openjd_notebook.cli import main, parse_job_params, parse_tasks
from openjd_notebook.cli_output import (
    HumanReporter,
    RunProgress,
    StepProgress,
    action_output,
    format_bar,
    format_progress,
    format_step_line,
    live_output_wanted,
    working_directory,
)
from openjd_notebook.jobs import LogLines, RunStarted, TaskEnded, TaskOutcome, TaskStarted
from openjd_notebook.jobs.path_mapping import PathMappingError, load_path_mapping_rules

PY = sys.executable
ENTER_CODE = "print('ENV-ENTER')"
EXIT_CODE = "print('ENV-EXIT ran')"
EXIT_LINE = "ENV-EXIT ran"


# ---- templates -----------------------------------------------------------------------------


def action(code: str, **extra: Any) -> dict[str, Any]:
    return {"command": PY, "args": ["-c", code], **extra}


def step(name: str, code: str, frames: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "script": {"actions": {"onRun": action(code)}}, **extra}
    if frames is not None:
        body["parameterSpace"] = {
            "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": frames}]
        }
    return body


def job(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "CliJob",
        "steps": list(steps),
        **extra,
    }


def write(path: Path, document: Any) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(document), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


PARAMS = [
    {"name": "Msg", "type": "STRING", "default": "hi"},
    {"name": "Count", "type": "INT", "default": 1},
]


@pytest.fixture
def frames_job(tmp_path: Path) -> Path:
    """One step of three frames, printing its frame and the job parameters."""
    code = "print('frame {{Task.Param.Frame}} msg={{Param.Msg}} count={{Param.Count}}')"
    return write(
        tmp_path / "frames.yaml", job(step("Render", code, "1-3"), parameterDefinitions=PARAMS)
    )


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    return ["--runs-root", str(tmp_path / "runs")]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["run", *argv, "--output", "json"])
    return code, json.loads(capsys.readouterr().out)


def task_values(document: dict[str, Any], name: str = "Frame") -> list[Any]:
    """The values of the tasks that ran, in the order they started."""
    ran = [row for row in document["tasks"] if row["state"] == "success"]
    return [row["parameters"][name] for row in sorted(ran, key=lambda row: row["started"])]


# ---- run: success, failure, output ---------------------------------------------------------


def test_run_success_prints_output_progress_and_summary(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(frames_job), *runs]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "frame 1 msg=hi count=1" in lines
    assert "frame 3 msg=hi count=1" in lines
    assert "Render  [########################] 3/3" in lines  # one plain line per task
    assert "Render  [########................] 1/3" in lines
    assert any(line.startswith("CliJob: success | 3 tasks: 3 success") for line in lines)
    record = next(line for line in lines if line.startswith("Record: "))
    run_dir = Path(record.removeprefix("Record: "))
    assert run_dir.is_dir() and run_dir.parent == Path(runs[1])
    assert "Running Task" not in out  # session banners only with --verbose


def test_verbose_shows_the_session_log(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(frames_job), *runs, "--verbose", "--max-tasks", "1"]) == 0
    out = capsys.readouterr().out
    assert "--------- Running Task" in out and "frame 1 msg=hi count=1" in out


def test_failed_task_exits_1_and_says_why(
    tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = write(tmp_path / "fail.yaml", job(step("Bad", "import sys; sys.exit(3)")))
    assert main(["run", str(template), *runs]) == 1
    out = capsys.readouterr().out
    assert "Bad[0] failed: exit code 3" in out
    assert "CliJob: failed | 1 task: 1 failed" in out


def test_json_output_is_one_object(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = run_json(capsys, str(frames_job), *runs)
    assert code == 0
    assert document["state"] == "success" and document["job_name"] == "CliJob"
    assert document["counts"] == {"success": 3} and document["error"] is None
    assert Path(document["run_dir"]).is_dir() and document["duration_s"] > 0
    first = document["tasks"][0]
    assert first["step"] == "Render" and first["task"] == 0 and first["parameters"] == {"Frame": 1}
    assert first["exit_code"] == 0 and first["worker"] == "worker-1"
    assert datetime.fromisoformat(first["started"]).tzinfo == timezone.utc


def test_json_output_of_a_failed_run(
    tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = write(tmp_path / "fail.json", job(step("Bad", "import sys; sys.exit(2)", "1-3")))
    code, document = run_json(capsys, str(template), *runs)
    assert code == 1
    assert document["state"] == "failed" and document["counts"]["failed"] == 1
    assert document["error"].startswith("Bad[0] failed")
    # The frames that never started are counted, not listed as tasks.
    assert document["counts"] == {"failed": 1, "not_run": 2}
    assert document["not_run"] == {"Bad": 2}
    assert [task["state"] for task in document["tasks"]] == ["failed"]


def test_text_output_counts_what_did_not_run(
    tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = write(tmp_path / "fail.yaml", job(step("Bad", "import sys; sys.exit(2)", "1-3")))
    assert main(["run", str(template), *runs]) == 1
    out = capsys.readouterr().out
    assert "CliJob: failed | 3 tasks: 1 failed, 2 not run" in out
    assert "not run: 2 of Bad (JobResult.not_run_tasks() lists them)" in out
    assert "Bad  [" in out and "1/3  1 failed, 2 not run" in out


# ---- bad usage: exit 2, one error line, no traceback -----------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-p", "Nope=1"], "Unknown job parameter(s): Nope"),
        (["-p", "Msg"], "-p 'Msg': expected NAME=VALUE"),
        (["-p", "{not json"], "-p '{not json' is not valid JSON"),
        (["-p", "file:///no/such/params.yaml"], "cannot read job parameter file"),
        (["-p", "Count=abc"], "Count"),
        (["--tasks", "Nope=1"], "has no task parameter 'Nope'"),
        (["--tasks", '[{"Frame": 99}]'], "is not in step 'Render'"),
        (["--tasks", "[1, 2"], "--tasks '[1, 2' is not valid JSON"),
        (["--tasks", '{"Frame": 1}'], "expected a list of"),
        (["--tasks", "frames-please"], "expected NAME=VALUES"),
        (["--step", "Nope"], "no step named 'Nope'"),
        (["--path-mapping-rules", "/no/such/rules.json"], "Cannot read path mapping rules"),
        (["--path-mapping-rules", "{oops"], "--path-mapping-rules"),
        (["--environment", "/no/such/env.yaml"], "cannot read template '/no/such/env.yaml'"),
    ],
)
def test_bad_values_exit_2_with_one_error_line(
    frames_job: Path,
    runs: list[str],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    assert main(["run", str(frames_job), *runs, *extra]) == 2
    captured = capsys.readouterr()
    first = captured.err.splitlines()[0]
    assert first.startswith("openjd-notebook: error: ") and message in first
    assert "Traceback" not in captured.err and captured.out == ""
    assert not Path(runs[1]).exists()  # nothing ran


def test_missing_template_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("openjd-notebook: error: cannot read template")
    assert "No such file or directory" in err


def test_a_job_template_as_environment_exits_2(
    frames_job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(frames_job), "--env", str(frames_job)]) == 2
    assert "is a job template, not an environment template" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["run", "x.yaml", "--bogus"], ["run", "x.yaml", "--workers", "0"], ["frobnicate"], []],
)
def test_syntax_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("openjd-notebook") and ": error: " in last


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--no-run-dependencies" in out and "--path-mapping-rules" in out


def test_invalid_template_exits_1_with_its_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("specificationVersion: jobtemplate-2023-09\nname: X\nsteps: 3\n")
    assert main(["run", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("openjd-notebook: error: bad.yaml, line 3") and "Traceback" not in err


# ---- -p forms --------------------------------------------------------------------------------


def test_every_job_param_form(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"Msg": "from-yaml", "Count": 2})
    write(tmp_path / "b.json", {"Count": 3})
    write(tmp_path / "bundle.yaml", {"parameterValues": [{"name": "Msg", "value": "bundle"}]})
    assert parse_job_params(["Msg=x=y"]) == {"Msg": "x=y"}
    assert parse_job_params(['{"Msg": "inline", "Count": 4}']) == {"Msg": "inline", "Count": 4}
    assert parse_job_params([f"file://{tmp_path / 'a.yaml'}"]) == {"Msg": "from-yaml", "Count": 2}
    assert parse_job_params([f"file://{tmp_path / 'b.json'}"]) == {"Count": 3}
    assert parse_job_params([str(tmp_path / "a.yaml")]) == {"Msg": "from-yaml", "Count": 2}
    assert parse_job_params([str(tmp_path / "bundle.yaml")]) == {"Msg": "bundle"}
    merged = parse_job_params(
        [str(tmp_path / "a.yaml"), "Count=9", f"file://{tmp_path / 'b.json'}"]
    )
    assert merged == {"Msg": "from-yaml", "Count": 3}  # later overrides earlier


def test_job_params_reach_the_task(
    frames_job: Path, tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    params = write(tmp_path / "p.yaml", {"Msg": "file", "Count": 5})
    argv = ["-p", str(params), "-p", '{"Count": 7}', "-p", "Msg=last", "--max-tasks", "1"]
    assert main(["run", str(frames_job), *runs, *argv]) == 0
    assert "frame 1 msg=last count=7" in capsys.readouterr().out.splitlines()


def test_bundle_directory_and_its_values(
    tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    code = "print('msg={{Param.Msg}}')"
    write(bundle / "template.yaml", job(step("S", code), parameterDefinitions=PARAMS))
    write(bundle / "parameter_values.yaml", {"parameterValues": [{"name": "Msg", "value": "b"}]})
    assert main(["run", str(bundle), *runs]) == 0
    assert "msg=b" in capsys.readouterr().out.splitlines()
    assert main(["run", str(bundle), *runs, "-p", "Msg=cli"]) == 0
    assert "msg=cli" in capsys.readouterr().out.splitlines()


# ---- --tasks, --step, --run-dependencies, --workers ------------------------------------------


def test_tasks_forms(tmp_path: Path) -> None:
    write(tmp_path / "t.yaml", [{"Frame": 2}, {"Frame": 3}])
    write(tmp_path / "t.json", [{"Frame": 1}])
    assert parse_tasks(" Frame=1-5 ") == "Frame=1-5"
    assert parse_tasks('[{"Frame": 2}]') == [{"Frame": 2}]
    assert parse_tasks(f"file://{tmp_path / 't.json'}") == [{"Frame": 1}]
    assert parse_tasks(str(tmp_path / "t.yaml")) == [{"Frame": 2}, {"Frame": 3}]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("Frame=2-3", [2, 3]), ('[{"Frame": 3}, {"Frame": 1}]', [3, 1]), ("FILE", [2, 3])],
)
def test_tasks_select_what_runs(
    frames_job: Path,
    tmp_path: Path,
    runs: list[str],
    capsys: pytest.CaptureFixture[str],
    spec: str,
    expected: list[int],
) -> None:
    if spec == "FILE":
        spec = f"file://{write(tmp_path / 'tasks.yaml', [{'Frame': 2}, {'Frame': 3}])}"
    code, document = run_json(capsys, str(frames_job), *runs, "--tasks", spec)
    assert code == 0 and task_values(document) == expected


@pytest.fixture
def two_step_job(tmp_path: Path) -> Path:
    first = step("First", "print('first ran')")
    second = step("Second", "print('second ran')", dependencies=[{"dependsOn": "First"}])
    return write(tmp_path / "two.yaml", job(first, second))


@pytest.mark.parametrize(
    ("extra", "steps"),
    [
        ([], ["First", "Second"]),
        (["--step", "Second"], ["First", "Second"]),
        (["--step", "Second", "--run-dependencies"], ["First", "Second"]),
        (["--step", "Second", "--no-run-dependencies"], ["Second"]),
    ],
)
def test_step_and_dependencies(
    two_step_job: Path,
    runs: list[str],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    steps: list[str],
) -> None:
    code, document = run_json(capsys, str(two_step_job), *runs, *extra)
    assert code == 0 and [row["step"] for row in document["tasks"]] == steps


def test_two_workers_share_the_tasks(
    tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = "import time; print('frame {{Task.Param.Frame}}'); time.sleep(0.3)"
    template = write(tmp_path / "w.yaml", job(step("W", code, "1-4")))
    assert main(["run", str(template), *runs, "--workers", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    prefixes = {line.split("]")[0] + "]" for line in out if line.startswith("[worker-")}
    assert prefixes == {"[worker-1]", "[worker-2]"}
    assert sum(1 for line in out if line.startswith("[worker-") and "frame" in line) == 4


# ---- environments, path mapping, --preserve ------------------------------------------------


def test_environment_templates_wrap_the_job(
    frames_job: Path, tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    environment = {
        "specificationVersion": "environment-2023-09",
        "environment": {
            "name": "Outer",
            "script": {"actions": {"onEnter": action(ENTER_CODE), "onExit": action(EXIT_CODE)}},
        },
    }
    env_file = write(tmp_path / "env.yaml", environment)
    assert main(["run", str(frames_job), *runs, "--environment", str(env_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    enter, frame, exit_ = (out.index(s) for s in ("ENV-ENTER", "frame 1 msg=hi count=1", EXIT_LINE))
    assert enter < frame < exit_


@pytest.fixture
def scene_job(tmp_path: Path) -> Path:
    definitions = [{"name": "Scene", "type": "PATH"}]
    code = "print('scene=' + r'{{Param.Scene}}')"
    return write(tmp_path / "scene.yaml", job(step("S", code), parameterDefinitions=definitions))


@pytest.mark.parametrize("form", ["inline", "file-json", "plain-yaml"])
def test_path_mapping_rules_map_a_path_parameter(
    scene_job: Path, tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str], form: str
) -> None:
    destination = tmp_path / "local"
    rules = {
        "version": "pathmapping-1.0",
        "path_mapping_rules": [
            {
                "source_path_format": "POSIX",
                "source_path": "/mnt/farm",
                "destination_path": str(destination),
            }
        ],
    }
    value = {
        "inline": json.dumps(rules),
        "file-json": f"file://{write(tmp_path / 'rules.json', rules)}",
        "plain-yaml": str(write(tmp_path / "rules.yaml", rules)),
    }[form]
    argv = ["-p", "Scene=/mnt/farm/shots/a.ma", "--path-mapping-rules", value]
    assert main(["run", str(scene_job), *runs, *argv]) == 0
    assert f"scene={destination}/shots/a.ma" in capsys.readouterr().out.splitlines()


def test_preserve_keeps_the_working_directory(
    tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = "open(r'{{Session.WorkingDirectory}}/marker.txt', 'w').write('kept')"
    template = write(tmp_path / "keep.yaml", job(step("K", code)))
    assert main(["run", str(template), *runs, "--preserve"]) == 0
    out = capsys.readouterr().out.splitlines()
    kept = Path(
        next(x for x in out if x.startswith("Working directory preserved at: ")).split(": ")[1]
    )
    try:
        assert (kept / "marker.txt").read_text() == "kept"
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def test_without_preserve_the_working_directory_goes(
    tmp_path: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    template = write(
        tmp_path / "gone.yaml", job(step("G", "print('cwd=' + __import__('os').getcwd())"))
    )
    assert main(["run", str(template), *runs, "--verbose"]) == 0
    out = capsys.readouterr().out.splitlines()
    workdir = next(p for p in map(working_directory, out) if p is not None)
    assert not Path(workdir).exists()
    assert not any(line.startswith("Working directory preserved") for line in out)


# ---- check and summary -------------------------------------------------------------------------


def test_check_passes_job_environment_and_bundle(
    frames_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = {
        "specificationVersion": "environment-2023-09",
        "environment": {"name": "E", "script": {"actions": {"onEnter": action("pass")}}},
    }
    env_file = write(tmp_path / "env.json", environment)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(frames_job, bundle / "template.yaml")
    for path in (frames_job, env_file, bundle):
        assert main(["check", str(path)]) == 0
        assert capsys.readouterr().out == f"Template at '{path}' passes validation checks.\n"


def test_check_reports_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("specificationVersion: jobtemplate-2023-09\nname: X\nsteps: []\n")
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("bad.yaml, line 3") and "steps" in out
    assert main(["check", str(tmp_path / "none.yaml")]) == 2


def test_summary_prints_the_template_summary(
    frames_job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", str(frames_job), "-p", "Count=4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Job 'CliJob': 1 step, 3 tasks"
    assert "  parameters: Msg=hi, Count=4" in out
    assert main(["summary", str(frames_job), "-p", "Nope=1"]) == 2


# ---- the options of `openjd run` -----------------------------------------------------------


def test_task_param_runs_the_one_task_it_names(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = run_json(capsys, str(frames_job), *runs, "-tp", "Frame=2")
    assert code == 0 and task_values(document) == [2]
    code, document = run_json(capsys, str(frames_job), *runs, "--task-param", "Frame=3")
    assert code == 0 and task_values(document) == [3]


def test_maximum_tasks_is_max_tasks(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = run_json(capsys, str(frames_job), *runs, "--maximum-tasks", "2")
    assert code == 0 and task_values(document) == [1, 2]
    code, document = run_json(capsys, str(frames_job), *runs, "--maximum-tasks", "-1")
    assert code == 0 and task_values(document) == [1, 2, 3]  # as in openjd run: <= 0 is all


@pytest.mark.parametrize(
    "extra",
    [
        ["-tp", "Frame=1", "--maximum-tasks", "1"],
        ["-tp", "Frame=1", "--tasks", "Frame=1"],
        ["--tasks", "Frame=1", "--max-tasks", "1"],
        ["-tp", "Frame=1", "-tp", "Frame=2"],
        ["-tp", "Frame"],
    ],
)
def test_task_choices_exclude_each_other(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    assert main(["run", str(frames_job), *runs, *extra]) == 2
    assert "error: " in capsys.readouterr().err
    assert not Path(runs[1]).exists()


@pytest.fixture
def chunked_job(tmp_path: Path) -> Path:
    frames = {
        "name": "Frame",
        "type": "CHUNK[INT]",
        "range": "1-4",
        "chunks": {"defaultTaskCount": 2, "rangeConstraint": "CONTIGUOUS"},
    }
    body = step("C", "print('frames {{Task.Param.Frame}}')")
    body["parameterSpace"] = {"taskParameterDefinitions": [frames]}
    return write(tmp_path / "chunked.yaml", job(body, extensions=["TASK_CHUNKING"]))


def test_extensions_refuse_a_template_that_uses_another(
    chunked_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["run", *runs], ["check"], ["summary"]):
        assert main([command[0], str(chunked_job), *command[1:], "--extensions", "EXPR"]) == 1
        captured = capsys.readouterr()
        said = captured.out + captured.err
        assert "line 1 (extensions): the template uses TASK_CHUNKING" in said, said
    assert main(["run", str(chunked_job), *runs, "--extensions", "task_chunking,EXPR"]) == 0
    assert "frames 1-2" in capsys.readouterr().out.splitlines()
    assert main(["check", str(chunked_job), "--extensions", "TELEPORT"]) == 2
    assert "unknown extension(s) TELEPORT" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("timestamp_format", "pattern"),
    [
        ("relative", r"^\d+:\d\d:\d\d\.\d+\tframe 1 msg=hi count=1$"),
        ("utc", r"^\d{4}-\d\d-\d\dT[\d:.]+\+00:00\tframe 1 msg=hi count=1$"),
        ("local", r"^\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d\tframe 1 msg=hi count=1$"),
    ],
)
def test_timestamp_format_prefixes_each_output_line(
    frames_job: Path,
    runs: list[str],
    capsys: pytest.CaptureFixture[str],
    timestamp_format: str,
    pattern: str,
) -> None:
    import re

    argv = ["run", str(frames_job), *runs, "--timestamp-format", timestamp_format]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(re.match(pattern, line) for line in lines), lines
    assert any(line.startswith("CliJob: success") for line in lines)  # the summary: no prefix


def test_yaml_output_of_run_check_and_summary(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(frames_job), *runs, "--output", "yaml"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["status"] == "success" and document["counts"] == {"success": 3}
    assert main(["check", str(frames_job), "--output", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {
        "status": "success",
        "message": f"Template at '{frames_job}' passes validation checks.",
    }
    assert main(["summary", str(frames_job), "--output", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["name"], summary["total_tasks"], summary["parameters"]["Msg"]) == (
        "CliJob",
        3,
        "hi",
    )


def test_errors_in_document_output_are_documents_too(
    frames_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("specificationVersion: jobtemplate-2023-09\nname: X\nsteps: []\n")
    assert main(["check", str(bad), "--output", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "error" and document["message"].startswith("bad.yaml, line 3")
    assert main(["run", str(frames_job), "-p", "Nope=1", "--output", "json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "error"
    assert "Unknown job parameter(s): Nope" in captured.err


def test_summary_of_one_step(two_step_job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(two_step_job), "--step", "Second"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Step 'Second' of job 'CliJob': 1 task"
    assert out[-1].split() == ["Second", "First", "1", "-", "-"]
    assert main(["summary", str(two_step_job), "--step", "Second", "--output", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["step_name"], document["dependencies"]) == ("Second", ["First"])
    assert main(["summary", str(two_step_job), "--step", "Nope"]) == 2
    assert "no step named 'Nope'" in capsys.readouterr().err


def test_run_template_help_lists_its_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definitions = [
        {"name": "Msg", "type": "STRING", "default": "hi", "description": "What to print"},
        {"name": "Count", "type": "INT", "minValue": 1, "maxValue": 9, "default": 1},
        {"name": "Scene", "type": "PATH"},
        {"name": "Mode", "type": "STRING", "allowedValues": ["fast", "best"], "default": "fast"},
    ]
    template = write(
        tmp_path / "help.yaml",
        job(step("S", "pass"), parameterDefinitions=definitions, description="Prints things."),
    )
    assert main(["run", str(template), "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("usage: openjd-notebook run")
    start = lines.index("Job: CliJob")
    assert lines[start : start + 10] == [
        "Job: CliJob",
        "Prints things.",
        "",
        "Job parameters (-p/--job-param NAME=VALUE):",
        "  Msg (STRING) [default: 'hi']",
        "      What to print",
        "  Count (INT) [default: 1] (range: 1..9)",
        "  Scene (PATH) [required]",
        "  Mode (STRING) [default: 'fast'] (allowed: 'fast', 'best')",
        "",
    ]
    assert "--maximum-tasks" in out and "--timestamp-format" in out
    assert main(["run", "--help"]) == 0
    assert "Job parameters" not in capsys.readouterr().out
    assert main(["run", str(tmp_path / "none.yaml"), "--help"]) == 2


@pytest.mark.parametrize(
    ("environ", "live"),
    [({"TERM": "xterm"}, True), ({"TERM": "dumb"}, False), ({"NO_COLOR": "1"}, False)],
)
def test_plain_output_when_asked_for(environ: dict[str, str], live: bool) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert live_output_wanted(Terminal(), environ) is live
    assert live_output_wanted(io.StringIO(), {"TERM": "xterm"}) is False
    reporter = HumanReporter(Terminal(), live=None)
    reporter.close()


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        (
            "import openjd_notebook.sessions",
            ["openjd_notebook.jobs", "openjd_notebook.notebook", "pandas"],
        ),
        (
            "from openjd_notebook.cli import main; main(['check', TEMPLATE])",
            [
                "openjd_notebook.jobs.runner",
                "openjd_notebook.jobs.records",
                "openjd_notebook.sessions",
                "pandas",
            ],
        ),
    ],
    ids=["sessions", "check"],
)
def test_only_what_a_command_needs_is_imported(
    frames_job: Path, code: str, absent: list[str]
) -> None:
    """The drop-in engine alone never loads the jobs layer; ``check`` loads neither the runner
    nor the session engine."""
    script = code.replace("TEMPLATE", repr(str(frames_job)))
    script += f"\nimport sys; print(sorted(m for m in {absent!r} if m in sys.modules))"
    done = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr


def test_python_dash_m_and_version() -> None:
    from importlib.metadata import version

    done = subprocess.run(
        [PY, "-m", "openjd_notebook", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout == f"openjd-notebook {version('openjd-notebook')}\n"


# ---- signals ----------------------------------------------------------------------------------


def test_signal_handlers_are_restored_after_a_run(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    def custom(signum: int, frame: Any) -> None:
        pass

    original_int, original_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, custom)
    try:
        assert main(["run", str(frames_job), *runs]) == 0
        assert main(["run", str(frames_job), *runs, "-p", "Bad"]) == 2
        assert signal.getsignal(signal.SIGINT) is original_int
        assert signal.getsignal(signal.SIGTERM) is custom
    finally:
        signal.signal(signal.SIGTERM, original_term)
    capsys.readouterr()


def test_main_works_off_the_main_thread(
    frames_job: Path, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main(["run", str(frames_job), *runs])))
    thread.start()
    thread.join(30)
    assert codes == [0]
    capsys.readouterr()


class Cli:
    """The command as a subprocess, its stdout read line by line on a thread."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen(
            [PY, "-m", "openjd_notebook.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            self.seen.append(self.lines.get(timeout=max(deadline - time.monotonic(), 0.01)))

    def finish(self, timeout: float = 30) -> tuple[int, list[str]]:
        code = self.process.wait(timeout)
        time.sleep(0.05)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, self.seen


@pytest.fixture
def cli_processes() -> Iterator[list[Cli]]:
    started: list[Cli] = []
    yield started
    for cli in started:
        if cli.process.poll() is None:
            cli.process.kill()
            cli.process.wait()


def long_job(tmp_path: Path, run_code: str, cancelation: dict[str, Any] | None = None) -> Path:
    on_run = action(run_code, **({"cancelation": cancelation} if cancelation else {}))
    environment = {
        "name": "JobEnv",
        "script": {"actions": {"onEnter": action(ENTER_CODE), "onExit": action(EXIT_CODE)}},
    }
    sleeper = {"name": "Sleep", "script": {"actions": {"onRun": on_run}}}
    return write(tmp_path / "long.yaml", job(sleeper, jobEnvironments=[environment]))


def test_subprocess_run_success(
    frames_job: Path, runs: list[str], cli_processes: list[Cli]
) -> None:
    cli = Cli("run", str(frames_job), *runs)
    cli_processes.append(cli)
    code, lines = cli.finish()
    assert code == 0
    assert "frame 2 msg=hi count=1" in lines and any(x.startswith("Record: ") for x in lines)


def test_ctrl_c_cancels_and_environments_still_exit(
    tmp_path: Path, runs: list[str], cli_processes: list[Cli]
) -> None:
    template = long_job(tmp_path, "import time; print('started', flush=True); time.sleep(60)")
    cli = Cli("run", str(template), *runs)
    cli_processes.append(cli)
    cli.wait_for("started")
    cli.process.send_signal(signal.SIGINT)
    code, lines = cli.finish()
    assert code == 130  # 128 + SIGINT, the shell's convention for a run an interrupt ended
    assert "Canceling (Ctrl-C again to kill)..." in lines
    assert "Sleep[0] canceled: stopped while running (exit code -9)" in lines
    assert lines.index(EXIT_LINE) > lines.index("started")
    assert any(line.startswith("CliJob: canceled | 1 task: 1 canceled") for line in lines)


def test_second_ctrl_c_kills_an_action_that_ignores_sigterm(
    tmp_path: Path, runs: list[str], cli_processes: list[Cli]
) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('started', flush=True); time.sleep(120)"
    )
    cancelation = {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 30}
    cli = Cli("run", str(long_job(tmp_path, code, cancelation)), *runs)
    cli_processes.append(cli)
    cli.wait_for("started")
    began = time.monotonic()
    cli.process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    cli.process.send_signal(signal.SIGINT)
    exit_code, lines = cli.finish()
    assert time.monotonic() - began < 5
    assert exit_code == 130
    assert "Killing the running actions..." in lines and EXIT_LINE in lines


# ---- pure formatters and the reporter ------------------------------------------------------------


def test_format_bar_and_step_line() -> None:
    assert format_bar(0, 4, 8) == "[........]"
    assert format_bar(2, 4, 8) == "[####....]"
    assert format_bar(9, 4, 8) == "[########]"
    assert format_bar(0, 0, 4) == "[####]"
    assert format_bar(3, None, 4) == "[????]"
    render = StepProgress("Render", 12, {"success": 5, "failed": 2}, running=1)
    line = format_step_line(render, 8, bar_width=12)
    assert line == "Render    [#######.....] 7/12  2 failed, 1 running"
    assert format_step_line(StepProgress("A", None)) == "A  [" + "?" * 24 + "] 0/?"


def outcome(step: str, task: int, state: Any) -> TaskOutcome:
    return TaskOutcome(step=step, task=task, state=state, exit_code=1, worker="worker-1")


def started_event(counts: dict[str, int | None]) -> RunStarted:
    return RunStarted("r1", "J", tuple(counts), counts, datetime.now(timezone.utc), None)


def counted(step: StepProgress | None) -> tuple[Any, ...]:
    """What the CLI's bars show of a step (its times are the live views' business)."""
    assert step is not None
    return step.name, step.total, dict(step.ended), step.running


def test_run_progress_follows_events() -> None:
    progress = RunProgress().with_event(started_event({"A": 2, "Longer": 1}))
    now = datetime.now(timezone.utc)
    progress = progress.with_event(TaskStarted("A", 0, {}, "worker-1", now))
    assert counted(progress.step("A")) == ("A", 2, {}, 1)
    progress = progress.with_event(TaskEnded(outcome("A", 0, "failed")))
    progress = progress.with_event(TaskEnded(outcome("A", 1, "canceled")))  # never started
    assert counted(progress.step("A")) == ("A", 2, {"failed": 1, "canceled": 1}, 0)
    assert format_progress(progress) == [
        "A       [########################] 2/2  1 failed, 1 canceled",
        "Longer  [........................] 0/1",
    ]
    assert format_progress(progress, columns=12) == ["A       [##", "Longer  [.."]


def test_action_output_keeps_only_what_the_process_printed() -> None:
    banner = ["--------- Running Task", "Command started as pid: 7", "Output:", "hello"]
    shown, inside = action_output(banner, False)
    assert (shown, inside) == (["hello"], True)
    shown, inside = action_output(["Output:", "Process pid 7 exited with code: 0 (x)", "z"], True)
    assert (shown, inside) == (["Output:"], False)
    assert working_directory("Session Working Directory: /tmp/OpenJD/ab") == "/tmp/OpenJD/ab"
    assert working_directory("Output:") is None


def test_human_reporter_plain_and_live() -> None:
    def feed(reporter: HumanReporter) -> None:
        reporter(started_event({"A": 2}))
        reporter(
            LogLines(
                "worker-2",
                "A",
                0,
                None,
                ("Output:", "rendering", "Process pid 1 exited with code: 0"),
            )
        )
        reporter(TaskEnded(outcome("A", 0, "success")))
        reporter.close()

    plain = io.StringIO()
    feed(HumanReporter(plain, workers=2, live=False))
    lines = plain.getvalue().splitlines()
    assert lines[1:] == ["[worker-2] rendering", "A  [############............] 1/2"]
    live = io.StringIO()
    feed(HumanReporter(live, live=True))
    text = live.getvalue()
    assert "\x1b[1F\x1b[J" in text and "rendering\n" in text  # the bar block moves below output


# ---- a bug in the jobs layer ---------------------------------------------------------------------


def test_malformed_inline_path_mapping_json_raises_path_mapping_error() -> None:
    with pytest.raises(PathMappingError):
        load_path_mapping_rules('{"version": ')


def test_module_entry_point_reports_usage_errors(tmp_path: Path) -> None:
    result = subprocess.run(
        [PY, "-m", "openjd_notebook.cli", "run", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("openjd-notebook: error: cannot read template")
