"""``%%openjd_template`` in a real kernel: error lines count the cell as shown (magic = line 1)."""

from __future__ import annotations

import textwrap

from kernel_harness import KernelHarness

CELL = textwrap.dedent(
    """\
    %%openjd_template job
    specificationVersion: jobtemplate-2023-09
    name: Lines
    steps:
    - name: Only
      script:
        actions:
          onRun:
            command: echo
            args: [hello]
    """
)


def shown_line(cell: str, text: str) -> int:
    """The 1-based line of ``text`` in the cell as the notebook shows it."""
    return next(number for number, line in enumerate(cell.splitlines(), 1) if text in line)


def test_model_error_line_is_the_cell_line(kernel: KernelHarness) -> None:
    cell = CELL.replace("args:", "argz:")
    execution = kernel.execute(cell)
    assert execution.error_name == "TemplateError"
    line = shown_line(cell, "argz:")
    assert line == 10
    (message,) = execution.of_type("error")[0]["content"]["traceback"]
    assert message == (
        f"TemplateError: line {line} (steps[0] -> script -> actions -> onRun -> argz): "
        "Unknown field `argz`: did you mean `args`?"
    )


def test_yaml_syntax_error_lines_are_the_cell_lines(kernel: KernelHarness) -> None:
    cell = CELL.replace("args: [hello]", "args: [hello")
    execution = kernel.execute(cell)
    assert execution.error_name == "TemplateError"
    traceback = execution.of_type("error")[0]["content"]["traceback"]
    line = shown_line(cell, "args: [hello")
    column = cell.splitlines()[line - 1].index("[") + 1
    assert traceback[0] == (
        f"TemplateError: line {line}, column {column}: YAML syntax error: while parsing a flow "
        "sequence started here"
    )
    assert traceback[1].strip() == "args: [hello"
    assert traceback[2].index("^") == traceback[1].index("[")
    assert traceback[3].startswith(f"line {line + 1}, column 1: expected ',' or ']'")


def test_later_errors_of_the_bound_template_use_the_cell_lines_too(
    kernel: KernelHarness,
) -> None:
    cell = CELL.replace(
        "steps:",
        "parameterDefinitions:\n- name: Frames\n  type: STRING\n  default: 1-3\nsteps:",
    ).replace(
        "  script:",
        "  parameterSpace:\n    taskParameterDefinitions:\n    - name: F\n      type: INT\n"
        '      range: "{{Param.Frames}}"\n  script:',
    )
    assert kernel.execute(cell).status == "ok"
    # A value that breaks the range built from it blames the parameter, at the cell's line.
    execution = kernel.execute("job.instantiate({'Frames': 'abc'})")
    assert execution.error_name == "ParameterError"
    traceback = execution.of_type("error")[0]["content"]["traceback"]
    assert traceback[0].startswith("ParameterError: Job parameter Frames = 'abc' does not fit")
    assert f"(line {shown_line(cell, 'range:')}: steps[0].parameterSpace" in traceback[0]
