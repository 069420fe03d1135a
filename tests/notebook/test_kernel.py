"""The extension in a real kernel: interrupts, --no-block, the widget budget, shutdown."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from kernel_harness import KernelHarness

# A task that writes its pid, says it is ready, and handles SIGTERM by writing a marker.
GRACEFUL = (
    "import os, signal, sys, time, pathlib\\n"
    "def term(*_):\\n"
    "    pathlib.Path(r'{dir}/sigterm').write_text('yes')\\n"
    "    sys.exit(0)\\n"
    "signal.signal(signal.SIGTERM, term)\\n"
    "pathlib.Path(r'{dir}/pid').write_text(str(os.getpid()))\\n"
    "time.sleep(60)\\n"
)
STUBBORN = (
    "import os, signal, time, pathlib\\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "pathlib.Path(r'{dir}/pid').write_text(str(os.getpid()))\\n"
    "time.sleep(60)\\n"
)


def template_cell(task_code: str, marker_dir: Path, notify: int = 30) -> str:
    exit_code = f"import pathlib; pathlib.Path(r'{marker_dir}/env-exited').write_text('yes')"
    return textwrap.dedent(
        f"""\
        %%openjd_template job
        specificationVersion: jobtemplate-2023-09
        name: Interruptible
        jobEnvironments:
        - name: Env
          script:
            actions:
              onExit:
                command: {sys.executable}
                args: ["-c", "{exit_code}"]
        steps:
        - name: Work
          script:
            actions:
              onRun:
                command: {sys.executable}
                args: ["-c", "{task_code.format(dir=marker_dir)}"]
                cancelation:
                  mode: NOTIFY_THEN_TERMINATE
                  notifyPeriodInSeconds: {notify}
        """
    )


def wait_for(path: Path, timeout: float = 30) -> str:
    give_up = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < give_up, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_one_interrupt_cancels_gracefully_and_raises(kernel: KernelHarness, tmp_path: Path) -> None:
    assert kernel.execute(template_cell(GRACEFUL, tmp_path)).status == "ok"
    msg_id = kernel.submit("%openjd_run job --out result")
    pid = int(wait_for(tmp_path / "pid"))
    kernel.interrupt()
    execution = kernel.collect(msg_id, timeout=60)
    assert execution.error_name == "KeyboardInterrupt"
    assert wait_for(tmp_path / "sigterm") == "yes"  # the action got its own cancelation
    assert wait_for(tmp_path / "env-exited") == "yes"  # and the environment still exited
    assert gone(pid)
    check = kernel.execute("print(result.state, list(result.tasks.state))")
    assert "canceled ['canceled']" in check.text()
    assert kernel.execute("print('still alive')").status == "ok"  # later interrupts are harmless


def test_second_interrupt_kills_at_once(kernel: KernelHarness, tmp_path: Path) -> None:
    assert kernel.execute(template_cell(STUBBORN, tmp_path, notify=60)).status == "ok"
    msg_id = kernel.submit("%openjd_run job --cancel-grace 60 --out result")
    pid = int(wait_for(tmp_path / "pid"))
    kernel.interrupt()
    time.sleep(1.0)
    assert not gone(pid)  # it ignores SIGTERM and has 60 s of grace
    started = time.monotonic()
    kernel.interrupt()
    execution = kernel.collect(msg_id, timeout=60)
    assert time.monotonic() - started < 15
    assert execution.error_name == "KeyboardInterrupt"
    assert gone(pid)
    assert wait_for(tmp_path / "env-exited") == "yes"


def test_no_block_returns_a_run_that_openjd_cancel_stops(
    kernel: KernelHarness, tmp_path: Path
) -> None:
    assert kernel.execute(template_cell(GRACEFUL, tmp_path)).status == "ok"
    started = kernel.execute("run = %openjd_run job --no-block\nprint(type(run).__name__)")
    assert "JobRun" in started.text()
    pid = int(wait_for(tmp_path / "pid"))
    assert kernel.execute("%openjd_cancel").status == "ok"
    waited = kernel.execute("result = %openjd_wait\nprint(result.state)")
    assert "canceled" in waited.text()
    assert gone(pid)
    assert wait_for(tmp_path / "env-exited") == "yes"


def test_ten_thousand_lines_cost_fewer_than_a_hundred_widget_messages(
    kernel: KernelHarness,
) -> None:
    cell = textwrap.dedent(
        f"""\
        %%openjd_template loud
        specificationVersion: jobtemplate-2023-09
        name: Loud
        steps:
        - name: Print
          script:
            actions:
              onRun:
                command: {sys.executable}
                args: ["-c", "import time\\nfor i in range(10000):\\n    print('line', i)\\n    if i % 2000 == 0: time.sleep(0.2)"]
        """
    )
    assert kernel.execute(cell).status == "ok"
    execution = kernel.collect(kernel.submit("%openjd_run loud"), timeout=60, settle=1.0)
    assert execution.status == "ok", execution.text()
    widget_messages = execution.of_type("comm_open", "comm_msg", "comm_close")
    assert 0 < len(widget_messages) < 100, len(widget_messages)
    # The dashboard was replaced by a static summary: the last display carries no widget.
    updates = execution.of_type("update_display_data")
    assert updates, "the dashboard was not replaced at the end"
    final = updates[-1]["content"]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in final
    assert "success" in final["text/plain"]


def test_kernel_shutdown_kills_a_running_action(kernel: KernelHarness, tmp_path: Path) -> None:
    assert kernel.execute(template_cell(STUBBORN, tmp_path)).status == "ok"
    assert kernel.execute("run = %openjd_run job --no-block").status == "ok"
    pid = int(wait_for(tmp_path / "pid"))
    kernel.client.stop_channels()
    kernel.manager.shutdown_kernel(now=False)
    give_up = time.monotonic() + 15
    while not gone(pid):
        assert time.monotonic() < give_up, "the action outlived its kernel"
        time.sleep(0.1)


def final_record(root: Path) -> dict[str, Any]:
    (run_json,) = root.glob("openjd-runs/*/run.json")
    body: dict[str, Any] = json.loads(run_json.read_text())
    return body


@pytest.mark.parametrize("restart", [False, True], ids=["shutdown", "restart"])
def test_a_kernel_going_away_mid_run_leaves_a_final_record(
    kernel: KernelHarness, tmp_path: Path, restart: bool
) -> None:
    """A blocking run (the cell still waiting) when the kernel shuts down or restarts: the
    action dies and the record is final (canceled, with an end time and the task's row)."""
    assert kernel.execute(template_cell(STUBBORN, tmp_path)).status == "ok"
    kernel.submit("%openjd_run job")
    pid = int(wait_for(tmp_path / "pid"))
    if restart:
        kernel.manager.restart_kernel(now=False)
    else:
        kernel.client.stop_channels()
        kernel.manager.shutdown_kernel(now=False)
    give_up = time.monotonic() + 15
    while not gone(pid):
        assert time.monotonic() < give_up, "the action outlived its kernel"
        time.sleep(0.1)
    record = final_record(tmp_path)
    assert record["state"] == "canceled" and record["ended"] is not None
    assert [task["state"] for task in record["tasks"]] == ["canceled"]
    assert record["error"] == ("the kernel restarted" if restart else "the kernel shut down")
