"""One converter for task rows: the CLI's ``--output json``/``yaml``, run.json and
``load_run(...).tasks`` say the same thing about every task, column for column."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from openjd_notebook import load_run

PY = sys.executable

TEMPLATE = {
    "specificationVersion": "jobtemplate-2023-09",
    "name": "Rows",
    "jobEnvironments": [
        {"name": "Farm", "script": {"actions": {"onEnter": {"command": PY, "args": ["-c", ""]}}}}
    ],
    "steps": [
        {
            "name": "Render",
            "parameterSpace": {
                "taskParameterDefinitions": [
                    {"name": "Frame", "type": "INT", "range": "1-3"},
                    {"name": "Scale", "type": "FLOAT", "range": ["0.5", "2"]},
                    {"name": "Layer", "type": "STRING", "range": ["beauty"]},
                    {"name": "Scene", "type": "PATH", "range": ["/s/a.ma"]},
                ]
            },
            "script": {
                "actions": {
                    "onRun": {
                        "command": PY,
                        "args": [
                            "-c",
                            "import sys; print('openjd_progress: 50'); "
                            "print('openjd_status: half'); "
                            "sys.exit(3 if {{Task.Param.Frame}} == 3 else 0)",
                        ],
                    }
                }
            },
        }
    ],
}


def run_cli(tmp_path: Path, output: str) -> tuple[int, dict[str, Any]]:
    template = tmp_path / "rows.yaml"
    template.write_text(yaml.safe_dump(TEMPLATE), encoding="utf-8")
    argv = ["run", str(template), "--output", output, "--runs-root", str(tmp_path / output)]
    done = subprocess.run(
        [PY, "-m", "openjd_notebook", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    document = json.loads(done.stdout) if output == "json" else yaml.safe_load(done.stdout)
    return done.returncode, document


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    return run_cli(tmp_path_factory.mktemp("json"), "json")


def test_the_cli_document_holds_the_rows_run_json_holds(ran: tuple[int, dict[str, Any]]) -> None:
    code, document = ran
    assert code == 1 and document["status"] == "error" and document["state"] == "failed"
    record = json.loads((Path(document["run_dir"]) / "run.json").read_text(encoding="utf-8"))
    assert document["tasks"] == record["tasks"]
    assert document["environments"] == record["environments"]
    assert document["not_run"] == record["not_run"]
    first = document["tasks"][0]
    assert "attempts" in first and "duration_s" in first
    assert first["parameters"] == {"Frame": 1, "Scale": 0.5, "Layer": "beauty", "Scene": "/s/a.ma"}


def _same(cell: Any, value: Any) -> bool:
    if isinstance(cell, datetime):
        return cell == datetime.fromisoformat(value)
    if isinstance(cell, float) and math.isnan(cell):
        return value is None
    if cell is None or value is None:
        return cell is None and value is None
    return bool(cell == value) and type(cell) is type(value)


def test_load_run_tasks_agree_column_for_column(ran: tuple[int, dict[str, Any]]) -> None:
    _, document = ran
    frame = load_run(document["run_dir"]).tasks
    rows = document["tasks"]
    assert len(frame) == len(rows) > 0
    for column in frame.columns:
        for index, row in enumerate(rows):
            value = row["parameters"].get(column, row.get(column))
            cell = frame[column].iloc[index]
            cell = cell.to_pydatetime() if hasattr(cell, "to_pydatetime") else cell
            cell = cell.item() if hasattr(cell, "item") else cell
            assert _same(cell, value), (column, index, cell, value)


def test_load_run_outcomes_round_trip_the_document(ran: tuple[int, dict[str, Any]]) -> None:
    from openjd_notebook.jobs.outcome_json import environment_json, task_json

    _, document = ran
    result = load_run(document["run_dir"])
    assert [task_json(t) for t in result.task_outcomes] == document["tasks"]
    assert [environment_json(e) for e in result.environment_outcomes] == document["environments"]


def test_yaml_output_is_the_same_document(ran: tuple[int, dict[str, Any]], tmp_path: Path) -> None:
    code, document = run_cli(tmp_path, "yaml")
    _, from_json = ran
    assert code == 1
    ignored = {"run_dir", "duration_s", "message", "tasks", "environments"}
    assert {k: v for k, v in document.items() if k not in ignored} == {
        k: v for k, v in from_json.items() if k not in ignored
    }
    assert [row.keys() for row in document["tasks"]] == [row.keys() for row in from_json["tasks"]]
