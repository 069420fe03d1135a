"""Parameter values: Python values to model strings, and which paths count as the other OS's."""

from __future__ import annotations

import pickle
from decimal import Decimal
from pathlib import Path, PurePosixPath

import pytest
from openjd.model import ParameterValue, ParameterValueType

from openjd_notebook.jobs.errors import (
    ExpectedParameter,
    ParameterError,
    TemplateError,
    TemplateProblem,
)
from openjd_notebook.jobs.parameters import is_foreign_absolute, parameter_string, value_string


@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        ("1-10", "STRING", "1-10"),
        (5, "INT", "5"),
        (1.5, "FLOAT", "1.5"),
        (Decimal("2.25"), "FLOAT", "2.25"),
        (True, "BOOL", "true"),
        (False, None, "false"),
        (Path("/a/b.ma"), "PATH", "/a/b.ma"),
        (PurePosixPath("rel/b.ma"), "PATH", "rel/b.ma"),
        ([1, 2], "LIST[INT]", "[1, 2]"),
        ((Path("/x"), "y"), "LIST[PATH]", '["/x", "y"]'),
        ([[1, 2], [3]], "LIST[LIST[INT]]", "[[1, 2], [3]]"),
        ([Decimal("0.5")], "LIST[FLOAT]", "[0.5]"),
        ('["a"]', "LIST[STRING]", '["a"]'),
    ],
)
def test_parameter_string(value: object, type_name: str | None, expected: str) -> None:
    assert parameter_string(value, type_name) == expected


def test_list_for_a_scalar_type_is_refused() -> None:
    with pytest.raises(TypeError, match="only for LIST parameters, not INT"):
        parameter_string([1], "INT")


def test_value_string() -> None:
    assert value_string(ParameterValue(type=ParameterValueType.LIST_INT, value=[1, 2])) == "[1, 2]"
    assert value_string(ParameterValue(type=ParameterValueType.BOOL, value=True)) == "true"
    assert value_string(ParameterValue(type=ParameterValueType.PATH, value="/a")) == "/a"


@pytest.mark.parametrize(
    ("value", "foreign"),
    [
        (r"C:\Projects\a.ma", True),
        ("C:/Projects/a.ma", True),
        (r"\\server\share\a.ma", True),
        ("/mnt/a.ma", False),
        ("relative/a.ma", False),
        ("", False),
    ],
)
def test_is_foreign_absolute_on_posix(value: str, foreign: bool) -> None:
    assert is_foreign_absolute(value) is foreign


def test_parameter_error_lists_expectations() -> None:
    expected = [
        ExpectedParameter("Frames", "STRING", "1-10"),
        ExpectedParameter("Scene", "PATH", None),
    ]
    error = ParameterError("Unknown job parameter(s): Nope.", expected)
    assert str(error).splitlines() == [
        "Unknown job parameter(s): Nope. The template expects:",
        "  Frames (STRING, default '1-10')",
        "  Scene (PATH, required)",
    ]
    assert str(ParameterError("Unknown job parameter(s): X.")).endswith("takes no job parameters.")


def test_errors_survive_pickling() -> None:
    error = ParameterError("Missing.", [ExpectedParameter("A", "INT", None)], missing=["A"])
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.missing, copy.expected) == (str(error), ("A",), error.expected)
    located = TemplateError([TemplateProblem("bad", "steps[0].name", 4, None)], Path("t.yaml"))
    copy_located = pickle.loads(pickle.dumps(located))
    assert (str(copy_located), copy_located.line, copy_located.source) == (
        str(located),
        4,
        Path("t.yaml"),
    )
    assert str(TemplateError("plain message")) == "plain message"


RANGE_FROM_A_PARAMETER = """\
specificationVersion: jobtemplate-2023-09
name: Frames
parameterDefinitions:
- name: Frames
  type: STRING
  default: "1-5"
steps:
- name: Render
  parameterSpace:
    taskParameterDefinitions:
    - name: Frame
      type: INT
      range: "{{Param.Frames}}"
  script:
    actions:
      onRun:
        command: "true"
"""


def test_a_bad_value_for_a_task_range_blames_the_job_parameter() -> None:
    """-p Frames=abc breaks the task range built from it: the user typed Frames, not the
    range, so the error is a ParameterError about Frames with the range syntax."""
    from openjd_notebook import Template

    template = Template.from_text(RANGE_FROM_A_PARAMETER)
    assert len(template.instantiate({"Frames": "1-3"}).job.steps) == 1
    with pytest.raises(ParameterError) as raised:
        template.instantiate({"Frames": "abc"})
    message = str(raised.value)
    assert message.startswith("Job parameter Frames = 'abc' does not fit where the template uses")
    assert "'1-10:2' (every 2nd)" in message
    assert "Frames (STRING, default '1-5')" in message


def test_a_bad_range_written_in_the_template_stays_a_template_error() -> None:
    from openjd_notebook import Template

    broken = RANGE_FROM_A_PARAMETER.replace('range: "{{Param.Frames}}"', 'range: "1-x"')
    with pytest.raises(TemplateError):
        Template.from_text(broken).instantiate()


def test_a_bad_default_for_a_task_range_is_the_templates_fault() -> None:
    from openjd_notebook import Template

    broken = RANGE_FROM_A_PARAMETER.replace('default: "1-5"', 'default: "abc"')
    with pytest.raises(TemplateError, match="Creating the job failed"):
        Template.from_text(broken).instantiate()
