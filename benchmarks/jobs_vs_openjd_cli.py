"""Run whole jobs through `openjd run` (openjd-cli 0.8) and through openjd-notebook; print ratios.

Two jobs, written once as templates that both tools read:

- `true`: 100 tasks of `true` (what the tools themselves cost per task);
- `cpu`: 20 tasks that each burn 0.5 s of CPU in a Python loop (whether workers scale).

Each job runs through:

- `openjd run TEMPLATE`, as a subprocess; its wall time includes its ~0.3 s start-up;
- `openjd-notebook run TEMPLATE --workers N`, as a subprocess (apples to apples, start-up included);
- `run_job(TEMPLATE, workers=N)` in this process (what a notebook pays: modules already imported).

The reference CLI lives in its own venv (`.bench-venvs/openjd-cli`, created on first use with
`pip install openjd-cli==0.8.0`, which resolves openjd-model/-sessions 0.13: the same code as 0.14).
Runners alternate within each round and the best round counts, because small machines are noisy.

Targets: our sequential wall time at most half of `openjd run`'s (the `true` job), and `workers=2`
at least 1.8x faster than `workers=1` on the `cpu` job.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_VENV = REPO_ROOT / ".bench-venvs" / "openjd-cli"
REFERENCE_REQUIREMENT = "openjd-cli==0.8.0"
RUN_TIMEOUT_S = 120.0

TRUE_TASKS = 100
CPU_TASKS = 20
CPU_SECONDS = 0.5
# Pure-Python work until 0.5 s of CPU time is used (the clock is read every ~0.2 ms): each task
# does the same work however busy the machine is.
CPU_LOOP = (
    "import time\n"
    f"end = time.process_time() + {CPU_SECONDS}\n"
    "while time.process_time() < end:\n"
    "    for _ in range(10000): pass"
)

SEQUENTIAL_TARGET = 0.5  # ours / openjd run, at most
SPEEDUP_TARGET = 1.8  # workers=1 / workers=2 on the cpu job, at least


# ---- the jobs --------------------------------------------------------------------------------


def _template(name: str, tasks: int, command: str, args: list[str]) -> dict[str, Any]:
    on_run: dict[str, Any] = {"command": command, **({"args": args} if args else {})}
    return {
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
                "script": {"actions": {"onRun": on_run}},
            }
        ],
    }


def write_templates(directory: Path) -> dict[str, Path]:
    jobs = {
        "true": _template("TrueTasks", TRUE_TASKS, "true", []),
        "cpu": _template("CpuTasks", CPU_TASKS, sys.executable, ["-c", CPU_LOOP]),
    }
    paths = {}
    for name, document in jobs.items():
        paths[name] = directory / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return paths


# ---- the runners -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Runner:
    label: str
    workers: int
    before: tuple[str, ...] = ()
    """The subprocess's arguments before the template; empty for the in-process run."""
    after: tuple[str, ...] = ()

    def command(self, template: Path) -> list[str] | None:
        return [*self.before, str(template), *self.after] if self.before else None


def reference_openjd(explicit: str | None) -> Path:
    """The `openjd` executable: the one given, else the benchmark venv's, installed if needed."""
    if explicit:
        return Path(explicit)
    executable = REFERENCE_VENV / "bin" / "openjd"
    if not executable.exists():
        print(f"Installing {REFERENCE_REQUIREMENT} into {REFERENCE_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(REFERENCE_VENV)], check=True)
        pip = [str(REFERENCE_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, REFERENCE_REQUIREMENT], check=True)
    return executable


def runners(openjd: Path | None, runs_root: Path) -> list[Runner]:
    found: list[Runner] = []
    if openjd is not None:
        found.append(Runner("openjd run", 1, (str(openjd), "run")))
    ours = (sys.executable, "-m", "openjd_notebook.cli", "run")
    for workers in (1, 2):
        after = ("--workers", str(workers), "--runs-root", str(runs_root))
        found.append(Runner("openjd-notebook run", workers, ours, after))
        found.append(Runner("run_job (in-process)", workers))
    return found


def time_subprocess(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} exited {result.returncode}:\n{result.stdout}")
    return elapsed


def time_in_process(template: Path, workers: int, runs_root: Path) -> float:
    from openjd_notebook import run_job

    started = time.perf_counter()
    result = run_job(template, workers=workers, runs_root=runs_root)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"run_job({template.name}) {result.state}: {result.error}")
    return elapsed


def time_runner(runner: Runner, template: Path, runs_root: Path) -> float:
    command = runner.command(template)
    if command is None:
        return time_in_process(template, runner.workers, runs_root)
    return time_subprocess(command)


# ---- measuring -------------------------------------------------------------------------------


def measure(
    templates: dict[str, Path], all_runners: list[Runner], repeats: int, runs_root: Path
) -> dict[tuple[str, str, int], list[float]]:
    times: dict[tuple[str, str, int], list[float]] = {}
    # Warm-up: the in-process runner's first run pays imports a notebook pays once.
    time_in_process(templates["true"], 1, runs_root)
    for round_number in range(repeats):
        order = all_runners if round_number % 2 == 0 else list(reversed(all_runners))
        for job in templates:
            for runner in order:
                seconds = time_runner(runner, templates[job], runs_root)
                times.setdefault((job, runner.label, runner.workers), []).append(seconds)
                print(
                    f"  {job:4} {runner.label:22} w={runner.workers}: {seconds:6.2f} s",
                    file=sys.stderr,
                )
    return times


def summarize(times: dict[tuple[str, str, int], list[float]]) -> dict[str, Any]:
    best = {key: min(values) for key, values in times.items()}
    rows = []
    for (job, label, workers), seconds in best.items():
        reference = best.get((job, "openjd run", 1))
        sequential = best.get((job, label, 1))
        rows.append(
            {
                "job": job,
                "runner": label,
                "workers": workers,
                "wall_s": round(seconds, 3),
                "vs_openjd_run": round(seconds / reference, 3) if reference else None,
                "speedup_vs_workers_1": round(sequential / seconds, 3) if sequential else None,
            }
        )
    return {"rows": rows, "targets": targets(best)}


def targets(best: dict[tuple[str, str, int], float]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    reference = best.get(("true", "openjd run", 1))
    for label in ("openjd-notebook run", "run_job (in-process)"):
        ours = best.get(("true", label, 1))
        if reference and ours:
            ratio = ours / reference
            found[f"sequential {label} / openjd run (true job)"] = {
                "value": round(ratio, 3),
                "target": f"<= {SEQUENTIAL_TARGET}",
                "met": ratio <= SEQUENTIAL_TARGET,
            }
    for label in ("openjd-notebook run", "run_job (in-process)"):
        one, two = best.get(("cpu", label, 1)), best.get(("cpu", label, 2))
        if one and two:
            found[f"{label} workers=2 speed-up (cpu job)"] = {
                "value": round(one / two, 3),
                "target": f">= {SPEEDUP_TARGET}",
                "met": one / two >= SPEEDUP_TARGET,
            }
    return found


def measure_startup(openjd: Path | None, template: Path, repeats: int) -> dict[str, float]:
    """Each CLI's fixed cost: its `check` command, which imports everything and runs nothing."""
    commands = {"openjd-notebook check": [sys.executable, "-m", "openjd_notebook.cli"]}
    if openjd is not None:
        commands["openjd check"] = [str(openjd)]
    return {
        label: round(
            min(time_subprocess([*cli, "check", str(template)]) for _ in range(repeats)), 3
        )
        for label, cli in commands.items()
    }


# ---- output ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def print_table(summary: dict[str, Any]) -> None:
    header = ["job", "runner", "workers", "wall s", "/ openjd run", "speed-up vs w=1"]
    keys = ["job", "runner", "workers", "wall_s", "vs_openjd_run", "speedup_vs_workers_1"]
    table = [header] + [[_cell(row[k]) for k in keys] for row in summary["rows"]]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    print()
    startup = ", ".join(f"{label} {s:.2f} s" for label, s in summary["startup_s"].items())
    print(f"Fixed start-up (each CLI's `check`, best of 3): {startup}\n")
    for name, target in summary["targets"].items():
        verdict = "met" if target["met"] else "NOT met"
        print(f"{name}: {target['value']:.2f} (target {target['target']}): {verdict}")


def describe(commands: dict[str, str], repeats: int) -> dict[str, Any]:
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "timed_commands": commands,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repeats": repeats,
        "note": "openjd run and openjd-notebook run are timed as whole processes, start-up "
        "included (about 0.3 s for openjd run); run_job is timed inside this process.",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds; the best counts")
    parser.add_argument("--openjd", help="an `openjd` executable to use instead of the venv's")
    parser.add_argument("--skip-reference", action="store_true", help="time ours only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    openjd = None if args.skip_reference else reference_openjd(args.openjd)
    with tempfile.TemporaryDirectory(prefix="openjd-bench-") as scratch:
        directory = Path(scratch)
        templates = write_templates(directory)
        all_runners = runners(openjd, directory / "runs")
        commands = {
            f"{r.label} w={r.workers}": shlex.join(command)
            for r in all_runners
            if (command := r.command(Path("TEMPLATE.yaml"))) is not None
        }
        info = describe(commands, args.repeats)
        if not args.json:
            print(f"$ {info['command']}")
            for label, text in commands.items():
                print(f"  {label}: {text}")
        summary = summarize(measure(templates, all_runners, args.repeats, directory / "runs"))
        summary["startup_s"] = measure_startup(openjd, templates["true"], max(args.repeats, 3))
    if args.json:
        print(json.dumps({**info, **summary}, indent=2))
    else:
        print(f"\nPython {info['python']}, {info['cpus']} CPUs, best of {args.repeats} rounds.")
        print(f"{info['note']}\n")
        print_table(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
