"""What a cell shows, in a real kernel: one summary per run, a one-line stop, no widget left,
a --no-block run observed without races, help, tab completion, option checks and --raise."""

from __future__ import annotations

import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from kernel_harness import Execution, KernelHarness

WIDGET = "application/vnd.jupyter.widget-view+json"


def frames_cell(name: str = "job", code: str = "print('frame', {{Task.Param.Frame}})") -> str:
    return textwrap.dedent(
        f"""\
        %%openjd_template {name}
        specificationVersion: jobtemplate-2023-09
        name: Frames
        parameterDefinitions:
        - name: Greeting
          type: STRING
          default: hello
        steps:
        - name: Render
          parameterSpace:
            taskParameterDefinitions:
            - name: Frame
              type: INT
              range: "1-3"
          script:
            actions:
              onRun:
                command: {sys.executable}
                args: ["-c", "{code}"]
        - name: Encode
          dependencies:
          - dependsOn: Render
          script:
            actions:
              onRun:
                command: {sys.executable}
                args: ["-c", "print('encoded')"]
        """
    )


def long_cell(marker: Path) -> str:
    """A task that writes its pid, then sleeps; a SIGTERM ends it at once."""
    code = f"import os, pathlib, time; pathlib.Path(r'{marker}').write_text(str(os.getpid())); time.sleep(60)"
    return textwrap.dedent(
        f"""\
        %%openjd_template long
        specificationVersion: jobtemplate-2023-09
        name: Long
        steps:
        - name: Wait
          parameterSpace:
            taskParameterDefinitions:
            - name: Frame
              type: INT
              range: "1-3"
          script:
            actions:
              onRun:
                command: {sys.executable}
                args: ["-c", "{code}"]
        """
    )


def wait_for(path: Path, timeout: float = 30) -> None:
    give_up = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < give_up, f"{path} never appeared"
        time.sleep(0.05)


def shell_reply(kernel: KernelHarness, msg_id: str) -> dict[str, Any]:
    reply = kernel.client.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kernel.client.get_shell_msg(timeout=30)
    content: dict[str, Any] = reply["content"]
    return content


def completions(kernel: KernelHarness, code: str) -> list[str]:
    content = shell_reply(kernel, kernel.client.complete(code, len(code)))
    matches: list[str] = content["matches"]
    return matches


def help_text(kernel: KernelHarness, code: str) -> str:
    content = shell_reply(kernel, kernel.client.inspect(code, len(code), detail_level=0))
    text = content["data"]["text/plain"]
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # no colours


def summaries(execution: Execution) -> list[dict[str, Any]]:
    """The run summaries a cell shows: displays and updates without a widget."""
    bundles = [
        m["content"]["data"] for m in execution.of_type("display_data", "update_display_data")
    ]
    return [b for b in bundles if WIDGET not in b and "openjd-job-result" in b.get("text/html", "")]


def test_a_run_shows_its_summary_once_and_still_returns_the_result(kernel: KernelHarness) -> None:
    assert kernel.execute(frames_cell()).status == "ok"
    for line in ("%openjd_run job", "%openjd_run job --quiet"):
        execution = kernel.collect(kernel.submit(line), settle=0.5)
        assert execution.status == "ok", execution.text()
        assert len(summaries(execution)) == 1, line
        # The summary is the display: no second copy of the result as Out[].
        assert execution.of_type("execute_result") == [], line
        check = kernel.execute("print(type(_).__name__, _.state, len(_.tasks))")
        assert "JobResult success 4" in check.text()
    # In a later cell the result displays as usual.
    later = kernel.execute("_")
    (shown,) = later.of_type("execute_result")
    assert "Frames: success" in shown["content"]["data"]["text/plain"]
    assert "openjd-job-result" in shown["content"]["data"]["text/html"]
    assigned = kernel.execute("r = %openjd_run job --quiet\nprint(r.ok)")
    assert "True" in assigned.text() and len(summaries(assigned)) == 1


def test_the_summary_shows_the_record_relative_to_the_notebook(
    kernel: KernelHarness, tmp_path: Path
) -> None:
    assert kernel.execute(frames_cell()).status == "ok"
    execution = kernel.collect(kernel.submit("%openjd_run job --quiet"), settle=0.5)
    (summary,) = summaries(execution)
    assert str(tmp_path) not in summary["text/html"] + summary["text/plain"]
    assert "record openjd-runs/" in summary["text/plain"]
    assert re.search(r"<a href='openjd-runs/[^']+'", summary["text/html"])


def test_the_stop_button_ends_the_cell_with_one_line(kernel: KernelHarness, tmp_path: Path) -> None:
    assert kernel.execute(long_cell(tmp_path / "pid")).status == "ok"
    for out, where in (
        (" --out stopped", "result in `stopped`"),
        ("", "the result: `r = %openjd_wait`"),
    ):
        (tmp_path / "pid").unlink(missing_ok=True)
        msg_id = kernel.submit(f"%openjd_run long{out}")
        wait_for(tmp_path / "pid")
        kernel.interrupt()
        execution = kernel.collect(msg_id, timeout=60)
        assert execution.error_name == "KeyboardInterrupt"  # so Run All stops
        (error,) = execution.of_type("error")
        expected = f"KeyboardInterrupt: stopped: 1 task canceled, 2 not run; {where}"
        assert error["content"]["traceback"] == [expected]
    assert "canceled" in kernel.execute("print(stopped.state)").text()
    waited = kernel.execute("r = %openjd_wait\nprint(r.state)")
    assert "canceled" in waited.text()


def test_the_dashboard_closes_every_widget_when_the_run_ends(kernel: KernelHarness) -> None:
    slow = "import time; time.sleep(0.3); print('frame', {{Task.Param.Frame}})"
    assert kernel.execute(frames_cell(code=slow)).status == "ok"
    execution = kernel.collect(kernel.submit("%openjd_run job --out r"), settle=1.0)
    assert execution.status == "ok", execution.text()
    opened = {m["content"]["comm_id"] for m in execution.of_type("comm_open")}
    closed = {m["content"]["comm_id"] for m in execution.of_type("comm_close")}
    assert opened and closed == opened  # nothing left for a saved notebook to carry
    last = execution.of_type("comm_close", "update_display_data")[-1]
    assert last["msg_type"] == "comm_close"  # closed after the summary replaced them
    left = kernel.execute(
        "from ipywidgets.widgets.widget import _instances\nprint('widgets left:', len(_instances))"
    )
    assert "widgets left: 0" in left.text()


def test_a_no_block_run_can_be_watched_without_races(kernel: KernelHarness, tmp_path: Path) -> None:
    assert kernel.execute(long_cell(tmp_path / "pid")).status == "ok"
    cell = (
        "run = %openjd_run long --no-block --quiet\n"
        "task = run.wait_for_task(state='running', timeout=30)\n"
        "print('live:', task.step, task.task, task.state, list(run.tasks['state']))"
    )
    started = kernel.execute(cell)
    assert "live: Wait 0 running ['running']" in started.text(), started.text()
    assert kernel.execute("%openjd_cancel run").status == "ok"
    ended = kernel.execute(
        "task = run.wait_for_task(state='canceled', timeout=30)\nprint('now', task.state)"
    )
    assert "now canceled" in ended.text(), ended.text()


def test_help_documents_every_option_and_the_settings(kernel: KernelHarness) -> None:
    text = help_text(kernel, "%openjd_run")
    options = [
        "-p NAME=VALUE", "--params VAR", "--step NAME", "--no-dependencies", "--tasks SPEC",
        "--max-tasks N", "--workers N", "--cluster ADDRESS", "--nodes N", "--env TEMPLATE",
        "--path-mapping RULES", "--cancel-grace SEC", "--keep-workdir", "--out VAR",
        "--no-block", "--quiet", "--raise",
    ]  # fmt: skip
    for option in options:
        described = re.search(re.escape(option) + r"[^\n]*\n?\s+\S", text)
        assert described, f"{option} has no help:\n{text}"
    assert "%openjd_config cancel_grace" in text and "%%openjd_template" in text
    assert kernel.execute("%openjd_config workers=3").status == "ok"
    settings = help_text(kernel, "%openjd_config")
    assert re.search(r"workers = 3 +Tasks %openjd_run runs at once.*\(default 1\)", settings)
    assert "cancel_grace = 10.0" in settings and "raise_on_failure = False" in settings


def test_tab_completion_knows_templates_steps_parameters_and_options(
    kernel: KernelHarness, tmp_path: Path
) -> None:
    assert kernel.execute(frames_cell()).status == "ok"
    (tmp_path / "scene.yaml").write_text("not read until used")
    kernel.execute("values = {'Greeting': 'hi'}")
    assert "job" in completions(kernel, "%openjd_run j")
    assert "scene.yaml" in completions(kernel, "%openjd_run sc")
    assert completions(kernel, "%openjd_run job --step ") == ["Render", "Encode"]
    assert completions(kernel, "result = %openjd_run job -p Gr") == ["Greeting="]
    assert completions(kernel, "%openjd_run job --params v") == ["values"]
    assert "--max-tasks" in completions(kernel, "%openjd_run job --max")


def usage_error(execution: Execution) -> str:
    assert execution.error_name == "UsageError", execution.text()
    text = "".join(m["content"].get("text", "") for m in execution.of_type("stream"))
    assert "Traceback" not in text
    return text.strip()


def test_bad_option_values_are_one_line_usage_errors(kernel: KernelHarness) -> None:
    assert kernel.execute(frames_cell()).status == "ok"
    cases = {
        "%openjd_run job --workers -1": "argument --workers: must be at least 1, not -1",
        "%openjd_run job --workers 0": "argument --workers: must be at least 1, not 0",
        "%openjd_run job --cancel-grace -5": "argument --cancel-grace: must be 0 or more seconds",
        "%openjd_run job --max-tasks x": "argument --max-tasks: expected a whole number, got 'x'",
        "%openjd_config workers=0": "%openjd_config workers=0: should not be less than 1",
    }
    for line, message in cases.items():
        text = usage_error(kernel.execute(line))
        assert text.startswith("UsageError: ") and message in text, (line, text)
        assert len(text.splitlines()) == 1, text


def test_raise_makes_a_failed_run_fail_its_cell(kernel: KernelHarness) -> None:
    failing = "import sys; sys.exit(3 if {{Task.Param.Frame}} == 2 else 0)"
    assert kernel.execute(frames_cell("bad", failing)).status == "ok"
    assert kernel.execute("%openjd_run bad --quiet --out quiet_failure").status == "ok"
    raised = kernel.execute("%openjd_run bad --quiet --raise --out r")
    assert raised.error_name == "JobFailedError"
    (error,) = raised.of_type("error")
    assert (
        error["content"]["traceback"][0]
        == "JobFailedError: job 'Frames' failed: Render[1] failed: exit code 3"
    )
    assert len(summaries(raised)) == 1  # the summary still shows first
    assert "failed" in kernel.execute("print(r.state)").text()  # --out is bound
    assert kernel.execute("%openjd_config raise_on_failure=True").status == "ok"
    assert kernel.execute("%openjd_run bad --quiet").error_name == "JobFailedError"
