"""A secret declared with ``openjd_redacted_env`` and then printed in status and fail
messages stays masked in everything a run leaves behind: records, tables, events, HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from helpers import PYTHON
from openjd_notebook import Template, load_run, run_job
from openjd_notebook.jobs import Event

SECRET = "s3cr3t-token-that-must-not-leak"


def test_status_and_fail_messages_with_a_secret_are_masked_everywhere(tmp_path: Path) -> None:
    # Built at run time, so the template text (which the record keeps) does not hold it.
    declare = "print('openjd_redacted_env: TOKEN=' + '-'.join(" + repr(SECRET.split("-")) + "))"
    task = (
        "import os\n"
        "print('openjd_status: logging in as ' + os.environ['TOKEN'])\n"
        "print('openjd_fail: rejected ' + os.environ['TOKEN'])\n"
        "raise SystemExit(1)"
    )
    document: dict[str, Any] = {
        "specificationVersion": "jobtemplate-2023-09",
        "extensions": ["REDACTED_ENV_VARS"],
        "name": "Secrets",
        "jobEnvironments": [
            {
                "name": "Login",
                "script": {"actions": {"onEnter": {"command": PYTHON, "args": ["-c", declare]}}},
            }
        ],
        "steps": [
            {
                "name": "Render",
                "script": {"actions": {"onRun": {"command": PYTHON, "args": ["-c", task]}}},
            }
        ],
    }
    events: list[Event] = []
    (tmp_path / "sessions").mkdir()
    result = run_job(
        Template.from_text(yaml.safe_dump(document)),
        runs_root=tmp_path / "runs",
        session_root=tmp_path / "sessions",
        on_event=events.append,
    )
    assert result.state == "failed"
    row = result.tasks.iloc[0]
    assert row["status_message"] == "logging in as ********"
    assert row["fail_message"] == "rejected ********"
    places = {
        "events": repr(events),
        "tasks": result.tasks.to_csv(),
        "error": str(result.error),
        "html": result._repr_html_(),
        "reloaded": load_run(result.run_dir).tasks.to_csv(),
    }
    assert result.run_dir is not None
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            places[str(path.relative_to(result.run_dir))] = path.read_text(errors="replace")
    leaks = [where for where, text in places.items() if SECRET in text]
    assert not leaks, f"the secret reached {leaks}"
