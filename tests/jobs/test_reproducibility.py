"""Reproducible render experiments: manifests of what went in and came out, comparing two
runs, and rerunning a record with verification. Real jobs writing real files."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import PYTHON
from openjd_notebook import Template, load_run, run_job, runs, start_job
from openjd_notebook.jobs.compare import compare_runs
from openjd_notebook.jobs.events import Event, ManifestProgress, TaskStarted
from openjd_notebook.jobs.rerun import rerun

# Writes frame N (its content depends on Scale and, with Noise, on the time) into OutDir.
RENDER = (
    "import pathlib, sys, time\n"
    "out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)\n"
    "scene = pathlib.Path(sys.argv[2]).read_text()\n"
    "noise = str(time.time_ns()) if sys.argv[5] == 'yes' else ''\n"
    "(out / f'frame-{int(sys.argv[3]):03d}.txt').write_text(f'{scene}:{sys.argv[4]}:{noise}')\n"
)


def experiment(frames: str = "1-3", render: str = RENDER, **extra_step: Any) -> Template:
    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Experiment",
        "parameterDefinitions": [
            {"name": "Scene", "type": "PATH", "objectType": "FILE", "dataFlow": "IN"},
            {"name": "Textures", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "IN"},
            {"name": "OutDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT"},
            {"name": "Scale", "type": "INT", "default": 1},
            {"name": "Noise", "type": "STRING", "default": "no", "allowedValues": ["yes", "no"]},
        ],
        "steps": [
            {
                "name": "Render",
                "parameterSpace": {
                    "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": frames}]
                },
                "script": {
                    "actions": {
                        "onRun": {
                            "command": PYTHON,
                            "args": [
                                "-c",
                                render,
                                "{{Param.OutDir}}",
                                "{{Param.Scene}}",
                                "{{Task.Param.Frame}}",
                                "{{Param.Scale}}",
                                "{{Param.Noise}}",
                            ],
                        }
                    }
                },
                **extra_step,
            }
        ],
    }
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def studio(tmp_path: Path) -> dict[str, Any]:
    scene = tmp_path / "scene.txt"
    scene.write_text("a teapot")
    textures = tmp_path / "textures"
    (textures / "wood").mkdir(parents=True)
    (textures / "wood" / "oak.png").write_bytes(b"\x89PNG oak")
    (textures / "metal.png").write_bytes(b"\x89PNG metal")
    (tmp_path / "sessions").mkdir()
    return {
        "parameters": {
            "Scene": str(scene),
            "Textures": str(textures),
            "OutDir": str(tmp_path / "out"),
        },
        "runs_root": tmp_path / "runs",
        "session_root": tmp_path / "sessions",
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_inputs_and_outputs_are_hashed_and_kept_in_the_record(studio: dict[str, Any]) -> None:
    events: list[Event] = []
    result = run_job(experiment(), on_event=events.append, **studio)
    assert result.ok, result.error
    inputs = result.inputs
    assert list(inputs.columns) == ["parameter", "path", "size", "mtime", "sha256", "state"]
    assert list(zip(inputs["parameter"], inputs["path"], strict=True)) == [
        ("Scene", "scene.txt"),
        ("Textures", "metal.png"),
        ("Textures", "wood/oak.png"),
    ]
    scene = Path(studio["parameters"]["Scene"])
    assert (
        inputs.loc[0, "sha256"] == sha256(scene) and inputs.loc[0, "size"] == scene.stat().st_size
    )
    outputs = result.outputs
    out = Path(studio["parameters"]["OutDir"])
    assert list(outputs["path"]) == ["frame-001.txt", "frame-002.txt", "frame-003.txt"]
    assert list(outputs["sha256"]) == [sha256(out / p) for p in outputs["path"]]
    assert set(outputs["state"]) == {"hashed"}
    loaded = load_run(result.run_dir)
    assert loaded == result
    assert loaded.outputs.equals(outputs) and loaded.inputs.equals(inputs)
    kinds = {e.kind for e in events if isinstance(e, ManifestProgress) and e.done}
    assert kinds == {"inputs", "outputs"}


def test_missing_paths_are_entries_not_errors(studio: dict[str, Any], tmp_path: Path) -> None:
    parameters = {
        **studio["parameters"],
        "Textures": str(tmp_path / "no-such-folder"),
        "OutDir": str(tmp_path / "never-written"),
    }
    writes_nothing = experiment("1", script={"actions": {"onRun": {"command": "true"}}})
    result = run_job(
        writes_nothing,
        parameters,
        runs_root=studio["runs_root"],
        session_root=studio["session_root"],
    )
    assert result.ok
    textures = result.inputs[result.inputs["parameter"] == "Textures"]
    assert list(textures["state"]) == ["missing"]
    assert list(result.outputs["state"]) == ["missing"]


def test_failed_and_canceled_runs_still_record_their_outputs(studio: dict[str, Any]) -> None:
    failing = RENDER + "sys.exit(3 if sys.argv[3] == '2' else 0)\n"
    result = run_job(experiment(render=failing), **studio)
    assert result.state == "failed"
    assert list(result.outputs["path"]) == ["frame-001.txt", "frame-002.txt"]

    slow = RENDER + "time.sleep(60)\n"
    started = threading.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, TaskStarted):
            started.set()

    run = start_job(experiment(render=slow), on_event=on_event, **studio)
    assert started.wait(30)
    run.cancel()
    canceled = run.wait(60)
    assert canceled.state == "canceled"
    assert "frame-001.txt" in list(canceled.outputs["path"])


def test_compare_runs_shows_what_changed(studio: dict[str, Any]) -> None:
    first = run_job(experiment(), **studio)
    second = run_job(
        experiment(),
        {**studio["parameters"], "Scale": 2},
        **{k: v for k, v in studio.items() if k != "parameters"},
    )
    comparison = compare_runs(first, second.run_dir)
    assert not comparison.template_changed and comparison.template_diff == ""
    assert list(comparison.parameters.itertuples(index=False, name=None)) == [("Scale", "1", "2")]
    assert set(comparison.outputs["state"]) == {"different"}
    assert len(comparison.tasks) == 3  # matched by Frame, not by index
    assert set(comparison.tasks["state_a"]) == {"success"}
    changed_template = Template.from_text(experiment("1-4").text)
    third = run_job(
        changed_template,
        {**studio["parameters"], "Scale": 2},
        **{k: v for k, v in studio.items() if k != "parameters"},
    )
    against_second = compare_runs(second, third)
    assert against_second.template_changed
    assert "-      range: 1-3\n+      range: 1-4" in against_second.template_diff.replace("'", "")
    states = dict(zip(against_second.outputs["path"], against_second.outputs["state"], strict=True))
    assert states == {
        "frame-001.txt": "identical",
        "frame-002.txt": "identical",
        "frame-003.txt": "identical",
        "frame-004.txt": "new",
    }
    assert "outputs: 3 identical, 1 new" in against_second.summary()
    assert "<b>changed</b>" in against_second._repr_html_()


def test_runs_lists_equal_output_digests_for_equal_outputs(studio: dict[str, Any]) -> None:
    first = run_job(experiment(), **studio)
    second = run_job(experiment(), **studio)
    listed = runs(studio["runs_root"]).set_index("run_id")
    digests = listed["outputs_digest"]
    assert digests[first.run_id] == digests[second.run_id] is not None


def test_rerun_reproduces_a_deterministic_run(studio: dict[str, Any]) -> None:
    original = run_job(
        experiment(),
        {**studio["parameters"], "Scale": 5},
        **{k: v for k, v in studio.items() if k != "parameters"},
    )
    again = rerun(original.run_dir, verify=True)
    assert again.ok and again.run_dir != original.run_dir
    assert again.run_dir.parent == original.run_dir.parent
    assert again.verification is not None and again.verification.ok
    assert again.verification.summary() == "reproduced: 3/3 outputs identical"
    assert load_run(again.run_dir).tasks["Frame"].tolist() == [1, 2, 3]


def test_rerun_names_the_outputs_that_differ(studio: dict[str, Any]) -> None:
    noisy = run_job(
        experiment(),
        {**studio["parameters"], "Noise": "yes"},
        **{k: v for k, v in studio.items() if k != "parameters"},
    )
    again = rerun(noisy, verify=True, max_tasks=2)
    verification = again.verification
    assert verification is not None and not verification.ok
    summary = verification.summary()
    # Frame 3 did not run again: the file the first run left is still there, unchanged.
    assert summary.startswith("not reproduced: 1/3 outputs identical")
    assert "OutDir:frame-001.txt (different)" in summary


def test_overrides_and_a_small_hash_budget(studio: dict[str, Any]) -> None:
    original = run_job(experiment("1-2"), **studio)
    again = rerun(original, parameters={"Scale": 7}, hash_budget=10)
    assert load_run(again.run_dir).tasks["Frame"].tolist() == [1, 2]
    comparison = compare_runs(original, again)
    assert [row[0] for row in comparison.parameter_changes] == ["Scale"]
    assert set(again.outputs["state"]) == {"unhashed"}  # over the 10-byte budget
    assert again.outputs["sha256"].isna().all()


def test_the_record_keeps_environments_rules_and_the_actions_packages(
    studio: dict[str, Any], tmp_path: Path
) -> None:
    """Beyond the template: the environment templates' texts and digests, the path mapping
    rules, and the installed packages when the actions run this very Python."""
    import json

    environment = Template.from_text(
        yaml.safe_dump(
            {
                "specificationVersion": "environment-2023-09",
                "environment": {"name": "Lights", "variables": {"LIGHTS": "on"}},
            }
        )
    )
    rules = [{"source_path_format": "POSIX", "source_path": "/mnt/x", "destination_path": "/y"}]
    result = run_job(
        experiment("1"), environments=[environment], path_mapping_rules=rules, **studio
    )
    record = json.loads((result.run_dir / "run.json").read_text())
    (kept,) = record["environment_templates"]
    assert kept["name"] == "Lights" and kept["text"] == environment.text
    assert kept["digest"] == hashlib.sha256(environment.text.encode()).hexdigest()
    assert record["path_mapping_rules"] == rules
    packages = record["python_packages"]
    assert packages is not None and "openjd-model" in {name.lower() for name in packages}

    shell_only = experiment("1", script={"actions": {"onRun": {"command": "true"}}})
    other = run_job(shell_only, **studio)
    assert json.loads((other.run_dir / "run.json").read_text())["python_packages"] is None
