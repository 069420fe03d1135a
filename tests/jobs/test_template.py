"""Template: loading, validation errors with locations, description, instantiation, bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from openjd.model import DecodeValidationError, ParameterValueType

from openjd_notebook.jobs.errors import JobsError, ParameterError, TemplateError
from openjd_notebook.jobs.template import JobInstance, Template, TemplateSummary

# Line numbers below count from 1 at "specificationVersion".
RENDER = """\
specificationVersion: jobtemplate-2023-09
extensions: [TASK_CHUNKING]
name: Render {{Param.Shot}}
parameterDefinitions:
- name: Shot
  type: STRING
  default: sh010
- name: Frames
  type: STRING
  default: "1-10"
- name: Scene
  type: PATH
steps:
- name: Frames
  parameterSpace:
    taskParameterDefinitions:
    - name: Frame
      type: CHUNK[INT]
      range: "{{Param.Frames}}"
      chunks:
        defaultTaskCount: 3
        rangeConstraint: CONTIGUOUS
  stepEnvironments:
  - name: Blender
    variables:
      BLENDER_VERSION: "4.2"
  script:
    actions:
      onRun:
        command: echo
        args: ["{{Task.Param.Frame}}", "{{Param.Scene}}"]
- name: Layers
  parameterSpace:
    taskParameterDefinitions:
    - name: Layer
      type: STRING
      range: [beauty, depth]
    - name: Pass
      type: INT
      range: "1-3"
  script:
    actions:
      onRun:
        command: echo
- name: Encode
  dependencies:
  - dependsOn: Frames
  - dependsOn: Layers
  script:
    actions:
      onRun:
        command: echo
jobEnvironments:
- name: Farm
  variables:
    FARM: local
"""

SIMPLE = {
    "specificationVersion": "jobtemplate-2023-09",
    "name": "Simple",
    "parameterDefinitions": [{"name": "Count", "type": "INT", "default": 2}],
    "steps": [{"name": "Only", "script": {"actions": {"onRun": {"command": "echo"}}}}],
}

ENVIRONMENT = """\
specificationVersion: environment-2023-09
extensions: [REDACTED_ENV_VARS]
parameterDefinitions:
- name: Site
  type: STRING
  default: paris
environment:
  name: Studio
  variables:
    SITE: "{{Param.Site}}"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def template_error(text: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        Template.from_text(text)
    return caught.value


# ---- loading ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_load_yaml_file(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"render{suffix}", RENDER)
    template = Template.load(path)
    assert template.kind == "job"
    assert template.name == "Render {{Param.Shot}}"
    assert template.steps == ["Frames", "Layers", "Encode"]
    assert template.extensions == ["TASK_CHUNKING"]
    assert template.source == path
    assert template.directory == tmp_path
    assert template.text == RENDER
    assert template.bundle_parameter_values == {}
    assert len(template.digest) == 64


def test_load_json_file_equals_yaml(tmp_path: Path) -> None:
    document = yaml.safe_load(RENDER)
    path = write(tmp_path / "render.json", json.dumps(document, indent=2))
    from_json = Template.load(path)
    assert from_json.text_format == "json"
    assert from_json == Template.from_text(RENDER)
    assert from_json.digest != Template.from_text(RENDER).digest


@pytest.mark.parametrize(
    ("template_name", "values_name"),
    [("template.yaml", "parameter_values.yaml"), ("template.json", "parameter_values.json")],
)
def test_load_bundle_directory(tmp_path: Path, template_name: str, values_name: str) -> None:
    document = yaml.safe_load(RENDER)
    values = {
        "parameterValues": [{"name": "Frames", "value": "1-4"}, {"name": "Scene", "value": "a.ma"}]
    }
    dump = json.dumps if template_name.endswith(".json") else yaml.safe_dump
    write(tmp_path / "bundle" / template_name, dump(document))
    write(tmp_path / "bundle" / values_name, dump(values))
    template = Template.load(tmp_path / "bundle")
    assert template.source == tmp_path / "bundle" / template_name
    assert template.bundle_parameter_values == {"Frames": "1-4", "Scene": "a.ma"}
    assert template.summary().task_count == 4 + 6 + 1
    assert template.summary({"Frames": "1-2"}).task_count == 2 + 6 + 1


def test_bundle_without_parameter_values(tmp_path: Path) -> None:
    write(tmp_path / "template.yaml", RENDER)
    assert Template.load(tmp_path).bundle_parameter_values == {}


def test_bundle_values_normalised_and_namespaced_values_ignored(tmp_path: Path) -> None:
    write(tmp_path / "template.yaml", yaml.safe_dump(SIMPLE))
    values = [{"name": "Count", "value": 5}, {"name": "deadline:priority", "value": 50}]
    write(tmp_path / "parameter_values.yaml", yaml.safe_dump({"parameterValues": values}))
    template = Template.load(tmp_path)
    assert template.bundle_parameter_values == {"Count": "5", "deadline:priority": "50"}
    assert template.instantiate().parameter_strings == {"Count": "5"}


def test_bundle_value_for_unknown_parameter_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "template.yaml", yaml.safe_dump(SIMPLE))
    values = {"parameterValues": [{"name": "Cuont", "value": "5"}]}
    write(tmp_path / "parameter_values.yaml", yaml.safe_dump(values))
    with pytest.raises(ParameterError, match=r"Unknown job parameter.*Cuont"):
        Template.load(tmp_path).instantiate()


def test_malformed_parameter_values_file_names_the_line(tmp_path: Path) -> None:
    write(tmp_path / "template.yaml", yaml.safe_dump(SIMPLE))
    write(
        tmp_path / "parameter_values.yaml",
        "parameterValues:\n- name: Count\n  value: 1\n- value: 2\n",
    )
    with pytest.raises(TemplateError) as caught:
        Template.load(tmp_path)
    assert caught.value.source == tmp_path / "parameter_values.yaml"
    assert (caught.value.line, caught.value.field_path) == (4, "parameterValues[1]")


def test_bundle_with_two_templates_or_none_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a job bundle"):
        Template.load(tmp_path)
    write(tmp_path / "template.yaml", yaml.safe_dump(SIMPLE))
    write(tmp_path / "template.json", json.dumps(SIMPLE))
    with pytest.raises(TemplateError, match=r"both template\.yaml and template\.json"):
        Template.load(tmp_path)


def test_from_text_yaml_and_json(tmp_path: Path) -> None:
    from_yaml = Template.from_text(yaml.safe_dump(SIMPLE))
    from_json = Template.from_text(json.dumps(SIMPLE))
    assert (from_yaml.text_format, from_json.text_format) == ("yaml", "json")
    assert from_yaml == from_json
    assert from_yaml.source is None
    assert from_yaml.directory == Path.cwd()
    assert Template.from_text(yaml.safe_dump(SIMPLE), directory=tmp_path).directory == tmp_path


def test_from_dict() -> None:
    template = Template.from_dict(SIMPLE)
    assert template.name == "Simple"
    assert yaml.safe_load(template.text) == SIMPLE
    assert Template.from_text(template.text) == template
    assert template.model.steps[0].name == "Only"


def test_environment_template() -> None:
    env = Template.from_text(ENVIRONMENT)
    assert (env.kind, env.name, env.steps) == ("environment", "Studio", [])
    assert env.extensions == ["REDACTED_ENV_VARS"]
    assert env.parameters["name"].tolist() == ["Site"]
    summary = env.summary()
    assert (summary.kind, summary.steps, summary.external_environments) == (
        "environment",
        (),
        ("Studio",),
    )
    with pytest.raises(TemplateError, match="environment template"):
        env.instantiate()


def test_instantiate_with_environment_templates() -> None:
    env = Template.from_text(ENVIRONMENT)
    instance = Template.from_text(RENDER).instantiate({"Scene": "/s.ma"}, environments=[env])
    assert instance.parameter_strings["Site"] == "paris"
    assert instance.revision_extensions.extensions == {"TASK_CHUNKING", "REDACTED_ENV_VARS"}
    summary = Template.from_text(RENDER).summary({"Scene": "/s.ma"}, environments=[env])
    assert summary.external_environments == ("Studio",)
    with pytest.raises(TemplateError, match="takes environment templates"):
        Template.from_text(RENDER).instantiate(
            {"Scene": "/s.ma"}, environments=[Template.from_dict(SIMPLE)]
        )


# ---- errors -------------------------------------------------------------------------------


def test_error_in_format_string_names_line_and_field() -> None:
    error = template_error(RENDER.replace("{{Task.Param.Frame}}", "{{Task.Param.Nope}}"))
    assert error.line == 31
    assert error.field_path == "steps[0].script.actions.onRun.args[0]"
    assert str(error).startswith(
        "line 31 (steps[0] -> script -> actions -> onRun -> args[0]): Variable Task.Param.Nope"
    )
    assert isinstance(error.__cause__, DecodeValidationError)


def test_error_in_dependency_names_line_and_field() -> None:
    error = template_error(RENDER.replace("dependsOn: Layers", "dependsOn: Lyers"))
    assert (error.line, error.field_path) == (48, "steps[2].dependencies[1].dependsOn")
    assert "Unknown step 'Lyers'" in str(error)


def test_error_in_task_parameter_range_names_line_and_field() -> None:
    error = template_error(RENDER.replace('range: "1-3"', 'range: "1-x"'))
    assert (error.line, error.field_path) == (
        40,
        "steps[1].parameterSpace.taskParameterDefinitions[1].range",
    )


def test_error_for_missing_field_points_at_its_parent() -> None:
    error = template_error(
        RENDER.replace(
            "      onRun:\n        command: echo\n- name: Encode", "      {}\n- name: Encode"
        )
    )
    assert error.field_path == "steps[1].script.actions.onRun"
    assert error.line == 42


def test_error_in_parameter_type() -> None:
    error = template_error(RENDER.replace("type: PATH", "type: FILE"))
    assert (error.line, error.field_path) == (11, "parameterDefinitions[2]")


def test_unknown_extension_declared() -> None:
    error = template_error(RENDER.replace("[TASK_CHUNKING]", "[TASK_CHUNKING, TELEPORT]"))
    assert (error.line, error.field_path) == (2, "extensions")
    assert "TELEPORT" in str(error)


KEY_WITH_ARROW = """\
specificationVersion: jobtemplate-2023-09
name: J
steps:
- name: S
  script:
    actions:
      onRun:
        command: echo
    "on -> Run": 1
"""


def test_error_locations_come_from_pydantic_not_from_the_message_text() -> None:
    """A key holding " -> " reads as two path parts in openjd-model's text; pydantic's loc
    tuple, which the error carries, keeps it one key at its own line."""
    error = template_error(KEY_WITH_ARROW)
    assert (error.line, error.field_path) == (9, "steps[0].script.on -> Run")
    assert "Unknown field `on -> Run`" in str(error)


def test_the_message_text_is_parsed_when_no_pydantic_error_comes_with_it() -> None:
    from openjd_notebook.jobs._template_text import model_error

    decoded = template_error(RENDER.replace("dependsOn: Layers", "dependsOn: Lyers"))
    cause = decoded.__cause__
    assert isinstance(cause, DecodeValidationError)
    text = RENDER.replace("dependsOn: Layers", "dependsOn: Lyers")
    from_text = model_error(str(cause), text, None, 1)
    assert (from_text.line, from_text.field_path) == (48, "steps[2].dependencies[1].dependsOn")
    assert str(from_text) == str(decoded)


def test_several_problems_are_all_listed() -> None:
    text = RENDER.replace('range: "1-3"', 'range: "1-x"').replace(
        "{{Task.Param.Frame}}", "{{Task.Param.Nope}}"
    )
    error = template_error(text)
    assert len(error.problems) == 2
    assert [p.line for p in error.problems] == [31, 40]
    assert str(error).startswith("The template has 2 problems:")


def test_error_from_file_names_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "template.yaml", RENDER.replace("dependsOn: Layers", "dependsOn: Lyers")
    )
    with pytest.raises(TemplateError) as caught:
        Template.load(path)
    assert caught.value.source == path
    assert str(caught.value).startswith(
        "template.yaml, line 48 (steps[2] -> dependencies[1] -> dependsOn):"
    )


def test_error_in_json_text_has_the_line() -> None:
    document = yaml.safe_load(RENDER)
    document["steps"][2]["dependencies"][1]["dependsOn"] = "Lyers"
    text = json.dumps(document, indent=2)
    error = template_error(text)
    assert error.field_path == "steps[2].dependencies[1].dependsOn"
    assert error.line is not None
    assert '"dependsOn": "Lyers"' in text.splitlines()[error.line - 1]


def test_error_from_dict_has_the_field_but_no_line() -> None:
    document = {
        **SIMPLE,
        "steps": [{"name": "Only", "script": {"actions": {"onRun": {"command": 5}}}}],
    }
    with pytest.raises(TemplateError) as caught:
        Template.from_dict(document)
    assert caught.value.line is None
    assert caught.value.field_path == "steps[0].script.actions.onRun.command"


def test_yaml_syntax_error_has_line_and_column() -> None:
    error = template_error("specificationVersion: jobtemplate-2023-09\nname: [a, b\nsteps: []\n")
    assert error.line is not None and error.column is not None
    assert error.line >= 2
    assert "YAML syntax error" in str(error)
    error = template_error("name: a\n  bad: indent\n")
    assert (error.line, error.column) == (2, 6)


def test_json_syntax_error_has_line_and_column() -> None:
    error = template_error('{\n  "name": "a",\n  "steps": [,]\n}')
    assert (error.line, error.column) == (3, 13)
    assert str(error) == "line 3, column 13: JSON syntax error: Expecting value"


def test_document_that_is_not_a_mapping() -> None:
    assert "mapping" in str(template_error("- a\n- b\n"))


def test_error_types_and_notebook_rendering() -> None:
    error = template_error(RENDER.replace("dependsOn: Layers", "dependsOn: Lyers"))
    assert isinstance(error, ValueError) and isinstance(error, JobsError)
    lines = error._render_traceback_()
    assert lines[0].startswith("TemplateError: line 48")
    assert len(lines) == 1


# ---- description --------------------------------------------------------------------------

ALL_TYPES = """\
specificationVersion: jobtemplate-2023-09
extensions: [EXPR]
name: Types
parameterDefinitions:
- {name: S, type: STRING, default: "a", minLength: 1, maxLength: 5, description: "a string"}
- {name: P, type: PATH, default: "in/x.ma"}
- {name: I, type: INT, minValue: 1, maxValue: 10}
- {name: F, type: FLOAT, allowedValues: [1.5, 2.5], default: 2.5}
- {name: B, type: BOOL, default: false}
- {name: LI, type: "LIST[INT]", default: [1, 2], minLength: 1}
- {name: LS, type: "LIST[STRING]", default: [x]}
- {name: LP, type: "LIST[PATH]", default: [a]}
- {name: LF, type: "LIST[FLOAT]", default: [0.5]}
- {name: LB, type: "LIST[BOOL]", default: [true]}
- {name: LL, type: "LIST[LIST[INT]]", default: [[1, 2]]}
- {name: R, type: RANGE_EXPR, default: "1-3"}
- {name: C, type: STRING, allowedValues: [low, high], default: low}
steps:
- name: A
  script: {actions: {onRun: {command: echo}}}
"""


def test_parameters_frame_for_every_type() -> None:
    frame = Template.from_text(ALL_TYPES).parameters
    assert list(frame.columns) == [
        "name",
        "type",
        "required",
        "default",
        "allowed_values",
        "range",
        "description",
    ]
    rows = {row["name"]: row for row in frame.to_dict("records")}
    assert [rows[n]["type"] for n in ("S", "P", "I", "F", "B", "R")] == [
        "STRING",
        "PATH",
        "INT",
        "FLOAT",
        "BOOL",
        "RANGE_EXPR",
    ]
    assert [rows[n]["type"] for n in ("LI", "LS", "LP", "LF", "LB", "LL")] == [
        "LIST[INT]",
        "LIST[STRING]",
        "LIST[PATH]",
        "LIST[FLOAT]",
        "LIST[BOOL]",
        "LIST[LIST[INT]]",
    ]
    assert rows["S"]["default"] == "a" and rows["S"]["range"] == "length 1..5"
    assert rows["S"]["description"] == "a string"
    assert rows["P"]["default"] == "in/x.ma"
    assert rows["I"]["required"] and rows["I"]["default"] is None and rows["I"]["range"] == "1..10"
    assert rows["F"]["default"] == 2.5 and rows["F"]["allowed_values"] == [1.5, 2.5]
    assert rows["B"]["default"] is False
    assert rows["LI"]["default"] == [1, 2] and rows["LI"]["range"] == "length >= 1"
    assert rows["LF"]["default"] == [0.5] and rows["LL"]["default"] == [[1, 2]]
    assert rows["R"]["default"] == "1-3"
    assert rows["C"]["allowed_values"] == ["low", "high"]
    assert not rows["C"]["required"]


def test_summary_counts_steps_tasks_chunks_and_environments() -> None:
    summary = Template.from_text(RENDER).summary({"Scene": "/s.ma"})
    assert isinstance(summary, TemplateSummary)
    assert summary.name == "Render sh010"
    by_name = {step.name: step for step in summary.steps}
    assert [s.name for s in summary.steps] == ["Frames", "Layers", "Encode"]
    assert (by_name["Frames"].task_count, by_name["Frames"].chunk_count) == (10, 4)
    assert (by_name["Layers"].task_count, by_name["Layers"].chunk_count) == (6, None)
    assert by_name["Encode"].task_count == 1
    assert by_name["Encode"].dependencies == ("Frames", "Layers")
    assert by_name["Frames"].environments == ("Blender",)
    assert summary.job_environments == ("Farm",)
    assert summary.task_count == 17
    assert summary.parameters["Frames"] == "1-10"


def test_summary_renderings() -> None:
    summary = Template.from_text(RENDER).summary({"Scene": "/s.ma", "Shot": "<b>"})
    text = str(summary).splitlines()
    assert text[0] == "Job 'Render <b>': 3 steps, 17 tasks"
    assert text[-4].split() == ["step", "depends", "on", "tasks", "chunks", "environments"]
    assert text[-3].split() == ["Frames", "-", "10", "4", "Blender"]
    assert text[-1].split() == ["Encode", "Frames,", "Layers", "1", "-", "-"]
    markup = summary._repr_html_()
    assert "&lt;b&gt;" in markup and "<b>" not in markup
    assert markup.count("<tr>") == 4
    frame = summary.to_frame()
    assert frame["task_count"].tolist() == [10, 6, 1]
    assert frame["chunk_count"].isna().tolist() == [False, True, True]
    assert frame.loc[2, "dependencies"] == ["Frames", "Layers"]


def test_summary_without_required_values_lists_what_is_missing() -> None:
    template = Template.from_text(RENDER)
    summary = template.summary()
    assert summary.missing_parameters == ("Scene",)
    assert summary.task_count is None
    assert summary.steps[2].dependencies == ("Frames", "Layers")
    assert "task counts need values for: Scene" in str(summary)
    assert "Render" in template._repr_html_()
    with pytest.raises(ParameterError):
        template.summary({"Nope": 1})


SHOWCASE = """\
specificationVersion: jobtemplate-2023-09
name: Showcase
parameterDefinitions:
- {name: Last, type: INT, default: 4}
steps:
- name: IntList
  parameterSpace:
    taskParameterDefinitions: [{name: P, type: INT, range: [1, 2, 3]}]
  script: {actions: {onRun: {command: echo}}}
- name: IntStep
  parameterSpace:
    taskParameterDefinitions: [{name: P, type: INT, range: "1-10:3"}]
  script: {actions: {onRun: {command: echo}}}
- name: IntDescending
  parameterSpace:
    taskParameterDefinitions: [{name: P, type: INT, range: "10-1:-3"}]
  script: {actions: {onRun: {command: echo}}}
- name: IntMixed
  parameterSpace:
    taskParameterDefinitions: [{name: P, type: INT, range: "1-3,7,10-12"}]
  script: {actions: {onRun: {command: echo}}}
- name: IntFromParameter
  parameterSpace:
    taskParameterDefinitions: [{name: P, type: INT, range: "1-{{Param.Last}}"}]
  script: {actions: {onRun: {command: echo}}}
- name: Floats
  parameterSpace:
    taskParameterDefinitions: [{name: P, type: FLOAT, range: [0.5, 1.5]}]
  script: {actions: {onRun: {command: echo}}}
- name: Strings
  parameterSpace:
    taskParameterDefinitions: [{name: P, type: STRING, range: [a, b, c]}]
  script: {actions: {onRun: {command: echo}}}
- name: Paths
  parameterSpace:
    taskParameterDefinitions: [{name: P, type: PATH, range: [/a, /b]}]
  script: {actions: {onRun: {command: echo}}}
- name: Product
  parameterSpace:
    taskParameterDefinitions:
    - {name: A, type: INT, range: "1-2"}
    - {name: B, type: STRING, range: [x, y, z]}
  script: {actions: {onRun: {command: echo}}}
- name: Zip
  parameterSpace:
    taskParameterDefinitions:
    - {name: A, type: INT, range: "1-3"}
    - {name: B, type: STRING, range: [x, y, z]}
    combination: "(A, B)"
  script: {actions: {onRun: {command: echo}}}
- name: ZipTimesProduct
  parameterSpace:
    taskParameterDefinitions:
    - {name: A, type: INT, range: "1-2"}
    - {name: B, type: STRING, range: [x, y]}
    - {name: C, type: FLOAT, range: [1, 2, 3]}
    combination: "(A, B) * C"
  script: {actions: {onRun: {command: echo}}}
"""


def test_showcase_range_forms_and_combinations() -> None:
    summary = Template.from_text(SHOWCASE).summary()
    counts = {step.name: step.task_count for step in summary.steps}
    assert counts == {
        "IntList": 3,
        "IntStep": 4,
        "IntDescending": 4,
        "IntMixed": 7,
        "IntFromParameter": 4,
        "Floats": 2,
        "Strings": 3,
        "Paths": 2,
        "Product": 6,
        "Zip": 3,
        "ZipTimesProduct": 6,
    }
    assert Template.from_text(SHOWCASE).summary({"Last": 9}).steps[4].task_count == 9


def test_repr() -> None:
    assert repr(Template.from_dict(SIMPLE)) == "<Template job 'Simple', 1 step from text>"
    assert repr(Template.from_text(ENVIRONMENT)) == "<Template environment 'Studio' from text>"


# ---- instantiation ------------------------------------------------------------------------


def test_instantiate_with_strings() -> None:
    instance = Template.from_text(RENDER).instantiate({"Scene": "/p/s.ma", "Frames": "1-4"})
    assert isinstance(instance, JobInstance)
    assert instance.job.name == "Render sh010"
    assert instance.parameter_strings == {"Shot": "sh010", "Frames": "1-4", "Scene": "/p/s.ma"}
    assert instance.parameter_values["Scene"].type == ParameterValueType.PATH
    assert set(instance.step_symbol_tables) == {"Frames", "Layers", "Encode"}
    assert instance.revision_extensions.extensions == {"TASK_CHUNKING"}
    assert instance.revision_extensions.spec_rev.value == "2023-09"


def test_instantiate_with_python_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    values: dict[str, Any] = {
        "I": 4,
        "F": 1.5,
        "B": True,
        "LI": [3, 4],
        "LP": [Path("/x")],
        "P": Path("rel/x.ma"),
    }
    instance = Template.from_text(ALL_TYPES).instantiate(values)
    strings = instance.parameter_strings
    assert (strings["I"], strings["F"], strings["B"]) == ("4", "1.5", "true")
    assert (strings["LI"], strings["LP"]) == ("[3, 4]", '["/x"]')
    assert strings["P"] == str(tmp_path / "rel" / "x.ma")
    assert instance.parameter_values["LI"].value == [3, 4]
    assert instance.job.parameters is not None and instance.job.parameters["I"].value == "4"


def test_relative_path_default_joins_the_template_directory(tmp_path: Path) -> None:
    path = write(tmp_path / "t" / "template.yaml", ALL_TYPES)
    strings = Template.load(path).instantiate({"I": 1}).parameter_strings
    assert strings["P"] == str(tmp_path / "t" / "in" / "x.ma")


def test_relative_path_value_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    instance = Template.from_text(RENDER).instantiate({"Scene": "shots/a.ma"})
    assert instance.parameter_strings["Scene"] == str(tmp_path / "shots" / "a.ma")


@pytest.mark.parametrize("value", [r"C:\Projects\a.ma", "D:/renders/b.ma", r"\\server\share\c.ma"])
def test_windows_absolute_path_is_kept_on_posix(value: str) -> None:
    instance = Template.from_text(RENDER).instantiate({"Scene": value})
    assert instance.parameter_strings["Scene"] == value
    assert instance.parameter_values["Scene"].value == value
    assert instance.job.parameters is not None and instance.job.parameters["Scene"].value == value


def test_unknown_parameter_lists_expectations() -> None:
    with pytest.raises(ParameterError) as caught:
        Template.from_text(RENDER).instantiate({"Scene": "/a", "Scenes": "/b"})
    message = str(caught.value)
    assert message.startswith("Unknown job parameter(s): Scenes.")
    assert "Shot (STRING, default 'sh010')" in message
    assert "Scene (PATH, required)" in message
    assert [p.name for p in caught.value.expected] == ["Shot", "Frames", "Scene"]


def test_missing_parameter_lists_expectations() -> None:
    with pytest.raises(ParameterError) as caught:
        Template.from_text(RENDER).instantiate()
    assert caught.value.missing == ("Scene",)
    assert "Missing value(s) for required job parameter(s): Scene." in str(caught.value)
    assert "Frames (STRING, default '1-10')" in str(caught.value)


def test_value_rejected_by_the_template() -> None:
    with pytest.raises(ParameterError, match="allowedValues") as caught:
        Template.from_text(ALL_TYPES).instantiate({"I": 1, "C": "medium"})
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ParameterError, match="only for LIST"):
        Template.from_text(ALL_TYPES).instantiate({"I": [1]})


def test_value_that_breaks_a_range_blames_the_parameter() -> None:
    with pytest.raises(ParameterError) as caught:
        Template.from_text(RENDER).instantiate({"Scene": "/a", "Frames": "1-x"})
    assert str(caught.value).startswith("Job parameter Frames = '1-x' does not fit")


def test_bundle_values_are_defaults_that_parameters_override(tmp_path: Path) -> None:
    write(tmp_path / "template.yaml", RENDER)
    write(
        tmp_path / "parameter_values.yaml",
        yaml.safe_dump({"parameterValues": [{"name": "Scene", "value": "/b.ma"}]}),
    )
    template = Template.load(tmp_path)
    assert template.instantiate().parameter_strings["Scene"] == "/b.ma"
    assert template.instantiate({"Scene": "/c.ma"}).parameter_strings["Scene"] == "/c.ma"


# ---- bundles ------------------------------------------------------------------------------


def test_export_bundle_round_trip(tmp_path: Path) -> None:
    original = Template.load(write(tmp_path / "src" / "render.yaml", RENDER))
    bundle = original.export_bundle(tmp_path / "bundle")
    assert sorted(p.name for p in bundle.iterdir()) == ["parameter_values.yaml", "template.yaml"]
    loaded = Template.load(bundle)
    assert loaded == original
    assert loaded.text == RENDER


def test_export_bundle_with_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    original = Template.from_text(json.dumps(yaml.safe_load(RENDER)))
    bundle = original.export_bundle("out", {"Frames": "1-3", "Scene": "a.ma"})
    loaded = Template.load(bundle)
    assert loaded != original
    assert loaded.model == original.model
    assert loaded.bundle_parameter_values == {"Frames": "1-3", "Scene": str(tmp_path / "a.ma")}
    again = Template.load(loaded.export_bundle(tmp_path / "again"))
    assert again == loaded
    assert loaded.instantiate().parameter_strings["Frames"] == "1-3"


def test_export_bundle_refuses_unknown_parameters(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="Nope"):
        Template.from_text(RENDER).export_bundle(tmp_path, {"Nope": 1})


@pytest.mark.parametrize(
    ("default", "reason"),
    [
        ("/abs/scene.ma", "is an absolute path"),
        ("../outside/a.ma", "points outside the bundle"),
        (r"C:\a.ma", "is an absolute path"),
    ],
)
def test_export_bundle_refuses_path_defaults_outside_the_bundle(
    tmp_path: Path, default: str, reason: str
) -> None:
    text = RENDER.replace(
        "- name: Scene\n  type: PATH\n", f"- name: Scene\n  type: PATH\n  default: '{default}'\n"
    )
    template = Template.from_text(text)
    with pytest.raises(TemplateError) as caught:
        template.export_bundle(tmp_path / "bundle")
    assert reason in str(caught.value)
    assert (caught.value.line, caught.value.field_path) == (13, "parameterDefinitions[2].default")
    assert not (tmp_path / "bundle").exists()


def test_export_bundle_keeps_relative_path_defaults(tmp_path: Path) -> None:
    template = Template.from_text(ALL_TYPES)
    assert Template.load(template.export_bundle(tmp_path / "b")) == template


def test_export_bundle_refuses_a_directory_with_other_bundle_files(tmp_path: Path) -> None:
    write(tmp_path / "template.json", "{}")
    with pytest.raises(FileExistsError, match=r"template\.json"):
        Template.from_dict(SIMPLE).export_bundle(tmp_path)


def test_templates_are_values() -> None:
    template = Template.from_dict(SIMPLE)
    assert template == Template.from_dict(dict(SIMPLE))
    assert template != Template.from_text(RENDER)
    assert template != "Simple"
    with pytest.raises(TypeError):
        hash(template)
    with pytest.raises(AttributeError):
        template.text = "x"  # type: ignore[misc]
