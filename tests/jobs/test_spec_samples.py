"""The OpenJD specification's samples that need no external software, run as whole jobs.

The templates under ``templates/`` are our own text exercising the features of the spec
repository's samples: ``job_templates/stdout-messages.yaml``, ``host-requirements.yaml``,
``path-mapping.yaml``, ``task-parameter-definition-showcase.yaml`` and
``environment_templates/environment-variables.yaml``, plus a two-step Render -> Encode job
for dependencies and task selection. Every run goes through ``run_job`` with its record
and session directories under ``tmp_path``; the commands are POSIX tools or this test's
own interpreter, so nothing beyond the package is needed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from openjd.model import (
    ParameterValue,
    ParameterValueType,
    StepParameterSpaceIterator,
    create_job,
    decode_job_template,
    preprocess_job_parameters,
)

from openjd_notebook.jobs import (
    Event,
    JobResult,
    TaskProgress,
    TaskStatus,
    Template,
    TemplateError,
    run_job,
)
from openjd_notebook.jobs.selection import SelectionError

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the templates run /bin/sh and echo")

TEMPLATES = Path(__file__).parent / "templates"
PYTHON_PLACEHOLDER = "__PYTHON__"

SHOWCASE = TEMPLATES / "task-parameter-showcase.yaml"
SHOWCASE_PARAMETERS = {"PathValue": "/mnt/drive/dir/path_file"}
SHOWCASE_COUNTS = {
    "IntRange": 10,
    "IntRangeWithStep": 5,
    "IntRangeCountingDown": 4,
    "CompoundIntRange": 7,
    "IntRangeFromJobParameter": 4,
    "IntList": 4,
    "FloatList": 5,
    "StringList": 3,
    "PathList": 3,
    "Product": 6,
    "Association": 3,
    "ProductOfAssociation": 6,
    "AssociationWithProduct": 4,
    "ProductWithAssociation": 6,
}
SHOWCASE_NAMES = ("Foo", "Bar", "Buz")


# ---- helpers ---------------------------------------------------------------------------


def load(name: str) -> Template:
    return Template.load(TEMPLATES / name)


def load_with_python(name: str) -> Template:
    """A template whose command is this test's interpreter, substituted into the text."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    # A JSON string is a valid double-quoted YAML scalar, whatever the path holds.
    return Template.from_text(
        text.replace(PYTHON_PLACEHOLDER, json.dumps(sys.executable)), directory=TEMPLATES
    )


def run(
    template: Template | Path,
    tmp_path: Path,
    parameters: Mapping[str, Any] | None = None,
    **options: Any,
) -> JobResult:
    """``run_job`` with its session and record directories under ``tmp_path``."""
    session_root = tmp_path / "sessions"
    session_root.mkdir(exist_ok=True)
    return run_job(
        template,
        parameters,
        session_root=session_root,
        runs_root=tmp_path / "runs",
        **options,
    )


def output_lines(log: str) -> list[str]:
    """What the action printed: the log lines between ``Output:`` and the exit line."""
    lines = log.splitlines()
    start = lines.index("Output:") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("Process pid "))
    return lines[start:end]


def printed(result: JobResult, step: str, task: int = 0) -> list[str]:
    return output_lines(result.log(step, task))


def printed_values(result: JobResult, step: str, task: int = 0) -> dict[str, str]:
    """The ``key=value`` lines a task printed."""
    pairs = (line.split("=", 1) for line in printed(result, step, task) if "=" in line)
    return {key: value for key, value in pairs}


def step_frame(result: JobResult, step: str) -> pd.DataFrame:
    frame = result.tasks
    return frame[frame["step"] == step].sort_values("task")


def column(result: JobResult, step: str, name: str) -> list[Any]:
    return list(step_frame(result, step)[name])


def parameter_rows(result: JobResult, step: str, names: Sequence[str]) -> list[tuple[Any, ...]]:
    return list(step_frame(result, step)[list(names)].itertuples(index=False, name=None))


def typed(value: ParameterValue) -> int | float | str:
    """A model value as ``JobResult.tasks`` holds it: INT as int, FLOAT as float."""
    if value.type == ParameterValueType.INT:
        return int(value.value)
    if value.type == ParameterValueType.FLOAT:
        return float(value.value)
    return str(value.value)


def model_task_values(
    path: Path, parameters: Mapping[str, str]
) -> dict[str, list[dict[str, ParameterValue]]]:
    """Each step's tasks as openjd-model's ``StepParameterSpaceIterator`` yields them."""
    job_template = decode_job_template(template=yaml.safe_load(path.read_text(encoding="utf-8")))
    values = preprocess_job_parameters(
        job_template=job_template,
        job_parameter_values=dict(parameters),
        job_template_dir=path.parent,
        current_working_dir=Path.cwd(),
    )
    job = create_job(job_template=job_template, job_parameter_values=values)
    return {
        step.name: [dict(task) for task in StepParameterSpaceIterator(space=step.parameterSpace)]
        for step in job.steps
    }


def model_rows(tasks: Sequence[Mapping[str, ParameterValue]]) -> list[tuple[Any, ...]]:
    names = [name for name in SHOWCASE_NAMES if name in tasks[0]]
    return [tuple(typed(task[name]) for name in names) for task in tasks]


def expected_echo(step: str, task: Mapping[str, ParameterValue]) -> str:
    """The line a showcase task prints, from the model's value strings."""
    if step == "PathList":
        return f"Foo={task['Foo'].value} raw={task['Foo'].value}"
    return " ".join(f"{name}={task[name].value}" for name in SHOWCASE_NAMES if name in task)


def deduplicated(values: Sequence[Any]) -> list[Any]:
    """``values`` without consecutive repeats."""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def rows_as_set(result: JobResult) -> set[tuple[Any, ...]]:
    columns = ["step", "task", *SHOWCASE_NAMES, "state", "exit_code"]
    return set(result.tasks[columns].itertuples(index=False, name=None))


def run_showcase(root: Path, **options: Any) -> JobResult:
    root.mkdir(parents=True, exist_ok=True)
    return run(Template.load(SHOWCASE), root, SHOWCASE_PARAMETERS, **options)


# ---- stdout messages (job_templates/stdout-messages.yaml) -------------------------------


def test_stdout_messages_sample_sets_progress_and_status_in_the_task_table(
    tmp_path: Path,
) -> None:
    result = run(load_with_python("stdout-messages.yaml"), tmp_path)

    assert result.ok, result.error
    task = step_frame(result, "Report").iloc[0]
    assert task["state"] == "success"
    assert task["exit_code"] == 0
    assert task["progress"] == 100.0
    assert task["status_message"] == "Crunching numbers"


def test_unreachable_openjd_fail_branch_leaves_the_task_successful(tmp_path: Path) -> None:
    result = run(load_with_python("stdout-messages.yaml"), tmp_path)

    assert result.ok
    assert result.error is None
    assert pd.isna(step_frame(result, "Report").iloc[0]["fail_message"])
    assert not any("openjd_fail" in line for line in printed(result, "Report"))


def test_stdout_messages_are_kept_in_the_task_log_in_order(tmp_path: Path) -> None:
    result = run(load_with_python("stdout-messages.yaml"), tmp_path)

    assert printed(result, "Report") == [
        "openjd_progress: 0.0",
        "openjd_status: Gathering inputs",
        "openjd_progress: 50.0",
        "openjd_status: Crunching numbers",
        "openjd_progress: 100",
    ]


def test_reachable_openjd_fail_reaches_fail_message_and_the_run_error(tmp_path: Path) -> None:
    result = run(load_with_python("stdout-messages.yaml"), tmp_path, {"OnePlusOne": 3})

    assert result.state == "failed"
    assert not result.ok
    task = step_frame(result, "Report").iloc[0]
    assert task["state"] == "failed"
    assert task["exit_code"] == 3
    assert task["fail_message"] == "Arithmetic is broken: 1 + 1 != 3"
    # What was reported before the failure stays in the table.
    assert task["progress"] == 50.0
    assert task["status_message"] == "Crunching numbers"
    assert result.error is not None
    assert "Arithmetic is broken: 1 + 1 != 3" in result.error
    assert printed(result, "Report")[-1] == "openjd_fail: Arithmetic is broken: 1 + 1 != 3"


def test_openjd_fail_alone_does_not_fail_a_task_that_exits_zero(tmp_path: Path) -> None:
    template = Template.from_text(
        """\
specificationVersion: jobtemplate-2023-09
name: SoftFail
steps:
- name: Warn
  script:
    actions:
      onRun:
        command: echo
        args: ["openjd_fail: only a warning"]
"""
    )
    result = run(template, tmp_path)

    assert result.ok
    task = step_frame(result, "Warn").iloc[0]
    assert task["state"] == "success"
    assert task["fail_message"] == "only a warning"


def test_progress_and_status_messages_are_published_as_events_in_order(
    tmp_path: Path,
) -> None:
    events: list[Event] = []
    result = run(load_with_python("stdout-messages.yaml"), tmp_path, on_event=events.append)

    assert result.ok
    progress = [e.progress for e in events if isinstance(e, TaskProgress)]
    statuses = [e.status_message for e in events if isinstance(e, TaskStatus)]
    assert deduplicated(progress) == [0.0, 50.0, 100.0]
    assert deduplicated(statuses) == ["Gathering inputs", "Crunching numbers"]
    assert {(e.step, e.task) for e in events if isinstance(e, (TaskProgress, TaskStatus))} == {
        ("Report", 0)
    }


# ---- host requirements (job_templates/host-requirements.yaml) ---------------------------


def test_host_requirements_sample_validates_with_amounts_and_attributes() -> None:
    template = load("host-requirements.yaml")

    assert template.steps == ["Light", "Heavy"]
    heavy = template.model.steps[1].hostRequirements
    assert heavy is not None
    assert [a.name for a in heavy.amounts or []] == [
        "amount.worker.vcpu",
        "amount.worker.memory",
        "amount.custom.render_licenses",
    ]
    assert [(a.min, a.max) for a in heavy.amounts or []] == [
        (512, 1024),
        (1048576, None),
        (3, None),
    ]
    assert [(a.name, a.anyOf, a.allOf) for a in heavy.attributes or []] == [
        ("attr.worker.os.family", ["windows"], None),
        ("attr.worker.cpu.arch", ["arm64"], None),
        ("attr.custom.site_profile", None, ["ProfileB"]),
    ]


def test_host_requirements_are_not_enforced_locally_so_both_steps_run(tmp_path: Path) -> None:
    # Heavy asks for 512+ vCPUs, 1 TiB of memory and a Windows arm64 host: no host here.
    result = run(load("host-requirements.yaml"), tmp_path)

    assert result.ok, result.error
    assert list(result.tasks["step"]) == ["Light", "Heavy"]
    assert set(result.tasks["state"]) == {"success"}
    assert printed(result, "Light") == ["Light ran: it asks for little"]
    assert printed(result, "Heavy") == ["Heavy ran: requirements are not enforced locally"]


@pytest.mark.parametrize(
    ("amount", "attribute", "complaint"),
    [
        (
            "{name: amount.worker.vcpu, min: 4, max: 2}",
            "{name: attr.worker.os.family, anyOf: [linux]}",
            "greater or equal to 'min'",
        ),
        (
            "{name: amount.worker.vcpu, min: 1}",
            "{name: attr.worker.os.family, anyOf: [beos]}",
            "Values must be from",
        ),
        (
            "{name: amount.worker.vcpu, min: 1}",
            "{name: worker.os.family, anyOf: [linux]}",
            "worker.os.family",
        ),
    ],
    ids=["min-above-max", "unknown-os-family", "name-without-attr-prefix"],
)
def test_invalid_host_requirements_are_rejected_when_the_template_loads(
    amount: str, attribute: str, complaint: str
) -> None:
    text = f"""\
specificationVersion: jobtemplate-2023-09
name: BadRequirements
steps:
- name: Step
  hostRequirements:
    amounts:
    - {amount}
    attributes:
    - {attribute}
  script:
    actions:
      onRun: {{command: "true"}}
"""
    with pytest.raises(TemplateError, match="hostRequirements") as raised:
        Template.from_text(text)
    assert complaint in str(raised.value)


# ---- path mapping (job_templates/path-mapping.yaml) -------------------------------------

SCENE = "/mnt/projects/shot/a.exr"


def posix_rule(destination: Path) -> dict[str, str]:
    return {
        "source_path_format": "POSIX",
        "source_path": "/mnt/projects",
        "destination_path": str(destination),
    }


def rules_input(form: str, rule: dict[str, str], tmp_path: Path) -> Any:
    """The same single rule in each form ``path_mapping_rules=`` accepts."""
    document = {"version": "pathmapping-1.0", "path_mapping_rules": [rule]}
    if form == "rule-dicts":
        return [rule]
    if form == "document":
        return document
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def printed_rules(result: JobResult) -> Any:
    lines = printed(result, "PrintRules")
    start, end = lines.index("rules-begin"), lines.index("rules-end")
    return json.loads("\n".join(lines[start + 1 : end]))


def test_session_has_no_path_mapping_rules_when_none_are_given(tmp_path: Path) -> None:
    result = run(load("path-mapping.yaml"), tmp_path, {"Scene": SCENE}, keep_workdir=True)

    assert result.ok, result.error
    seen = printed_values(result, "PrintRules")
    assert seen["has-rules"] == "false"
    assert "No path mapping rules defined for this Session" in printed(result, "PrintRules")
    assert seen["scene-mapped"] == SCENE
    assert seen["scene-raw"] == SCENE
    rules_file = Path(seen["rules-file"])
    assert rules_file.is_relative_to(tmp_path / "sessions")
    content = rules_file.read_text(encoding="utf-8").strip()
    assert content == "" or not json.loads(content).get("path_mapping_rules")


@pytest.mark.parametrize("form", ["rule-dicts", "document", "file"])
def test_posix_rule_maps_a_path_job_parameter_and_fills_the_rules_file(
    tmp_path: Path, form: str
) -> None:
    rule = posix_rule(tmp_path / "local-projects")
    rules = rules_input(form, rule, tmp_path)

    result = run(
        load("path-mapping.yaml"),
        tmp_path,
        {"Scene": SCENE},
        path_mapping_rules=rules,
        keep_workdir=True,
    )

    assert result.ok, result.error
    seen = printed_values(result, "PrintRules")
    assert seen["has-rules"] == "true"
    assert seen["scene-mapped"] == str(tmp_path / "local-projects" / "shot" / "a.exr")
    assert seen["scene-raw"] == SCENE
    expected = {"version": "pathmapping-1.0", "path_mapping_rules": [rule]}
    assert printed_rules(result) == expected
    rules_file = Path(seen["rules-file"])
    assert rules_file.is_relative_to(tmp_path / "sessions")
    assert json.loads(rules_file.read_text(encoding="utf-8")) == expected


def test_windows_rule_maps_a_windows_path_parameter_on_linux(tmp_path: Path) -> None:
    rule = {
        "source_path_format": "WINDOWS",
        "source_path": "C:\\Projects",
        "destination_path": str(tmp_path / "projects"),
    }

    result = run(
        load("path-mapping.yaml"),
        tmp_path,
        {"Scene": "C:\\Projects\\a.ma"},
        path_mapping_rules=[rule],
    )

    assert result.ok, result.error
    seen = printed_values(result, "PrintRules")
    assert seen["has-rules"] == "true"
    assert seen["scene-mapped"] == str(tmp_path / "projects" / "a.ma")
    assert seen["scene-raw"] == "C:\\Projects\\a.ma"
    assert printed_rules(result)["path_mapping_rules"] == [rule]


# ---- task parameter showcase (job_templates/task-parameter-definition-showcase.yaml) ----


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> JobResult:
    return run_showcase(tmp_path_factory.mktemp("showcase-serial"))


@pytest.fixture(scope="module")
def showcase_two_workers(tmp_path_factory: pytest.TempPathFactory) -> JobResult:
    return run_showcase(tmp_path_factory.mktemp("showcase-parallel"), workers=2)


@pytest.fixture(scope="module")
def showcase_model() -> dict[str, list[dict[str, ParameterValue]]]:
    return model_task_values(SHOWCASE, SHOWCASE_PARAMETERS)


def test_showcase_runs_every_step_with_its_number_of_tasks(
    showcase: JobResult, showcase_model: dict[str, list[dict[str, ParameterValue]]]
) -> None:
    assert showcase.ok, showcase.error
    counts = showcase.tasks.groupby("step", sort=False).size().to_dict()
    assert counts == SHOWCASE_COUNTS
    assert counts == {step: len(tasks) for step, tasks in showcase_model.items()}
    assert len(showcase.tasks) == 70
    assert set(showcase.tasks["state"]) == {"success"}
    assert list(dict.fromkeys(showcase.tasks["step"])) == list(SHOWCASE_COUNTS)


def test_showcase_task_order_matches_openjd_model_iteration(
    showcase: JobResult, showcase_model: dict[str, list[dict[str, ParameterValue]]]
) -> None:
    for step, tasks in showcase_model.items():
        names = [name for name in SHOWCASE_NAMES if name in tasks[0]]
        assert parameter_rows(showcase, step, names) == model_rows(tasks), step


def test_mixed_operators_iterate_with_the_rightmost_parameter_fastest(
    showcase: JobResult,
) -> None:
    # Not the order the upstream sample's comments claim; the order the model yields.
    assert parameter_rows(showcase, "ProductOfAssociation", SHOWCASE_NAMES) == [
        (1, "one", "Buz1"),
        (1, "one", "Buz2"),
        (2, "two", "Buz1"),
        (2, "two", "Buz2"),
        (3, "three", "Buz1"),
        (3, "three", "Buz2"),
    ]
    assert parameter_rows(showcase, "AssociationWithProduct", SHOWCASE_NAMES) == [
        (1, "one", "Buz1"),
        (2, "one", "Buz2"),
        (3, "two", "Buz1"),
        (4, "two", "Buz2"),
    ]
    assert parameter_rows(showcase, "ProductWithAssociation", SHOWCASE_NAMES) == [
        (1, "one", "Buz1"),
        (1, "two", "Buz2"),
        (1, "three", "Buz3"),
        (2, "one", "Buz1"),
        (2, "two", "Buz2"),
        (2, "three", "Buz3"),
    ]


def test_showcase_range_forms_expand_to_their_values(showcase: JobResult) -> None:
    assert column(showcase, "IntRange", "Foo") == list(range(1, 11))
    assert column(showcase, "IntRangeWithStep", "Foo") == [1, 3, 5, 7, 9]
    assert column(showcase, "IntRangeCountingDown", "Foo") == [10, 7, 4, 1]
    assert sorted(column(showcase, "CompoundIntRange", "Foo")) == [1, 2, 3, 8, 20, 25, 30]
    assert column(showcase, "IntRangeFromJobParameter", "Foo") == [1, 2, 3, 4]
    assert column(showcase, "IntList", "Foo") == [1, 2, 3, 10]
    assert column(showcase, "FloatList", "Foo") == [1.0, 2.5, 3.0, 4.25, 10.4]
    assert column(showcase, "StringList", "Foo") == ["one", "two, three", "1-4"]
    assert column(showcase, "PathList", "Foo") == [
        "/mnt/drive/dir/file1",
        "/mnt/drive/dir/string_file",
        "/mnt/drive/dir/path_file",
    ]
    assert parameter_rows(showcase, "Product", ["Foo", "Bar"]) == [
        (1, "one"),
        (1, "two"),
        (1, "three"),
        (2, "one"),
        (2, "two"),
        (2, "three"),
    ]
    assert parameter_rows(showcase, "Association", ["Foo", "Bar"]) == [
        (1, "one"),
        (2, "two"),
        (3, "three"),
    ]


def test_showcase_task_values_keep_their_parameter_types(showcase: JobResult) -> None:
    assert {type(v) for v in column(showcase, "IntRange", "Foo")} == {int}
    assert {type(v) for v in column(showcase, "FloatList", "Foo")} == {float}
    assert {type(v) for v in column(showcase, "StringList", "Foo")} == {str}
    assert {type(v) for v in column(showcase, "PathList", "Foo")} == {str}
    # A step without a parameter leaves that column empty.
    assert set(column(showcase, "IntRange", "Bar")) == {None}


def test_showcase_tasks_print_their_own_values(
    showcase: JobResult, showcase_model: dict[str, list[dict[str, ParameterValue]]]
) -> None:
    for step, tasks in showcase_model.items():
        for index, task in enumerate(tasks):
            assert printed(showcase, step, index) == [expected_echo(step, task)], (step, index)


def test_showcase_with_two_workers_runs_the_same_tasks(
    showcase: JobResult, showcase_two_workers: JobResult
) -> None:
    assert showcase_two_workers.ok, showcase_two_workers.error
    assert rows_as_set(showcase_two_workers) == rows_as_set(showcase)
    assert len(showcase_two_workers.tasks) == len(showcase.tasks)
    assert set(showcase_two_workers.tasks["worker"]) == {"worker-1", "worker-2"}


def test_showcase_with_two_workers_keeps_the_model_order_per_step(
    showcase_two_workers: JobResult, showcase_model: dict[str, list[dict[str, ParameterValue]]]
) -> None:
    rows = parameter_rows(showcase_two_workers, "ProductOfAssociation", SHOWCASE_NAMES)
    assert rows == model_rows(showcase_model["ProductOfAssociation"])


def test_path_task_parameters_are_mapped_and_raw_values_kept(tmp_path: Path) -> None:
    rule = {
        "source_path_format": "POSIX",
        "source_path": "/mnt/drive",
        "destination_path": str(tmp_path / "remapped"),
    }

    result = run_showcase(tmp_path, step="PathList", path_mapping_rules=[rule])

    assert result.ok, result.error
    assert list(result.tasks["step"]) == ["PathList"] * 3
    remapped = tmp_path / "remapped" / "dir"
    assert [printed(result, "PathList", i) for i in range(3)] == [
        [f"Foo={remapped / 'file1'} raw=/mnt/drive/dir/file1"],
        [f"Foo={remapped / 'string_file'} raw=/mnt/drive/dir/string_file"],
        [f"Foo={remapped / 'path_file'} raw=/mnt/drive/dir/path_file"],
    ]
    # The table records the task's values as defined, before mapping.
    assert column(result, "PathList", "Foo")[0] == "/mnt/drive/dir/file1"


def test_float_filter_selects_the_task_whose_value_the_table_shows(tmp_path: Path) -> None:
    result = run_showcase(tmp_path, step="FloatList", tasks="Foo=3.0")

    assert result.ok, result.error
    assert column(result, "FloatList", "Foo") == [3.0]


def test_float_value_from_the_table_selects_that_task_again(tmp_path: Path) -> None:
    first = run_showcase(tmp_path / "all", step="FloatList")
    value = column(first, "FloatList", "Foo")[2]
    assert value == 3.0

    result = run_showcase(tmp_path / "again", step="FloatList", tasks=[{"Foo": value}])

    assert result.ok, result.error
    assert column(result, "FloatList", "Foo") == [3.0]


# ---- environment variables (environment_templates/environment-variables.yaml) ----------

LICENSES = {"STUDIO_LICENSE_SERVER": "@192.0.2.10", "RENDERER_LICENSE": "5053@192.0.2.10"}


@pytest.mark.parametrize("given_as", ["template", "path"])
def test_environment_template_variables_reach_the_task(tmp_path: Path, given_as: str) -> None:
    path = TEMPLATES / "environment-variables.yaml"
    environment = Template.load(path) if given_as == "template" else str(path)

    result = run(load("print-licenses.yaml"), tmp_path, environments=[environment])

    assert result.ok, result.error
    assert printed_values(result, "Print") == LICENSES
    environments = result.environments
    assert list(environments["name"]) == ["StaticLicenseVariables"]
    assert list(environments["scope"]) == ["external"]
    assert list(environments["state"]) == ["success"]
    assert not set(LICENSES) & set(os.environ)


def test_environment_template_is_an_environment_with_only_variables() -> None:
    environment = load("environment-variables.yaml")

    assert environment.kind == "environment"
    assert environment.name == "StaticLicenseVariables"
    assert environment.model.environment.script is None
    assert dict(environment.model.environment.variables or {}) == LICENSES


def test_without_the_environment_the_variables_are_unset(tmp_path: Path) -> None:
    result = run(load("print-licenses.yaml"), tmp_path)

    assert result.ok, result.error
    assert printed_values(result, "Print") == dict.fromkeys(LICENSES, "")
    assert result.environments.empty


# ---- dependencies and task selection ---------------------------------------------------


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    directory = tmp_path / "frames"
    directory.mkdir()
    return directory


def run_render_encode(tmp_path: Path, frames: Path, **options: Any) -> JobResult:
    return run(load("render-then-encode.yaml"), tmp_path, {"OutDir": frames}, **options)


def frames_written(frames: Path) -> list[str]:
    return sorted(path.name for path in frames.iterdir())


def test_dependent_step_starts_after_every_task_of_its_dependency_ended(
    tmp_path: Path, frames: Path
) -> None:
    result = run_render_encode(tmp_path, frames, workers=2)

    assert result.ok, result.error
    render = step_frame(result, "Render")
    encode = step_frame(result, "Encode").iloc[0]
    assert len(render) == 6
    assert encode["started"] >= render["ended"].max()
    assert printed(result, "Encode") == [f"frame {n}" for n in range(1, 7)] + ["encoded"]


def test_whole_job_runs_steps_in_dependency_order(tmp_path: Path, frames: Path) -> None:
    result = run_render_encode(tmp_path, frames)

    assert result.ok, result.error
    assert list(result.tasks["step"]) == ["Render"] * 6 + ["Encode"]
    assert column(result, "Render", "Frame") == [1, 2, 3, 4, 5, 6]
    started = list(result.tasks["started"])
    assert started == sorted(started)


def test_step_with_run_dependencies_runs_its_dependencies_first(
    tmp_path: Path, frames: Path
) -> None:
    result = run_render_encode(tmp_path, frames, step="Encode")

    assert result.ok, result.error
    assert list(result.tasks["step"]) == ["Render"] * 6 + ["Encode"]
    assert printed(result, "Encode")[:-1] == [f"frame {n}" for n in range(1, 7)]


def test_step_without_run_dependencies_runs_alone(tmp_path: Path, frames: Path) -> None:
    result = run_render_encode(tmp_path, frames, step="Encode", run_dependencies=False)

    assert result.ok, result.error
    assert list(result.tasks["step"]) == ["Encode"]
    assert printed(result, "Encode") == ["encoded"]
    assert frames_written(frames) == []


def test_tasks_range_filter_runs_only_those_frames(tmp_path: Path, frames: Path) -> None:
    result = run_render_encode(tmp_path, frames, step="Render", tasks="Frame=2-3")

    assert result.ok, result.error
    assert list(result.tasks["step"]) == ["Render", "Render"]
    assert column(result, "Render", "Frame") == [2, 3]
    assert frames_written(frames) == ["frame-2.txt", "frame-3.txt"]


def test_tasks_list_runs_exactly_the_given_task(tmp_path: Path, frames: Path) -> None:
    result = run_render_encode(tmp_path, frames, step="Render", tasks=[{"Frame": 5}])

    assert result.ok, result.error
    assert column(result, "Render", "Frame") == [5]
    assert list(result.tasks["task"]) == [4]  # its position in the whole parameter space
    assert printed(result, "Render", 4) == ["rendered 5"]
    assert frames_written(frames) == ["frame-5.txt"]


def test_max_tasks_runs_the_first_tasks_of_the_step(tmp_path: Path, frames: Path) -> None:
    result = run_render_encode(tmp_path, frames, step="Render", max_tasks=2)

    assert result.ok, result.error
    assert column(result, "Render", "Frame") == [1, 2]
    assert frames_written(frames) == ["frame-1.txt", "frame-2.txt"]


def test_max_tasks_limits_only_the_selected_step_not_its_dependencies(
    tmp_path: Path, frames: Path
) -> None:
    result = run_render_encode(tmp_path, frames, step="Encode", max_tasks=2)

    assert result.ok, result.error
    assert column(result, "Render", "Frame") == [1, 2, 3, 4, 5, 6]
    assert printed(result, "Encode") == [f"frame {n}" for n in range(1, 7)] + ["encoded"]


def test_tasks_filter_matching_no_task_is_refused(tmp_path: Path, frames: Path) -> None:
    with pytest.raises(SelectionError, match="tasks='Frame=9' selects no task of step 'Render'"):
        run_render_encode(tmp_path, frames, step="Render", tasks="Frame=9")
