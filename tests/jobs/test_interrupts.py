"""Ctrl-C while ``run_job``/``JobRun.wait`` waits: counted by a signal handler, so even two
presses a fraction of a millisecond apart end the run first and only then raise
``KeyboardInterrupt``. Real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, yaml
    from openjd_notebook import Template, run_job
    from openjd_notebook.jobs import LogLines

    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Sleepy",
        "steps": [{"name": "Render", "script": {"actions": {"onRun": {
            "command": sys.executable,
            "args": ["-c", "import time; print('ready', flush=True); time.sleep(60)"],
        }}}}],
    }

    def on_event(event):
        if isinstance(event, LogLines) and "ready" in event.lines:
            print("ready", flush=True)

    try:
        run_job(Template.from_text(yaml.safe_dump(document)), runs_root=sys.argv[1],
                session_root=sys.argv[2], on_event=on_event)
    except KeyboardInterrupt as interrupt:
        import openjd_notebook
        (record,) = openjd_notebook.runs(sys.argv[1])["path"]
        print("raised after the run ended:", openjd_notebook.load_run(record).state, flush=True)
        print("message:", interrupt, flush=True)
    """
)


def run_and_interrupt_twice(tmp_path: Path, gap_s: float) -> list[str]:
    runs, sessions = tmp_path / "runs", tmp_path / "sessions"
    sessions.mkdir(parents=True)
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(runs), str(sessions)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        os.kill(process.pid, signal.SIGINT)
        time.sleep(gap_s)
        os.kill(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    return output.splitlines()


@pytest.mark.parametrize("attempt", range(4))
def test_two_interrupts_a_tenth_of_a_millisecond_apart_end_the_run_first(
    tmp_path: Path, attempt: int
) -> None:
    lines = run_and_interrupt_twice(tmp_path, 0.0001)
    assert "raised after the run ended: canceled" in lines
    assert "message: the run of 'Sleepy' was canceled" in lines
