"""`openjd-notebook compare` and `openjd-notebook rerun [--verify]`, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

CLI = [str(Path(sys.executable).with_name("openjd-notebook"))]

WRITE = (
    "import pathlib, sys, time\n"
    "out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)\n"
    "noise = str(time.time_ns()) if sys.argv[4] == 'yes' else ''\n"
    "(out / f'frame-{sys.argv[2]}.txt').write_text(sys.argv[3] + noise)\n"
)


def job(tmp_path: Path) -> Path:
    document: dict[str, Any] = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Sweep",
        "parameterDefinitions": [
            {"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT"},
            {"name": "Gain", "type": "INT", "default": 1},
            {"name": "Noise", "type": "STRING", "default": "no"},
        ],
        "steps": [
            {
                "name": "Render",
                "parameterSpace": {
                    "taskParameterDefinitions": [{"name": "F", "type": "INT", "range": "1-3"}]
                },
                "script": {
                    "actions": {
                        "onRun": {
                            "command": sys.executable,
                            "args": [
                                "-c",
                                WRITE,
                                "{{Param.Out}}",
                                "{{Task.Param.F}}",
                                "{{Param.Gain}}",
                                "{{Param.Noise}}",
                            ],
                        }
                    }
                },
            }
        ],
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def record_of(done: subprocess.CompletedProcess[str]) -> str:
    line = next(x for x in done.stdout.splitlines() if x.startswith("Record: "))
    return line.removeprefix("Record: ")


@pytest.fixture
def first_run(tmp_path: Path) -> tuple[Path, str]:
    template = job(tmp_path)
    done = cli("run", str(template), "-p", f"Out={tmp_path / 'out'}", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return template, record_of(done)


def test_rerun_verify_reproduces_and_exits_0(first_run: tuple[Path, str], tmp_path: Path) -> None:
    _, record = first_run
    done = cli("rerun", record, "--verify", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced: 3/3 outputs identical" in done.stdout
    assert record_of(done) != record


def test_rerun_verify_exits_1_when_outputs_differ(tmp_path: Path) -> None:
    template = job(tmp_path)
    out = tmp_path / "out"
    first = cli("run", str(template), "-p", f"Out={out}", "-p", "Noise=yes", cwd=tmp_path)
    done = cli("rerun", record_of(first), "--verify", cwd=tmp_path)
    assert done.returncode == 1
    assert "not reproduced: 0/3 outputs identical" in done.stdout
    assert "Out:frame-1.txt (different)" in done.stdout


def test_compare_names_changed_parameters_and_outputs(
    first_run: tuple[Path, str], tmp_path: Path
) -> None:
    _, record = first_run
    second = cli("rerun", record, "-p", "Gain=2", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    done = cli("compare", record, record_of(second), "--output", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["parameters"] == [{"name": "Gain", "a": "1", "b": "2"}]
    assert not document["template_changed"] and not document["same_outputs"]
    assert {o["state"] for o in document["outputs"]} == {"different"}
    human = cli("compare", record, record_of(second), cwd=tmp_path)
    assert "Gain: '1' -> '2'" in human.stdout
    assert "outputs: 3 different" in human.stdout


def test_run_json_output_carries_the_manifests(tmp_path: Path) -> None:
    template = job(tmp_path)
    done = cli(
        "run", str(template), "-p", f"Out={tmp_path / 'out'}", "--output", "json", cwd=tmp_path
    )
    document = json.loads(done.stdout)
    assert [entry["path"] for entry in document["outputs"]] == [
        "frame-1.txt",
        "frame-2.txt",
        "frame-3.txt",
    ]
    record = json.loads((Path(document["run_dir"]) / "run.json").read_text())
    assert record["outputs"] == document["outputs"]


def test_hash_budget_limits_what_is_hashed(tmp_path: Path) -> None:
    template = job(tmp_path)
    done = cli(
        "run",
        str(template),
        "-p",
        f"Out={tmp_path / 'out'}",
        "--hash-budget",
        "0",
        "--output",
        "json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    states = {entry["state"] for entry in json.loads(done.stdout)["outputs"]}
    assert states == {"unhashed"}
    bad = cli("run", str(template), "--hash-budget", "lots", cwd=tmp_path)
    assert bad.returncode == 2 and "not a size such as 512M" in bad.stderr


def test_byte_sizes() -> None:
    from openjd_notebook.jobs.manifests import parse_byte_size

    assert parse_byte_size("64G") == 64 * 1024**3
    assert parse_byte_size("512MiB") == 512 * 1024**2
    assert parse_byte_size("1000") == 1000
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_byte_size("-1K")
