"""PATH and LIST[PATH] job parameters (template schema 2.2, 2.12), through real runs.

A relative submitted value is joined with the current directory and lexically normalized, one
element at a time for LIST[PATH]. A LIST[PATH] default is joined with the template's directory,
must stay inside it, and meets ``item.allowedValues`` after the join. openjd-model leaves
LIST[PATH] alone and does not normalize submitted values, so ``openjd run`` differs here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import PYTHON
from openjd_notebook import Template, run_job
from openjd_notebook.cli import main
from openjd_notebook.jobs.errors import ParameterError

# Prints ARGS, then each argument on its own line.
PRINT_ARGS = "import sys; print('ARGS'); print('\\n'.join(sys.argv[1:]))"


def job_text(definitions: list[dict[str, Any]], *args: str, expr: bool = True) -> str:
    action = {"command": PYTHON, "args": ["-c", PRINT_ARGS, *args]}
    document: dict[str, Any] = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Paths",
        "parameterDefinitions": definitions,
        "steps": [{"name": "Show", "script": {"actions": {"onRun": action}}}],
    }
    if expr:
        document["extensions"] = ["EXPR"]
    return str(yaml.safe_dump(document, sort_keys=False))


def save(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def printed(result: Any) -> list[str]:
    """The arguments the single task printed: the lines after ARGS, before the exit line."""
    assert result.ok, result.error
    lines = result.log("Show", 0).splitlines()
    after = lines[lines.index("ARGS") + 1 :]
    return [line for line in after if not line.startswith("Process pid ")]


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory apart from the template's, so the two joins can be told apart."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "sessions").mkdir()
    return {"runs_root": tmp_path / "runs", "session_root": tmp_path / "sessions"}


# ---- submitted values ----------------------------------------------------------------------


def test_relative_path_values_are_joined_with_the_cwd_and_normalized(
    tmp_path: Path, cwd: Path, roots: dict[str, Path]
) -> None:
    names = ("Cwd", "Dot", "Interior", "Up", "Absolute")
    definitions = [{"name": name, "type": "PATH"} for name in names]
    template = Template.from_text(
        job_text(definitions, *(f"{{{{Param.{name}}}}}" for name in names), expr=False)
    )
    values = {
        "Cwd": ".",
        "Dot": "./b.exr",
        "Interior": "sub/../other",
        "Up": "../x",
        "Absolute": "/data/./a/../s.ma",
    }

    result = run_job(template, values, **roots)

    assert printed(result) == [
        str(cwd),
        str(cwd / "b.exr"),
        str(cwd / "other"),
        str(tmp_path / "x"),
        "/data/./a/../s.ma",  # an absolute value is used as given
    ]


def test_list_path_values_are_joined_element_by_element(cwd: Path, roots: dict[str, Path]) -> None:
    definitions = [{"name": "Paths", "type": "LIST[PATH]"}, {"name": "One", "type": "PATH"}]
    template = Template.from_text(
        job_text(definitions, "{{ RawParam.Paths }}", "{{ Param.Paths[0] == Param.One }}")
    )
    elements = ["rel/a.exr", "./b.exr", "sub/../c", "/abs/d.exr", r"C:\w\e.exr", "s3://bkt/f"]

    result = run_job(template, {"Paths": elements, "One": "rel/a.exr"}, **roots)

    assert printed(result) == [
        str(cwd / "rel" / "a.exr"),
        str(cwd / "b.exr"),
        str(cwd / "c"),
        "/abs/d.exr",
        r"C:\w\e.exr",  # another OS's absolute path stays mappable
        "s3://bkt/f",  # a URI under EXPR (RFC 0006)
        "true",
    ]


@pytest.mark.parametrize("expr", [True, False])
def test_a_uri_path_value_is_kept_under_expr_and_joined_without(cwd: Path, expr: bool) -> None:
    template = Template.from_text(job_text([{"name": "One", "type": "PATH"}], expr=expr))

    value = template.instantiate({"One": "s3://bucket/key"}).parameter_values["One"].value

    # Without EXPR a URI is no path type of its own: it is a relative file path (base 2.2).
    assert value == ("s3://bucket/key" if expr else str(cwd / "s3:" / "bucket" / "key"))


# ---- LIST[PATH] defaults -------------------------------------------------------------------


def test_list_path_defaults_are_joined_with_the_template_directory(
    tmp_path: Path, cwd: Path, roots: dict[str, Path]
) -> None:
    defaults = ["./output", "sub/dir", "sub/../other", "a/..", "..name/name../...", "s3://b/k"]
    definitions = [{"name": "Paths", "type": "LIST[PATH]", "default": defaults}]
    template_dir = tmp_path / "bundle"
    template = Template.load(save(template_dir, job_text(definitions, "{{ RawParam.Paths }}")))

    result = run_job(template, {}, **roots)

    assert printed(result) == [
        str(template_dir / "output"),
        str(template_dir / "sub" / "dir"),
        str(template_dir / "other"),
        str(template_dir),
        str(template_dir / "..name" / "name.." / "..."),
        "s3://b/k",
    ]


@pytest.mark.parametrize(
    ("element", "reason"),
    [
        ("/tmp/b.exr", "is an absolute path"),
        (r"D:\renders\b.exr", "is an absolute path"),
        ("../outside/b.exr", "walks out of the template directory"),
        ("a/../../b", "walks out of the template directory"),
        ("a/../..", "walks out of the template directory"),
        ("..", "walks out of the template directory"),
    ],
)
def test_a_list_path_default_must_be_relative_and_inside_the_template_directory(
    tmp_path: Path, element: str, reason: str
) -> None:
    definitions = [{"name": "Paths", "type": "LIST[PATH]", "default": ["inside/a", element]}]
    template = Template.load(save(tmp_path / "t", job_text(definitions)))

    with pytest.raises(ParameterError) as caught:
        template.instantiate()

    message = str(caught.value)
    assert message.startswith(
        f"The default of LIST[PATH] parameter Paths: item 1 ({element!r}) {reason}; "
    )
    assert str(tmp_path / "t") in message


def test_a_refused_default_is_not_checked_when_a_value_is_given(cwd: Path) -> None:
    definitions = [{"name": "Paths", "type": "LIST[PATH]", "default": ["../outside"]}]
    template = Template.from_text(job_text(definitions))

    instance = template.instantiate({"Paths": ["mine"]})

    assert instance.parameter_values["Paths"].value == [str(cwd / "mine")]


def test_list_path_default_items_meet_allowed_values_after_the_join(tmp_path: Path) -> None:
    template_dir = tmp_path / "t"
    joined = str(template_dir / "assets" / "a.blend")

    def scenes(allowed: list[str]) -> Template:
        definition = {
            "name": "Scenes",
            "type": "LIST[PATH]",
            "default": ["assets/a.blend"],
            "item": {"allowedValues": allowed},
        }
        return Template.load(save(template_dir, job_text([definition])))

    with pytest.raises(ParameterError) as caught:
        scenes(["assets/a.blend"]).instantiate()
    assert f"Parameter Scenes: item {joined!r} is not in item.allowedValues" in str(caught.value)

    # The template check wants the default as written among the allowed values, too.
    allowed = ["assets/a.blend", joined]
    assert scenes(allowed).instantiate().parameter_values["Scenes"].value == [joined]


def test_export_bundle_writes_list_path_values_joined_with_the_cwd(
    tmp_path: Path, cwd: Path
) -> None:
    definitions = [{"name": "Paths", "type": "LIST[PATH]"}, {"name": "One", "type": "PATH"}]
    template = Template.from_text(job_text(definitions))

    bundle = template.export_bundle(tmp_path / "b", {"Paths": ["x/../a", "/abs"], "One": "./o"})

    document = yaml.safe_load((bundle / "parameter_values.yaml").read_text(encoding="utf-8"))
    values = {entry["name"]: entry["value"] for entry in document["parameterValues"]}
    assert values == {"Paths": f'["{cwd / "a"}", "/abs"]', "One": str(cwd / "o")}


# ---- the command line ----------------------------------------------------------------------


def test_cli_joins_values_with_its_cwd(
    tmp_path: Path, cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definitions = [{"name": "Paths", "type": "LIST[PATH]"}, {"name": "One", "type": "PATH"}]
    template = save(tmp_path / "t", job_text(definitions, "{{ Param.Paths }}", "{{Param.One}}"))
    argv = ["run", str(template), "-p", 'Paths=["a/../b", "./c"]', "-p", "One=d/."]

    code = main([*argv, "--runs-root", str(tmp_path / "runs")])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    start = lines.index("ARGS") + 1
    assert lines[start : start + 3] == [str(cwd / "b"), str(cwd / "c"), str(cwd / "d")]


def test_cli_refuses_a_list_path_default_outside_the_template_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definitions = [{"name": "Paths", "type": "LIST[PATH]", "default": ["a", "../b"]}]
    template = save(tmp_path / "t", job_text(definitions))

    code = main(["run", str(template), "--runs-root", str(tmp_path / "runs")])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(
        "openjd-notebook: error: The default of LIST[PATH] parameter Paths: item 1 ('../b') "
        "walks out of the template directory;"
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert os.path.isdir(tmp_path / "t")
