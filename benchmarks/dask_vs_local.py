"""Run the same jobs on a Dask LocalCluster (2 worker processes) and locally; print ratios.

Two jobs:

- `true`: 100 tasks of `true` (what dispatching a task costs);
- `sleep`: 20 tasks of `sleep 0.2` (whether two nodes halve the wall time).

Each job runs through `run_job(..., workers=1)`, `run_job(..., workers=2)` and
`run_job(..., executor=DaskExecutor(client))` on `LocalCluster(n_workers=2, threads_per_worker=1,
processes=True)`, plus the Dask executor capped to one node (`max_nodes=1`), which runs the tasks
one after the other: its wall time per task is the Dask dispatch cost a sequential job pays.
The cluster starts once, before timing; runners alternate within each round and the best round
counts, because small machines are noisy.

Targets: Dask sequential at most 15 ms per task (`true`: the median time between consecutive task
ends, so a run's fixed set-up and end are left out; the whole-run figure is printed too), and Dask
on two workers at least 1.9x faster than local `workers=1` on the `sleep` job.

    .venv/bin/python benchmarks/dask_vs_local.py            # table
    .venv/bin/python benchmarks/dask_vs_local.py --json     # one JSON object
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from openjd_notebook import Template, run_job
from openjd_notebook.jobs import Event, TaskEnded

TRUE_TASKS = 100
SLEEP_TASKS = 20
SLEEP_SECONDS = 0.2
SEQUENTIAL_TARGET_MS = 15.0  # Dask, one node, per task, at most
SPEEDUP_TARGET = 1.9  # local workers=1 / Dask on 2 workers, sleep job, at least


def _template(name: str, tasks: int, args: list[str]) -> Template:
    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": name,
        "steps": [
            {
                "name": name,
                "parameterSpace": {
                    "taskParameterDefinitions": [
                        {"name": "N", "type": "INT", "range": f"1-{tasks}"}
                    ]
                },
                "script": {"actions": {"onRun": {"command": args[0], "args": args[1:]}}},
            }
        ],
    }
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


JOBS = {
    "true": (_template("true", TRUE_TASKS, ["/bin/sh", "-c", "true"]), TRUE_TASKS),
    "sleep": (
        _template("sleep", SLEEP_TASKS, ["/bin/sh", "-c", f"sleep {SLEEP_SECONDS}"]),
        SLEEP_TASKS,
    ),
}


@dataclass
class Timing:
    wall_s: float
    cycle_ms: float
    """Median time between consecutive task ends: a task's cost without the run's set-up."""


def _timed(template: Template, runs_root: Path, options: dict[str, Any]) -> Timing:
    ends: list[float] = []

    def on_event(event: Event) -> None:
        if isinstance(event, TaskEnded):
            ends.append(time.perf_counter())

    started = time.perf_counter()
    result = run_job(template, runs_root=runs_root, on_event=on_event, **options)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"benchmark run failed: {result.error}")
    cycles = [later - earlier for earlier, later in itertools.pairwise(ends)]
    return Timing(elapsed, statistics.median(cycles) * 1000)


def measure(rounds: int, runs_root: Path) -> dict[str, dict[str, Timing]]:
    """Best timings per job and runner."""
    from distributed import Client, LocalCluster

    from openjd_notebook.jobs.dask_executor import DaskExecutor

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        runners: dict[str, dict[str, Any]] = {
            "local workers=1": {"workers": 1},
            "local workers=2": {"workers": 2},
            "dask 1 node": {"executor": DaskExecutor(client, max_nodes=1)},
            "dask 2 workers": {"executor": DaskExecutor(client)},
        }
        best: dict[str, dict[str, Timing]] = {job: {} for job in JOBS}
        for _ in range(rounds):
            for job, (template, _) in JOBS.items():
                for runner, options in runners.items():
                    timing = _timed(template, runs_root, options)
                    previous = best[job].get(runner, timing)
                    best[job][runner] = Timing(
                        min(timing.wall_s, previous.wall_s),
                        min(timing.cycle_ms, previous.cycle_ms),
                    )
    return best


def report(best: dict[str, dict[str, Timing]]) -> dict[str, Any]:
    true_tasks, true_job = JOBS["true"][1], best["true"]
    sleep = {runner: timing.wall_s for runner, timing in best["sleep"].items()}
    sequential_ms = true_job["dask 1 node"].cycle_ms
    speedup = sleep["local workers=1"] / sleep["dask 2 workers"]
    return {
        "python": platform.python_version(),
        "wall_s": {job: {r: t.wall_s for r, t in timings.items()} for job, timings in best.items()},
        "ms_per_task_true": {r: t.wall_s / true_tasks * 1000 for r, t in true_job.items()},
        "median_cycle_ms_true": {r: t.cycle_ms for r, t in true_job.items()},
        "dask_sequential_ms_per_task": sequential_ms,
        "dask_sequential_wall_ms_per_task": true_job["dask 1 node"].wall_s / true_tasks * 1000,
        "dask_sequential_target_ms": SEQUENTIAL_TARGET_MS,
        "sleep_speedup_dask_vs_local1": speedup,
        "sleep_speedup_dask_vs_local2": sleep["local workers=2"] / sleep["dask 2 workers"],
        "sleep_speedup_target": SPEEDUP_TARGET,
        "targets_met": sequential_ms <= SEQUENTIAL_TARGET_MS and speedup >= SPEEDUP_TARGET,
    }


def print_table(summary: dict[str, Any]) -> None:
    runners = list(summary["wall_s"]["true"])
    header = ("runner", "true: wall ms/task", "true: median cycle ms", "sleep: wall s")
    print(f"{header[0]:<18}{header[1]:>20}{header[2]:>23}{header[3]:>15}")
    for runner in runners:
        per_task = summary["ms_per_task_true"][runner]
        cycle = summary["median_cycle_ms_true"][runner]
        sleep = summary["wall_s"]["sleep"][runner]
        print(f"{runner:<18}{per_task:>20.2f}{cycle:>23.2f}{sleep:>15.2f}")
    print()
    print(
        f"Dask sequential dispatch (median per task): {summary['dask_sequential_ms_per_task']:.2f}"
        f" ms (target <= {SEQUENTIAL_TARGET_MS:g}); whole run incl. set-up and end: "
        f"{summary['dask_sequential_wall_ms_per_task']:.2f} ms/task"
    )
    print(
        f"sleep job, local workers=1 / Dask 2 workers: "
        f"{summary['sleep_speedup_dask_vs_local1']:.2f}x (target >= {SPEEDUP_TARGET:g}x)"
    )
    print(
        f"sleep job, local workers=2 / Dask 2 workers: "
        f"{summary['sleep_speedup_dask_vs_local2']:.2f}x"
    )
    print("targets met" if summary["targets_met"] else "TARGETS MISSED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="openjd-dask-bench-") as runs_root:
        summary = report(measure(args.rounds, Path(runs_root)))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)
    return 0 if summary["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
