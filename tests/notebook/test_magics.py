"""The magics in an in-process IPython shell: parsing and effects on the user namespace."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from openjd_notebook import JobResult, Template, TemplateError

TEMPLATE = textwrap.dedent(
    f"""\
    specificationVersion: jobtemplate-2023-09
    name: Echo
    parameterDefinitions:
    - name: Word
      type: STRING
      default: hi
    steps:
    - name: Say
      parameterSpace:
        taskParameterDefinitions:
        - name: N
          type: INT
          range: "1-2"
      script:
        actions:
          onRun:
            command: {sys.executable}
            args: ["-c", "print('{{{{Param.Word}}}} {{{{Task.Param.N}}}}')"]
    """
)


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openjd_notebook")
    ip.run_line_magic("openjd_config", f"runs_root={tmp_path / 'runs'}")
    yield ip
    ip.run_line_magic("unload_ext", "openjd_notebook")
    ip.user_ns.pop("job_template", None)


def test_template_cell_binds_a_template(shell: InteractiveShell) -> None:
    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    assert isinstance(shell.user_ns["echo"], Template)
    shell.run_cell_magic("openjd_template", "", TEMPLATE)
    assert shell.user_ns["job_template"].name == "Echo"


def test_invalid_template_raises_with_the_line_and_keeps_the_old_value(
    shell: InteractiveShell,
) -> None:
    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    broken = TEMPLATE.replace("type: INT", "type: INTEGER")
    with pytest.raises(TemplateError, match="line"):
        shell.run_cell_magic("openjd_template", "echo", broken)
    assert shell.user_ns["echo"].name == "Echo"


def test_run_returns_a_result_and_binds_out(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    returned = shell.run_line_magic("openjd_run", "echo -p Word={{kept}} --out saved")
    assert returned is None  # bound to --out instead, so the cell shows the summary once
    result = shell.user_ns["saved"]
    assert isinstance(result, JobResult) and result.ok
    assert "{{kept}} 2" in result.log("Say", 1)
    assert "{{kept}} 1" in capsys.readouterr().out  # the console view printed the output


def test_params_from_a_namespace_dict_and_selection(shell: InteractiveShell) -> None:
    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    shell.user_ns["values"] = {"Word": "dict"}
    result = shell.run_line_magic("openjd_run", "echo --params values --tasks N=2 --quiet")
    assert list(result.tasks["N"]) == [2]
    assert "dict 2" in result.log("Say", 1)


def test_quoted_values_lose_their_quotes(shell: InteractiveShell) -> None:
    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    result = shell.run_line_magic("openjd_run", "echo -p \"Word=two words\" --tasks 'N=1' --quiet")
    assert list(result.tasks["N"]) == [1]
    assert "two words 1" in result.output("Say", 0)


def test_template_from_a_file(shell: InteractiveShell, tmp_path: Path) -> None:
    (tmp_path / "echo.yaml").write_text(TEMPLATE)
    result = shell.run_line_magic("openjd_run", f"{tmp_path / 'echo.yaml'} --quiet")
    assert result.ok


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("nothing_here", "No template named 'nothing_here'"),
        ("echo -p Word", "expected NAME=VALUE"),
        ("echo --params missing", "no variable named 'missing'"),
        ("echo --out 1bad", "not a valid variable name"),
        ("echo --bogus", "unrecognized arguments"),
    ],
)
def test_bad_lines_are_usage_errors(shell: InteractiveShell, line: str, message: str) -> None:
    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("openjd_run", line)


def test_unknown_parameter_is_a_real_error_listing_expectations(shell: InteractiveShell) -> None:
    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    with pytest.raises(ValueError, match="Word"):
        shell.run_line_magic("openjd_run", "echo -p Nope=1")


def test_config_shows_and_sets_defaults(shell: InteractiveShell) -> None:
    shown: Any = shell.run_line_magic("openjd_config", "cancel_grace=3 workers=2")
    assert shown["cancel_grace"] == 3.0 and shown["workers"] == 2
    with pytest.raises(UsageError, match="unknown setting"):
        shell.run_line_magic("openjd_config", "speed=11")


def test_runs_lists_records(shell: InteractiveShell) -> None:
    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    shell.run_line_magic("openjd_run", "echo --quiet")
    listed = shell.run_line_magic("openjd_runs", "")
    assert list(listed["job_name"]) == ["Echo"]
    shell.run_line_magic("openjd_run", "echo --quiet")
    assert len(shell.run_line_magic("openjd_runs", "--last 1")) == 1
    assert len(shell.run_line_magic("openjd_runs", "--job Nope")) == 0


def test_wait_and_cancel_without_a_run(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="No run has been started"):
        shell.run_line_magic("openjd_cancel", "")


SLOW = TEMPLATE.replace(
    "print('{{{{Param.Word}}}} {{{{Task.Param.N}}}}')", "import time; time.sleep(30)"
).replace('range: "1-2"', 'range: "1-3"')


def test_runs_show_times_to_the_second_canceled_apart_and_the_digest_on_hover(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    from openjd_notebook import start_job

    shell.run_cell_magic("openjd_template", "echo", TEMPLATE)
    shell.run_line_magic("openjd_run", "echo --quiet")
    slow = Template.from_text(SLOW.replace("{{{{", "{{").replace("}}}}", "}}"))
    run = start_job(slow, runs_root=tmp_path / "runs")
    run.wait_for_task(state="running", timeout=30)
    run.cancel(force=True)
    run.wait()

    listed = shell.run_line_magic("openjd_runs", "")
    assert list(listed.frame["state"]) == ["canceled", "success"]
    assert list(listed.frame["canceled"]) == [1, 0] and list(listed.frame["failed"]) == [0, 0]
    text = str(listed)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", text)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", text)  # no microseconds
    assert "canceled" in text.splitlines()[0]
    digest = listed.frame["template_digest"][0]
    page = listed._repr_html_()
    assert f"title='{digest}'" in page and f"<code>{digest[:12]}</code>" in page
    assert "href='runs/" in page  # the record, relative to the notebook


def test_stopped_says_what_was_canceled_in_one_line() -> None:
    from datetime import datetime, timezone

    from openjd_notebook.jobs.outcomes import TaskOutcome
    from openjd_notebook.notebook.magics import stopped

    result = JobResult(
        job_name="J",
        state="canceled",
        started=datetime.now(timezone.utc),
        ended=datetime.now(timezone.utc),
        tasks=[TaskOutcome("R", i, state="canceled") for i in range(2)],
        environments=[],
        parameter_columns={"R": []},
        run_dir=None,
        not_run={"R": 182},
    )
    error = stopped(result, "r")
    assert isinstance(error, KeyboardInterrupt)
    assert str(error) == "stopped: 2 tasks canceled, 182 not run; result in `r`"
    assert error._render_traceback_() == [f"KeyboardInterrupt: {error}"]  # type: ignore[attr-defined]


def test_settings_show_their_values_defaults_and_help(shell: InteractiveShell) -> None:
    shown: Any = shell.run_line_magic("openjd_config", "workers=3 hide_protocol_lines=True")
    text = "\n".join(shown.lines())
    assert re.search(r"workers = 3 +Tasks %openjd_run runs at once.*\(default 1\)", text)
    assert "hide_protocol_lines = True" in text and "<td" in shown._repr_html_()
    with pytest.raises(UsageError, match="cancel_grace=-1: should not be less than 0"):
        shell.run_line_magic("openjd_config", "cancel_grace=-1")
