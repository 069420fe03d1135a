"""Run records that survive what goes wrong: a runner killed mid-run, and a full disk.

Real processes, a real SIGKILL and a real (small) tmpfs: the full-disk tests need to mount
one and are skipped, saying why, where that is not allowed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import PYTHON, wait_until
from openjd_notebook import Template, load_run, run_job, runs


def py(code: str) -> dict[str, Any]:
    return {"command": PYTHON, "args": ["-c", code]}


def frames_job(count: int, code: str) -> dict[str, Any]:
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Frames",
        "steps": [
            {
                "name": "Render",
                "parameterSpace": {
                    "taskParameterDefinitions": [
                        {"name": "Frame", "type": "INT", "range": f"1-{count}"}
                    ]
                },
                "script": {"actions": {"onRun": py(code)}},
            }
        ],
    }


RUNNER = """
import sys, yaml
from openjd_notebook import Template, run_job
template = Template.from_text(open(sys.argv[1]).read())
run_job(template, runs_root=sys.argv[2], session_root=sys.argv[3])
"""


def test_a_killed_runner_leaves_the_rows_of_the_tasks_that_finished(tmp_path: Path) -> None:
    # Frames 1-3 end at once; frame 4 waits for the kill.
    code = "import time; time.sleep(600 if {{Task.Param.Frame}} == 4 else 0)"
    template_file = tmp_path / "job.yaml"
    template_file.write_text(yaml.safe_dump(frames_job(5, code)))
    runs_root, sessions = tmp_path / "runs", tmp_path / "sessions"
    sessions.mkdir()
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(template_file), str(runs_root), str(sessions)]
    )
    try:
        rows = lambda: list(runs_root.glob("*/tasks.jsonl"))  # noqa: E731
        wait_until(lambda: rows() and len(rows()[0].read_text().splitlines()) == 3, 60)
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    finally:
        runner.kill()
    (run_dir,) = runs_root.iterdir()
    result = load_run(run_dir)
    assert result.state == "failed"
    assert "did not finish" in str(result.error)
    assert list(result.tasks["task"]) == [0, 1, 2]
    assert list(result.tasks["state"]) == ["success"] * 3
    assert list(result.tasks["Frame"]) == [1, 2, 3]  # typed, from the header's columns
    listed = runs(runs_root).iloc[0]
    assert (listed["state"], listed["tasks"], listed["succeeded"]) == ("running", 3, 3)


def test_a_finished_record_keeps_its_rows_in_run_json_only(tmp_path: Path) -> None:
    (tmp_path / "sessions").mkdir()
    template = Template.from_text(yaml.safe_dump(frames_job(3, "pass")))
    result = run_job(template, runs_root=tmp_path / "runs", session_root=tmp_path / "sessions")
    assert result.ok
    assert not (result.run_dir / "tasks.jsonl").exists()
    assert len(json.loads((result.run_dir / "run.json").read_text())["tasks"]) == 3


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards; skipped where mounting is not allowed."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


FLOODS_THE_LOG = textwrap.dedent(
    """
    import sys, time
    line = 'x' * 1000
    for _ in range(4000):  # about 4 MB, four times the disk
        print(line)
    sys.stdout.flush()
    time.sleep(1)
    print('still running after the disk filled')
    """
)


def test_a_full_disk_fails_the_task_with_the_reason_and_the_run_still_ends(
    small_disk: Path, tmp_path: Path
) -> None:
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    document = frames_job(3, FLOODS_THE_LOG)
    started = time.monotonic()
    result = run_job(
        Template.from_text(yaml.safe_dump(document)),
        runs_root=small_disk / "runs",
        session_root=sessions,
        cancel_grace=5,
    )
    assert time.monotonic() - started < 60
    assert result.state == "failed"
    first = result.tasks.iloc[0]
    assert first["state"] == "failed"
    assert first["fail_message"] == "no space left on device while writing the log"
    # The run stops like after any failure: the other frames do not run.
    assert len(result.tasks) == 1 and result.not_run == {"Render": 2}
    # Room was made for the final record, which says what happened.
    record = load_run(result.run_dir)
    assert record.state == "failed"
    assert record.tasks.iloc[0]["fail_message"] == first["fail_message"]
    log = result.log("Render", 0)
    assert "no space left on device; this log stops here" in log


def test_every_file_and_folder_of_a_record_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """Logs hold what actions printed: the record is 0700/0600 even under umask 022."""
    (tmp_path / "sessions").mkdir()
    template = Template.from_text(yaml.safe_dump(frames_job(2, "print('secret-ish output')")))
    previous = os.umask(0o022)
    try:
        result = run_job(template, runs_root=tmp_path / "runs", session_root=tmp_path / "sessions")
    finally:
        os.umask(previous)
    assert result.ok
    modes = {
        str(path.relative_to(result.run_dir)): path.stat().st_mode & 0o777
        for path in [result.run_dir, *result.run_dir.rglob("*")]
    }
    assert {"run.json", "tasks.csv", "environments.csv", "logs/Render/task-0000.log"} <= set(modes)
    loose = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (result.run_dir / name).is_dir() else 0o600)
    }
    assert not loose, loose
