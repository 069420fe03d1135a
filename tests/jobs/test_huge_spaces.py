"""Huge task spaces: selection never lists the space, and tasks that did not run are counted.

The two headline cases run for real: a 1,000,000-task step canceled right after it started
(in a child process, so its peak memory is its own), and one task picked out of a
100,000,000-task step. The index arithmetic behind filters is checked against the model's own
enumeration on spaces of every shape.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from openjd.model import IntRangeExpr, StepParameterSpaceIterator

from openjd_notebook import Template, load_run, run_job, runs
from openjd_notebook.jobs.selection import plan_steps
from openjd_notebook.jobs.task_indices import (
    Wanted,
    intersect_progressions,
    matching_indices,
)


def template(steps: list[dict[str, Any]], **extra: Any) -> Template:
    document = {"specificationVersion": "jobtemplate-2023-09", "name": "Huge", **extra}
    return Template.from_text(yaml.safe_dump({**document, "steps": steps}, sort_keys=False))


def step(definitions: list[dict[str, Any]], combination: str | None = None, **extra: Any) -> Any:
    space: dict[str, Any] = {"taskParameterDefinitions": definitions}
    if combination:
        space["combination"] = combination
    script = extra.pop("script", {"actions": {"onRun": {"command": "true"}}})
    return {"name": "Render", "parameterSpace": space, "script": script, **extra}


def frames(count: int) -> Template:
    return template([step([{"name": "F", "type": "INT", "range": f"1-{count}"}])])


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "sessions").mkdir()
    return {"runs_root": tmp_path / "runs", "session_root": tmp_path / "sessions"}


# ---- the two headline cases -----------------------------------------------------------------

CANCEL_A_MILLION = textwrap.dedent(
    """
    import json, resource, sys, threading, time
    from openjd_notebook import Template, start_job
    from openjd_notebook.jobs import TaskStarted

    template = Template.from_text('''
    specificationVersion: jobtemplate-2023-09
    name: Million
    steps:
    - name: Render
      parameterSpace:
        taskParameterDefinitions: [{name: F, type: INT, range: "1-1000000"}]
      script: {actions: {onRun: {command: "true"}}}
    ''')
    started = threading.Event()
    begin = time.monotonic()
    run = start_job(
        template,
        runs_root=sys.argv[1] + "/runs",
        session_root=sys.argv[1] + "/sessions",
        on_event=lambda e: started.set() if isinstance(e, TaskStarted) else None,
    )
    started.wait(30)
    run.cancel()
    result = run.wait(60)
    print(json.dumps({
        "seconds": time.monotonic() - begin,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state": result.state,
        "rows": len(result.tasks),
        "not_run": result.not_run,
        "run_dir": str(result.run_dir),
    }))
    """
)


def test_canceling_a_million_task_step_is_quick_small_and_counted(tmp_path: Path) -> None:
    (tmp_path / "sessions").mkdir()
    child = subprocess.run(
        [sys.executable, "-c", CANCEL_A_MILLION, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(child.stdout.splitlines()[-1])
    # Was 38 s, 3.7 GB and a 331 MB run.json listing every task that did not run.
    assert report["seconds"] < 10, report
    assert report["peak_rss_mib"] < 300, report
    assert report["state"] == "canceled"
    assert report["rows"] <= 2  # the task that was running, maybe one more handed out
    assert report["not_run"] == {"Render": 1_000_000 - report["rows"]}
    run_dir = Path(report["run_dir"])
    assert (run_dir / "run.json").stat().st_size < 20_000
    assert (run_dir / "tasks.csv").stat().st_size < 2_000
    # The record keeps the count; loading it lists nothing until asked.
    record = load_run(run_dir)
    assert record.not_run == report["not_run"]
    assert record.state_counts()["not_run"] == 1_000_000 - report["rows"]
    assert "not run" in record.summary_text()
    listing = runs(tmp_path / "runs")
    assert listing["tasks"].tolist() == [1_000_000]
    assert listing["not_run"].tolist() == [1_000_000 - report["rows"]]
    # Listing on demand, bounded: the record re-creates the selection from its template.
    first = record.not_run_tasks(limit=3)
    assert list(first["state"]) == ["not_run"] * 3
    assert first["task"].min() >= 0 and first["F"].tolist() == [t + 1 for t in first["task"]]


def test_one_task_of_a_hundred_million_is_selected_at_once(roots: dict[str, Path]) -> None:
    job = frames(100_000_000)
    instance = job.instantiate()
    began = time.perf_counter()
    (plan,) = plan_steps(instance.job, tasks="F=1")
    count, first, following = plan.planned_count(), plan.next_item(), plan.next_item()
    elapsed = time.perf_counter() - began
    assert elapsed < 0.5, f"selecting took {elapsed:.2f} s"
    assert count == 1 and following is None
    assert first is not None and (first.index, first.parameters["F"].value) == (0, "1")

    began = time.perf_counter()
    (plan,) = plan_steps(instance.job, tasks="F=99999990-100000000:5")
    picked = list(iter(plan.next_item, None))
    assert time.perf_counter() - began < 0.5
    assert [(i.index, i.parameters["F"].value) for i in picked] == [
        (99_999_989, "99999990"),
        (99_999_994, "99999995"),
        (99_999_999, "100000000"),
    ]
    # An explicit task finds its index in the whole space by arithmetic too.
    (plan,) = plan_steps(instance.job, tasks=[{"F": 77_777_777}])
    explicit = plan.next_item()
    assert explicit is not None and explicit.index == 77_777_776

    # And a real run of it: one row, its index in the whole space, nothing "not run".
    began = time.perf_counter()
    result = run_job(job, tasks="F=50000000", **roots)
    assert time.perf_counter() - began < 10
    assert result.ok, result.error
    assert result.tasks[["task", "F"]].values.tolist() == [[49_999_999, 50_000_000]]
    assert result.not_run == {} and result.not_run_tasks().empty


# ---- what did not run ------------------------------------------------------------------------


def test_not_run_tasks_are_the_selection_less_what_ran(roots: dict[str, Path]) -> None:
    failing = "if [ {{Task.Param.F}} -eq 5 ]; then exit 3; fi"
    job = template(
        [
            step(
                [
                    {"name": "F", "type": "INT", "range": "1-12"},
                    {"name": "Cam", "type": "STRING", "range": ["left", "right"]},
                ],
                "F * Cam",
                script={"actions": {"onRun": {"command": "/bin/sh", "args": ["-c", failing]}}},
            )
        ]
    )
    result = run_job(job, tasks="F=3-9; Cam=right", **roots)
    assert result.state == "failed"
    assert list(result.tasks["F"]) == [3, 4, 5]  # the failure stops new work
    assert result.not_run == {"Render": 4}
    listed = result.not_run_tasks()
    assert list(listed["F"]) == [6, 7, 8, 9] and set(listed["Cam"]) == {"right"}
    # Each keeps its index in the whole space: F row-major, Cam fastest.
    assert list(listed["task"]) == [(f - 1) * 2 + 1 for f in (6, 7, 8, 9)]
    assert list(result.not_run_tasks(limit=2)["F"]) == [6, 7]
    assert result.not_run_tasks("Render").equals(listed)
    assert result.state_counts() == {"success": 2, "failed": 1, "not_run": 4}
    # A loaded record re-creates the same list from its template and values.
    record = load_run(result.run_dir)  # type: ignore[arg-type]
    assert record == result
    assert record.not_run_tasks().equals(listed)
    with pytest.raises(LookupError, match="did not run"):
        result.log("Render", 13)  # F=7, Cam=right: selected, never ran


def test_not_run_chunks_of_an_adaptive_step_cover_what_did_not_run(
    roots: dict[str, Path],
) -> None:
    definition = {
        "name": "F",
        "type": "CHUNK[INT]",
        "range": "1-400",
        "chunks": {
            "defaultTaskCount": 1,
            "targetRuntimeSeconds": 5,
            "rangeConstraint": "CONTIGUOUS",
        },
    }
    # The first chunk is frame 1 alone; the next, grown, holds frame 2 and fails.
    script = (
        "import sys; first, _, last = '{{Task.Param.F}}'.partition('-'); "
        "sys.exit(3 if int(first) <= 2 <= int(last or first) else 0)"
    )
    job = template(
        [
            step(
                [definition],
                script={"actions": {"onRun": {"command": sys.executable, "args": ["-c", script]}}},
            )
        ],
        extensions=["TASK_CHUNKING"],
    )
    result = run_job(job, **roots)
    assert result.state == "failed"
    ran = [frame for chunk in result.tasks["F"] for frame in IntRangeExpr.from_str(chunk)]
    left = [
        frame for chunk in result.not_run_tasks()["F"] for frame in IntRangeExpr.from_str(chunk)
    ]
    assert sorted(ran + left) == list(range(1, 401))  # every frame exactly once
    assert left and result.not_run == {"Render": len(result.not_run_tasks())}


def test_a_record_of_an_earlier_version_with_not_run_rows_loads_counted(
    roots: dict[str, Path],
) -> None:
    job = frames(5)
    result = run_job(job, max_tasks=2, **roots)
    run_file = result.run_dir / "run.json"  # type: ignore[operator]
    body = json.loads(run_file.read_text())
    # Earlier versions wrote a row per task that did not run, and no "not_run" counts.
    body.pop("not_run")
    body["tasks"] += [
        {"step": "Render", "task": index, "parameters": {"F": index + 1}, "state": "not_run"}
        for index in (2, 3)
    ]
    run_file.write_text(json.dumps(body))
    record = load_run(run_file)
    assert list(record.tasks["F"]) == [1, 2]
    assert record.not_run == {"Render": 2}
    assert list(record.not_run_tasks()["F"]) == [3, 4]
    assert runs(roots["runs_root"])[["tasks", "succeeded", "not_run"]].values.tolist() == [
        [4, 2, 2]
    ]


# ---- the index arithmetic against the model's own enumeration --------------------------------


def test_progression_intersection_matches_sets() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        a = range(rng.randint(-30, 30), rng.randint(-30, 90), rng.randint(1, 7))
        b = range(rng.randint(-30, 30), rng.randint(-30, 90), rng.randint(1, 7))
        if len(a) and len(b):
            assert list(intersect_progressions(a, b)) == sorted(set(a) & set(b)), (a, b)


SPACES: list[tuple[list[dict[str, Any]], str | None]] = [
    ([{"name": "A", "type": "INT", "range": "1-10:3,20-12:-2,40"}], None),
    (
        [
            {"name": "A", "type": "INT", "range": "1-6"},
            {"name": "B", "type": "STRING", "range": ["x", "y", "z"]},
            {"name": "C", "type": "INT", "range": "10-1:-1,30-35"},
        ],
        "C * A * B",
    ),
    (
        [
            {"name": "A", "type": "INT", "range": [2, 4]},
            {"name": "B", "type": "STRING", "range": ["x", "y", "z"]},
            {"name": "C", "type": "INT", "range": "1-6"},
            {"name": "D", "type": "FLOAT", "range": ["0.5", "1", "2.25"]},
        ],
        "(A * B, C) * D",
    ),
    (
        [
            {"name": "A", "type": "INT", "range": "1-4"},
            {"name": "B", "type": "FLOAT", "range": ["1.5", "2", "3", "4"]},
            {
                "name": "C",
                "type": "CHUNK[INT]",
                "range": "1-9,20-23",
                "chunks": {"defaultTaskCount": 3, "rangeConstraint": "CONTIGUOUS"},
            },
        ],
        "(A, B) * C",
    ),
]
FILTERS: dict[str, list[Wanted]] = {
    "A": [Wanted(numbers=IntRangeExpr.from_str(r)) for r in ("2", "1-20:2", "5-40", "100")],
    "B": [Wanted(texts=frozenset(v)) for v in (["y"], ["x", "z"], [repr(2.0), repr(4.0)])],
    "C": [Wanted(numbers=IntRangeExpr.from_str(r)) for r in ("4", "2-8", "1-9,21-23", "30-31")],
    "D": [Wanted(texts=frozenset([repr(1.0)])), Wanted(texts=frozenset([repr(0.5), "x"]))],
}


@pytest.mark.parametrize(("definitions", "combination"), SPACES)
def test_matching_indices_agree_with_the_models_enumeration(
    definitions: list[dict[str, Any]], combination: str | None
) -> None:
    job = template([step(definitions, combination)], extensions=["TASK_CHUNKING"])
    space = job.instantiate().job.steps[0].parameterSpace
    everything = list(StepParameterSpaceIterator(space=space))
    names = [d["name"] for d in definitions]
    choices = [[None, *FILTERS[name]] for name in names]
    for picked in itertools.product(*choices):
        filters = {
            name: wanted for name, wanted in zip(names, picked, strict=True) if wanted is not None
        }
        expected = [
            index
            for index, values in enumerate(everything)
            if all(w.accepts(values[n]) for n, w in filters.items())
        ]
        found = matching_indices(space, filters)
        assert list(found) == expected, filters
        assert len(found) == len(expected), filters


# ---- the template summary counts without listing either --------------------------------------


CHUNK_RANGES = [
    "1-10",
    "1-10,12-20:2,21-25",
    "30-20:-1,5",
    [3, 4, 5, 9, 10, 1],
    "7",
    "1-3,4-9:5,10",
]


@pytest.mark.parametrize("values", CHUNK_RANGES)
@pytest.mark.parametrize("constraint", ["CONTIGUOUS", "NONCONTIGUOUS"])
@pytest.mark.parametrize("size", [1, 2, 3, 50])
def test_summary_counts_agree_with_the_models_chunks(
    values: Any, constraint: str, size: int
) -> None:
    chunk = {
        "name": "F",
        "type": "CHUNK[INT]",
        "range": values,
        "chunks": {"defaultTaskCount": size, "rangeConstraint": constraint},
    }
    camera = {"name": "Cam", "type": "STRING", "range": ["a", "b", "c"]}
    job = template([step([camera, chunk])], extensions=["TASK_CHUNKING"])
    space = job.instantiate().job.steps[0].parameterSpace
    chunks = len(StepParameterSpaceIterator(space=space))
    tasks = len(StepParameterSpaceIterator(space=space, chunks_task_count_override=1))
    (summary,) = job.summary().steps
    assert (summary.task_count, summary.chunk_count) == (tasks, chunks)


def test_summary_of_huge_and_adaptive_chunked_steps_is_immediate() -> None:
    chunk = {
        "name": "F",
        "type": "CHUNK[INT]",
        "range": "1-100000000",
        "chunks": {"defaultTaskCount": 10, "rangeConstraint": "CONTIGUOUS"},
    }
    adaptive = {**chunk, "chunks": {**chunk["chunks"], "targetRuntimeSeconds": 60}}
    for definition in (chunk, adaptive):
        job = template([step([definition])], extensions=["TASK_CHUNKING"])
        began = time.perf_counter()
        (summary,) = job.summary().steps
        assert time.perf_counter() - began < 0.5
        assert (summary.task_count, summary.chunk_count) == (100_000_000, 10_000_000)
