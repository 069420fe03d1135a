"""Cancel paths a TD can trust, with real processes: one notify per action whatever the
number of nodes, and environment exits treated as cleanup (a graceful cancel lets them
finish, bounded by the cancel grace; only a forced cancel kills them)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import PYTHON
from openjd_notebook import Template, start_job
from openjd_notebook.jobs import Event, LogLines


def py(code: str, **fields: Any) -> dict[str, Any]:
    return {"command": PYTHON, "args": ["-c", code], **fields}


def template(document: dict[str, Any]) -> Template:
    body = {"specificationVersion": "jobtemplate-2023-09", "name": "Cancel", **document}
    return Template.from_text(yaml.safe_dump(body, sort_keys=False))


class Lines:
    """Waits for a line to appear in any action's log."""

    def __init__(self) -> None:
        self._seen: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        if isinstance(event, LogLines):
            with self._changed:
                self._seen.extend(event.lines)
                self._changed.notify_all()

    def wait_for(self, *lines: str, timeout: float = 30) -> None:
        """Until each of ``lines`` was printed as a whole line."""
        with self._changed:
            found = self._changed.wait_for(lambda: set(lines) <= set(self._seen), timeout)
        assert found, f"{lines!r} not all seen in {timeout} s"


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "sessions").mkdir()
    return {"runs_root": tmp_path / "runs", "session_root": tmp_path / "sessions"}


# Frame 1 ends at once on SIGTERM; frame 2 counts every SIGTERM it gets and ends 2 s later.
COUNTS_SIGTERMS = """
import signal, sys, time
frame = {{Task.Param.Frame}}
count_file = sys.argv[1]
got = []
def on_term(*_):
    got.append(1)
    open(count_file, 'a').write('TERM\\n')
    if frame == 1:
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print('ready', frame, flush=True)
while not got:
    time.sleep(0.05)
time.sleep(2)
"""


def test_a_graceful_cancel_notifies_each_action_once_with_two_workers(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    count_file = tmp_path / "sigterms.txt"
    on_run = py(COUNTS_SIGTERMS, cancelation={"mode": "NOTIFY_THEN_TERMINATE"})
    on_run["args"].append(str(count_file))
    job = template(
        {
            "steps": [
                {
                    "name": "Render",
                    "parameterSpace": {
                        "taskParameterDefinitions": [
                            {"name": "Frame", "type": "INT", "range": "1-2"}
                        ]
                    },
                    "script": {"actions": {"onRun": on_run}},
                }
            ]
        }
    )
    lines = Lines()
    run = start_job(job, workers=2, on_event=lines, cancel_grace=20, **roots)
    lines.wait_for("ready 1", "ready 2")
    run.cancel()
    result = run.wait(60)
    assert result.state == "canceled"
    assert sorted(result.tasks["state"]) == ["canceled", "canceled"]
    # Frame 1 ended first, which used to cancel frame 2's session a second time.
    assert count_file.read_text().splitlines() == ["TERM", "TERM"]  # one per action


SLOW_CLEANUP = (
    "import time; print('cleanup started', flush=True); time.sleep(2); print('cleanup done')"
)


def cleanup_job(exit_code: str) -> Template:
    return template(
        {
            "jobEnvironments": [
                {
                    "name": "Scratch",
                    "script": {"actions": {"onEnter": py("print('on')"), "onExit": py(exit_code)}},
                }
            ],
            "steps": [{"name": "Render", "script": {"actions": {"onRun": py("print('frame')")}}}],
        }
    )


def test_a_graceful_cancel_lets_a_running_exit_finish(roots: dict[str, Path]) -> None:
    lines = Lines()
    run = start_job(cleanup_job(SLOW_CLEANUP), on_event=lines, cancel_grace=30, **roots)
    lines.wait_for("cleanup started")
    run.cancel()
    result = run.wait(60)
    assert result.environments.iloc[0]["state"] == "success"
    assert "cleanup done" in result.environment_log("Scratch")
    # Every task succeeded and every environment exited: the cancel came too late to stop
    # anything, so the run is a success.
    assert result.state == "success"


def test_a_hanging_exit_after_a_graceful_cancel_is_bounded_by_the_grace(
    roots: dict[str, Path],
) -> None:
    hanging = "import time; print('cleanup started', flush=True); time.sleep(600)"
    lines = Lines()
    run = start_job(cleanup_job(hanging), on_event=lines, cancel_grace=1, **roots)
    lines.wait_for("cleanup started")
    started = time.monotonic()
    run.cancel()
    result = run.wait(60)
    assert time.monotonic() - started < 15  # not the onExit's 300 s default timeout
    assert result.state == "canceled"
    assert result.environments.iloc[0]["state"] == "canceled"
    assert "ran past the cancel grace period (1 s)" in result.environment_log("Scratch")


def test_a_forced_cancel_kills_a_running_exit(roots: dict[str, Path]) -> None:
    hanging = "import time; print('cleanup started', flush=True); time.sleep(600)"
    lines = Lines()
    run = start_job(cleanup_job(hanging), on_event=lines, **roots)
    lines.wait_for("cleanup started")
    started = time.monotonic()
    run.cancel()  # graceful, no grace given: the exit may run on ...
    time.sleep(0.5)
    assert not run.done()
    run.cancel(force=True)  # ... until a forced cancel
    result = run.wait(30)
    assert time.monotonic() - started < 10
    assert result.environments.iloc[0]["state"] == "canceled"


def test_abandon_ends_the_run_and_leaves_a_final_record_within_its_timeout(
    roots: dict[str, Path],
) -> None:
    """What a kernel shutdown calls: the record is final (canceled, ended, the reason) within
    the timeout even when an action ignores SIGTERM and an exit would hang."""
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('working', flush=True); time.sleep(600)"
    )
    hanging_exit = "import time; time.sleep(600)"
    job = template(
        {
            "jobEnvironments": [
                {"name": "Scratch", "script": {"actions": {"onExit": py(hanging_exit)}}}
            ],
            "steps": [
                {
                    "name": "Render",
                    "script": {
                        "actions": {
                            "onRun": py(
                                stubborn,
                                cancelation={
                                    "mode": "NOTIFY_THEN_TERMINATE",
                                    "notifyPeriodInSeconds": 600,
                                },
                            )
                        }
                    },
                }
            ],
        }
    )
    lines = Lines()
    run = start_job(job, on_event=lines, cancel_grace=600, **roots)
    lines.wait_for("working")
    started = time.monotonic()
    result = run.abandon("the kernel shut down", timeout=3)
    assert time.monotonic() - started < 6
    assert result is not None and result.state == "canceled"
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["state"] == "canceled" and record["ended"] is not None
    assert [t["state"] for t in record["tasks"]] == ["canceled"]
    run.wait(30)  # the run itself ends soon after, killed
