"""Bad input gets one clear error: never a hang, a MemoryError, an IndexError or a traceback wall.

Reading special files and alias bombs runs in a child process with a memory cap and a timeout,
so that a regression fails the test instead of taking the machine down with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from openjd.model.v2023_09 import Action
from typing_extensions import Self

from openjd_notebook import ParameterError, Template, TemplateError, run_job
from openjd_notebook.jobs.path_mapping import PathMappingError, load_path_mapping_rules

STEP = """\
- name: {name}
  dependencies:
  - dependsOn: {depends_on}
  script:
    actions:
      onRun:
        command: echo
"""

SIMPLE = """\
specificationVersion: jobtemplate-2023-09
name: Simple
steps:
- name: Only
  script:
    actions:
      onRun:
        command: echo
        args: [hello]
"""

# 470 bytes that expand to about 490 million nodes.
BILLION_LAUGHS = """\
specificationVersion: jobtemplate-2023-09
name: Bomb
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
steps:
- name: S
  script:
    actions:
      onRun:
        command: echo
"""

PARAMETER_BOMB = "\n".join(
    [
        'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
        *(
            f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]"
            for i in range(7)
        ),
        "Frames: *h",
    ]
)

ISOLATED = """\
import json, resource, sys, time
limit = 2 * 1024 ** 3  # a runaway read or expansion fails with MemoryError, not the machine
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from openjd_notebook import Template
from openjd_notebook.jobs.path_mapping import load_path_mapping_rules
path = sys.argv[1]
start = time.perf_counter()
try:
{call}
    outcome = {{"error": None}}
except BaseException as exc:
    outcome = {{"error": type(exc).__name__, "message": str(exc)}}
outcome["seconds"] = time.perf_counter() - start
print(json.dumps(outcome))
"""


def isolated(call: str, path: Path | str, timeout: float = 30) -> dict[str, Any]:
    """Run ``call`` (Python, reading ``path``) in a capped child; its error and duration."""
    code = ISOLATED.format(call=textwrap.indent(call, "    "))
    completed = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    outcome: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    return outcome


def template_error(text: str, **kwargs: Any) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        Template.from_text(text, **kwargs)
    return caught.value


def job_text(steps: str) -> str:
    return f"specificationVersion: jobtemplate-2023-09\nname: Cycle\nsteps:\n{steps}"


# ---- 11: a dependency cycle -------------------------------------------------------------------


def test_two_step_cycle_is_named_in_dependency_order_at_the_first_step() -> None:
    text = job_text(STEP.format(name="S", depends_on="T") + STEP.format(name="T", depends_on="S"))
    error = template_error(text)
    assert str(error) == "line 4 (steps[0]): Step dependencies form a cycle: S -> T -> S"
    assert (error.line, error.field_path) == (4, "steps[0]")
    assert text.splitlines()[error.line - 1] == "- name: S"


def test_longer_cycle_starts_at_the_first_step_in_the_template() -> None:
    setup = "- name: Setup\n  script:\n    actions:\n      onRun:\n        command: echo\n"
    text = job_text(
        setup
        + STEP.format(name="B", depends_on="C")
        + STEP.format(name="A", depends_on="B")
        + STEP.format(name="C", depends_on="A")
    )
    error = template_error(text)
    # B depends on C, C on A, A on B.
    assert error.problems[0].message == "Step dependencies form a cycle: B -> C -> A -> B"
    assert error.field_path == "steps[1]"
    assert text.splitlines()[(error.line or 0) - 1] == "- name: B"


def test_cycle_in_a_file_and_in_a_dict(tmp_path: Path) -> None:
    text = job_text(STEP.format(name="S", depends_on="T") + STEP.format(name="T", depends_on="S"))
    path = tmp_path / "cycle.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=r"^cycle\.yaml, line 4 \(steps\[0\]\): Step depend"):
        Template.load(path)
    with pytest.raises(TemplateError) as caught:
        Template.from_dict(yaml.safe_load(text))
    assert (caught.value.line, caught.value.field_path) == (None, "steps[0]")
    assert "S -> T -> S" in str(caught.value)


# ---- 12: YAML syntax errors keep both marks, unknown fields get a suggestion ------------------


def test_unclosed_bracket_on_the_last_line_keeps_both_marks_and_quotes_the_line() -> None:
    text = (
        "specificationVersion: jobtemplate-2023-09\nname: X\nsteps: []\n"
        "extensions: [TASK_CHUNKING\n"
    )
    error = template_error(text)
    assert (error.line, error.column) == (4, 13)  # where the "[" is, not past the last line
    lines = str(error).splitlines()
    assert lines[0] == (
        "line 4, column 13: YAML syntax error: while parsing a flow sequence started here"
    )
    assert lines[1].strip() == "extensions: [TASK_CHUNKING"
    assert lines[2].index("^") == lines[1].index("[")
    assert lines[3].startswith("line 5, column 1: expected ',' or ']'")
    assert "end of the text" in lines[3]
    detail = error.problems[0].detail
    assert detail is not None and (detail.line, detail.column) == (5, 1)


def test_syntax_error_in_the_middle_quotes_both_lines_with_carets() -> None:
    text = "specificationVersion: jobtemplate-2023-09\nname: [a, b\nsteps: []\n"
    error = template_error(text)
    assert (error.line, error.column) == (2, 7)
    rendered = str(error)
    assert "    name: [a, b\n          ^" in rendered
    assert "line 3, column 6: expected ',' or ']', but got ':'\n    steps: []\n         ^" in (
        rendered
    )


def test_syntax_error_without_context_keeps_its_single_mark() -> None:
    error = template_error("name: a\n  bad: indent\n")
    assert (error.line, error.column) == (2, 6)
    assert error.problems[0].excerpt == "  bad: indent\n     ^"
    assert error.problems[0].detail is None


def test_unknown_field_suggests_the_closest_name_from_the_model() -> None:
    error = template_error(SIMPLE.replace("args:", "argz:"))
    assert error.field_path == "steps[0].script.actions.onRun.argz"
    assert error.line == 9
    assert error.problems[0].message == "Unknown field `argz`: did you mean `args`?"


def test_unknown_field_inside_a_union_member_and_with_no_close_name() -> None:
    text = SIMPLE.replace(
        "steps:", "parameterDefinitions:\n- name: N\n  type: INT\n  defualt: 3\nsteps:"
    ).replace("args: [hello]", "args: [hello]\n        zzzzzz: 1")
    error = template_error(text)
    messages = {p.field_path: p.message for p in error.problems}
    assert messages["parameterDefinitions[0].defualt"] == (
        "Unknown field `defualt`: did you mean `default`?"
    )
    allowed = ", ".join(sorted(f.alias or n for n, f in Action.model_fields.items()))
    assert messages["steps[0].script.actions.onRun.zzzzzz"] == (
        f"Unknown field `zzzzzz`; the fields allowed here are: {allowed}."
    )


def test_first_line_numbers_every_error_from_it() -> None:
    assert template_error(SIMPLE.replace("args:", "argz:"), first_line=2).line == 10
    assert template_error("a: [1\n", first_line=2).line == 2
    assert template_error('{\n  "name": [,]\n}', first_line=2).line == 3


def test_first_line_also_numbers_errors_found_when_creating_the_job() -> None:
    text = (
        "specificationVersion: jobtemplate-2023-09\nname: X\n"
        "parameterDefinitions:\n- name: P\n  type: PATH\n  default: /abs\n"
        "steps:\n- name: S\n  script:\n    actions:\n      onRun:\n        command: echo\n"
    )
    template = Template.from_text(text, first_line=2)
    with pytest.raises(TemplateError) as caught:
        template.export_bundle(Path("/nonexistent/never-written"))
    assert (caught.value.line, caught.value.field_path) == (7, "parameterDefinitions[0].default")


# ---- 13: special and oversized files ----------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_template_load_refuses_a_device_at_once(device: str) -> None:
    outcome = isolated("Template.load(path)", device)
    assert outcome["error"] == "TemplateError"
    assert f"Cannot read template {device}: it is a character device" in outcome["message"]
    assert outcome["seconds"] < 1


def test_template_load_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "template.yaml"
    os.mkfifo(fifo)
    outcome = isolated("Template.load(path)", fifo, timeout=20)
    assert outcome["error"] == "TemplateError"
    assert "it is a FIFO (named pipe); only a regular file can be read" in outcome["message"]


def test_a_fifo_swapped_in_after_the_check_cannot_block(tmp_path: Path) -> None:
    fifo = tmp_path / "rules.yaml"
    os.mkfifo(fifo)
    # stat reports a regular file (as it would have just before the swap); open and fstat see
    # the FIFO.
    call = (
        "import os, stat\n"
        "from openjd_notebook.jobs import input_files\n"
        "real = os.stat(sys.executable)\n"
        "input_files.os.stat = lambda p: real\n"
        "input_files.read_text_file(path)\n"
    )
    outcome = isolated(call, fifo, timeout=20)
    assert outcome["error"] == "InputFileError"
    assert "FIFO" in outcome["message"]


def test_path_mapping_rules_refuse_devices_and_fifos(tmp_path: Path) -> None:
    fifo = tmp_path / "rules.json"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo, f"file://{fifo}"):
        outcome = isolated("load_path_mapping_rules(path)", path, timeout=20)
        assert outcome["error"] == "PathMappingError", outcome
        assert "only a regular file can be read" in outcome["message"]


def test_a_directory_named_as_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PathMappingError, match="it is a directory"):
        load_path_mapping_rules(tmp_path)


def test_size_is_capped_with_the_size_and_the_limit_in_the_error(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(17 * 1024 * 1024)  # sparse: no disk used
    with pytest.raises(TemplateError) as caught:
        Template.load(big)
    assert "it is 17,825,792 bytes, over the limit of 16 MiB (16,777,216 bytes)" in str(
        caught.value
    )


def test_non_utf8_template_names_the_file_and_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(SIMPLE.replace("hello", "caf\xe9").encode("latin-1"))
    with pytest.raises(TemplateError) as caught:
        Template.load(path)
    offset = SIMPLE.index("hello") + 3
    assert f"Cannot read template {path}: it is not UTF-8 text; byte offset {offset}" in str(
        caught.value
    )
    assert "(line 9, column 19) holds e9" in str(caught.value)


def test_bundle_parameter_values_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(SIMPLE, encoding="utf-8")
    (tmp_path / "parameter_values.yaml").write_bytes(b"parameterValues: [\xff]\n")
    with pytest.raises(TemplateError, match=r"parameter values file .* is not UTF-8 text"):
        Template.load(tmp_path)


def test_reader_keeps_text_mode_newlines(tmp_path: Path) -> None:
    path = tmp_path / "crlf.yaml"
    path.write_bytes(SIMPLE.replace("\n", "\r\n").encode())
    assert Template.load(path).text == SIMPLE


# ---- 14: alias bombs --------------------------------------------------------------------------


def test_billion_laughs_template_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS, encoding="utf-8")
    assert len(BILLION_LAUGHS.encode()) < 600
    outcome = isolated("Template.load(path)", path)
    assert outcome["error"] == "TemplateError"
    assert outcome["seconds"] < 0.5
    message = outcome["message"]
    assert message.startswith("bomb.yaml, line 10, column 4: YAML refused: aliases expand")
    assert "over the limit of 100,000" in message and "billion laughs" in message


def test_billion_laughs_from_text_fails_fast_in_process() -> None:
    start = time.perf_counter()
    error = template_error(BILLION_LAUGHS)
    assert time.perf_counter() - start < 0.5
    assert error.line == 10


def test_a_few_anchors_and_aliases_still_load() -> None:
    text = textwrap.dedent(
        """\
        specificationVersion: jobtemplate-2023-09
        name: Anchored
        steps:
        - name: A
          script: &script
            actions:
              onRun:
                command: echo
                args: &args ["a", "b"]
        - name: B
          script: *script
        - name: C
          script:
            actions:
              onRun:
                command: echo
                args: *args
        """
    )
    template = Template.from_text(text)
    assert template.steps == ["A", "B", "C"]


def test_recursive_alias_is_refused() -> None:
    error = template_error("specificationVersion: jobtemplate-2023-09\nname: &n [*n]\n")
    assert "an alias refers to a node that contains it" in str(error)
    assert error.line == 2


def test_alias_bomb_in_path_mapping_rules_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(PARAMETER_BOMB, encoding="utf-8")
    outcome = isolated("load_path_mapping_rules(path)", path)
    assert outcome["error"] == "PathMappingError"
    assert outcome["seconds"] < 0.5
    assert "billion laughs" in outcome["message"]


def test_alias_bomb_parameter_file_through_read_document(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMETER_BOMB, encoding="utf-8")
    assert len(PARAMETER_BOMB.encode()) < 450
    call = "from openjd_notebook.jobs.input_files import read_document\nread_document(path)\n"
    outcome = isolated(call, path)
    assert outcome["error"] == "InputFileError"
    assert outcome["seconds"] < 0.5
    assert outcome["message"].startswith(f"file {path}: line 8, column 4: YAML refused")


def test_deeply_nested_json_is_a_template_error() -> None:
    error = template_error("[" * 100_000 + "]" * 100_000, format="json")
    assert str(error) == "The JSON text nests too deeply to read."


# ---- 17: values that are not text, empty path mapping destinations ----------------------------


PATH_JOB = f"""\
specificationVersion: jobtemplate-2023-09
extensions: [EXPR]
name: Paths
parameterDefinitions:
- name: Scene
  type: PATH
- name: Inputs
  type: LIST[PATH]
  default: []
steps:
- name: S
  script:
    actions:
      onRun:
        command: {sys.executable}
        args: ["-c", "print('{{{{Param.Scene}}}}')"]
"""


@pytest.fixture
def undecodable_name(tmp_path: Path) -> Path:
    """A file whose name is not UTF-8, as os.listdir returns it (with U+DCE9 for 0xE9)."""
    try:
        (tmp_path / os.fsdecode(b"caf\xe9.exr")).write_bytes(b"")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system only takes UTF-8 names")
    (name,) = os.listdir(tmp_path)
    assert name == "caf\udce9.exr"
    return tmp_path / name


def test_path_value_that_is_not_utf8_is_a_parameter_error(
    undecodable_name: Path, tmp_path: Path
) -> None:
    template = Template.from_text(PATH_JOB)
    for value in (str(undecodable_name), undecodable_name):
        with pytest.raises(ParameterError) as caught:
            template.instantiate({"Scene": value})
        message = str(caught.value)
        assert message.startswith(f"Job parameter Scene: the value {str(undecodable_name)!r}")
        assert "\\udce9" in message and "byte 0xe9" in message
        assert "must be encodable as UTF-8 to reach the job" in message
    with pytest.raises(ParameterError, match="Job parameter Inputs"):
        template.instantiate({"Scene": "/ok", "Inputs": ["/ok", undecodable_name]})
    with pytest.raises(ParameterError, match="Job parameter Scene"):
        run_job(template, {"Scene": undecodable_name}, session_root=tmp_path)


def test_empty_destination_is_accepted_by_the_engine_as_by_openjd_sessions() -> None:
    from openjd.sessions import PathMappingRule as ReferenceRule

    from openjd_notebook.sessions import PathMappingRule

    rule = {"source_path_format": "POSIX", "source_path": "/mnt", "destination_path": ""}
    assert str(ReferenceRule.from_dict(rule).destination_path) == "."
    assert str(PathMappingRule.from_dict(rule).destination_path) == "."


@pytest.mark.parametrize("destination", ["", "   "])
def test_empty_destination_path_is_refused_naming_the_rule(
    tmp_path: Path, destination: str
) -> None:
    good = {"source_path_format": "POSIX", "source_path": "/a", "destination_path": "/b"}
    bad = {"source_path_format": "POSIX", "source_path": "/mnt", "destination_path": destination}
    with pytest.raises(PathMappingError) as caught:
        load_path_mapping_rules([good, bad])
    assert str(caught.value).startswith("path_mapping_rules[1]: destination_path is empty")
    assert "'/mnt'" in str(caught.value)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"version": "pathmapping-1.0", "path_mapping_rules": [bad]}))
    with pytest.raises(PathMappingError, match=r"rules\.json\.path_mapping_rules\[0\]: dest"):
        load_path_mapping_rules(path)


def test_a_whole_template_error_the_model_cannot_word_is_still_a_template_error() -> None:
    """openjd-model 0.14 raises IndexError for any error without a field location."""
    from openjd_notebook.jobs._template_text import model_failure

    class Whole(pydantic.BaseModel):
        value: int

        @pydantic.model_validator(mode="after")
        def _refuse(self) -> Self:
            raise ValueError("the whole thing is wrong")

    with pytest.raises(IndexError) as caught:
        try:
            Whole(value=1)
        except pydantic.ValidationError as exc:
            exc.errors()[0]["loc"][-1]  # what the model's formatter does with loc == ()
    error = model_failure(caught.value, None, lead="Creating the job failed: ")
    assert str(error) == "Creating the job failed: the whole thing is wrong"
    assert model_failure(IndexError("bare"), None).problems[0].message == (
        "openjd-model failed without saying why (IndexError: bare)."
    )
