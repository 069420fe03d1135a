"""The engine's log records never reach Python's last-resort handler: in a notebook a
"Process failed to start" shows in the run's own result, not as stray red stderr text."""

from __future__ import annotations

import textwrap
from pathlib import Path

from kernel_harness import KernelHarness

# One argument of 300,000 characters: execve refuses it (E2BIG), so the process cannot start.
CELL = textwrap.dedent(
    """
    import sys, yaml
    from openjd_notebook import Template, run_job
    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "TooLong",
        "steps": [{"name": "Render", "script": {"actions": {"onRun": {
            "command": sys.executable, "args": ["-c", "pass", "x" * 300000]}}}}],
    }
    result = run_job(Template.from_text(yaml.safe_dump(document)), runs_root=r"RUNS")
    print("STATE", result.state)
    print("FAIL", result.tasks.iloc[0]["fail_message"])
    """
)


def test_a_process_that_cannot_start_leaves_no_stray_stderr(
    kernel: KernelHarness, tmp_path: Path
) -> None:
    execution = kernel.execute(CELL.replace("RUNS", str(tmp_path / "runs")))
    assert execution.status == "ok", execution.text()
    streams = execution.of_type("stream")
    stderr = [m["content"]["text"] for m in streams if m["content"]["name"] == "stderr"]
    stdout = "".join(m["content"]["text"] for m in streams if m["content"]["name"] == "stdout")
    assert "STATE failed" in stdout
    assert "FAIL Process failed to start: [Errno 7] Argument list too long" in stdout
    assert stderr == []
