"""Run whole jobs through `openjd run` (openjd-cli 0.8) and through openjd-notebook; print ratios.

Three jobs, written once as templates that both tools read:

- `one`: one task of `true` (a short job is mostly start-up);
- `true`: 100 tasks of `true` (what the tools themselves cost per task);
- `cpu`: 20 tasks that each burn 0.5 s of CPU in a Python loop (whether workers scale).

Each job runs through:

- `openjd run TEMPLATE`, as a whole process (start-up included);
- `openjd-notebook run TEMPLATE --workers N`, as a whole process (apples to apples);
- `run_job(TEMPLATE, workers=N)` in this process (what a notebook pays: modules already imported).

Whole processes are also measured for their peak memory (the largest resident set of the process
and what it waited for, from ``os.wait4`` in a small helper process), and each CLI's `check` is
timed alone.

The reference CLI lives in its own venv (`.bench-venvs/openjd-cli`, created on first use with
`pip install openjd-cli==0.8.0`, which resolves openjd-model/-sessions 0.13: the same code as 0.14).
Runners alternate within each round and the best round counts, because small machines are noisy.
Children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed) after a warm-up, as an
installed wheel would: pip compiles both packages' bytecode at install time.

Targets (ours / `openjd run`): 1 task at most 1.0x the wall time, 100 tasks at most 0.6x, peak
memory at most 1.2x; `check` at most 1.0x `openjd check`; `run_job` in-process at most 0.5x on
the 100 tasks; and `workers=2` at least 1.8x faster than `workers=1` on the `cpu` job.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_VENV = REPO_ROOT / ".bench-venvs" / "openjd-cli"
REFERENCE_REQUIREMENT = "openjd-cli==0.8.0"
OURS = Path(sys.executable).with_name("openjd-notebook")
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

REFERENCE = "openjd run"
CLI = "openjd-notebook run"
IN_PROCESS = "run_job (in-process)"
ONE_TASK_TARGET = 1.0
HUNDRED_TASKS_TARGET = 0.6
MEMORY_TARGET = 1.2
CHECK_TARGET = 1.0
IN_PROCESS_TARGET = 0.5
SPEEDUP_TARGET = 1.8


# ---- the jobs --------------------------------------------------------------------------------


def _template(name: str, tasks: int, command: str, args: list[str]) -> dict[str, Any]:
    on_run: dict[str, Any] = {"command": command, **({"args": args} if args else {})}
    step: dict[str, Any] = {"name": name, "script": {"actions": {"onRun": on_run}}}
    if tasks > 1:
        definitions = [{"name": "N", "type": "INT", "range": f"1-{tasks}"}]
        step["parameterSpace"] = {"taskParameterDefinitions": definitions}
    return {"specificationVersion": "jobtemplate-2023-09", "name": name, "steps": [step]}


def write_templates(directory: Path) -> dict[str, Path]:
    jobs = {
        "one": _template("OneTask", 1, "true", []),
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


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # The parity tests install the same venv; one installer at a time.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def reference_openjd(explicit: str | None) -> Path:
    """The `openjd` executable: the one given, else the benchmark venv's, installed if needed."""
    if explicit:
        return Path(explicit)
    executable = REFERENCE_VENV / "bin" / "openjd"
    with _locked(REFERENCE_VENV.with_name(".openjd-cli.lock")):
        if not executable.exists():
            print(f"Installing {REFERENCE_REQUIREMENT} into {REFERENCE_VENV} ...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(REFERENCE_VENV)], check=True)
            pip = [str(REFERENCE_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
            subprocess.run([*pip, REFERENCE_REQUIREMENT], check=True)
    return executable


def runners(openjd: Path | None, runs_root: Path) -> list[Runner]:
    found: list[Runner] = []
    if openjd is not None:
        found.append(Runner(REFERENCE, 1, (str(openjd), "run")))
    for workers in (1, 2):
        after = ("--workers", str(workers), "--runs-root", str(runs_root))
        found.append(Runner(CLI, workers, (str(OURS), "run"), after))
        found.append(Runner(IN_PROCESS, workers))
    return found


def _child_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_rss_mb: float | None = None


# Starts the command from a small process and reports its wall time, peak resident set and exit
# code. Linux carries a parent's peak RSS into a forked child, so a child of this (large) process
# would report at least this process's peak; a child of the small helper reports its own.
_SPAWNER = """
import os, subprocess, sys, time
with open(sys.argv[1], "w") as output:
    started = time.perf_counter()
    child = subprocess.Popen(sys.argv[2:], stdout=output, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
child.returncode = os.waitstatus_to_exitcode(status)
print(elapsed, usage.ru_maxrss, child.returncode)
"""


def time_subprocess(command: list[str]) -> Measured:
    """Wall time and peak resident memory of one whole process (and what it waited for)."""
    with tempfile.NamedTemporaryFile("r", suffix=".out") as output:
        spawner = [sys.executable, "-c", _SPAWNER, output.name, *command]
        done = subprocess.run(
            spawner, capture_output=True, text=True, env=_child_environment(), check=True
        )
        elapsed, peak, code = done.stdout.split()
        if int(code) != 0:
            raise RuntimeError(f"{shlex.join(command)} exited {code}:\n{output.read()}")
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return Measured(float(elapsed), int(peak) / scale)


def time_in_process(template: Path, workers: int, runs_root: Path) -> Measured:
    from openjd_notebook import run_job

    started = time.perf_counter()
    result = run_job(template, workers=workers, runs_root=runs_root)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"run_job({template.name}) {result.state}: {result.error}")
    return Measured(elapsed)


def time_runner(runner: Runner, template: Path, runs_root: Path) -> Measured:
    command = runner.command(template)
    if command is None:
        return time_in_process(template, runner.workers, runs_root)
    return time_subprocess(command)


# ---- measuring -------------------------------------------------------------------------------

Key = tuple[str, str, int]


def _rounds(job: str, repeats: int) -> int:
    # Short jobs are mostly start-up, the noisiest part: give them more rounds.
    return repeats * 4 if job == "one" else repeats


def measure(
    templates: dict[str, Path], all_runners: list[Runner], repeats: int, runs_root: Path
) -> dict[Key, list[Measured]]:
    found: dict[Key, list[Measured]] = {}
    # Warm-up: bytecode caches for the whole processes, imports for the in-process runner.
    for runner in all_runners:
        time_runner(runner, templates["one"], runs_root)
    for job, template in templates.items():
        for round_number in range(_rounds(job, repeats)):
            order = all_runners if round_number % 2 == 0 else list(reversed(all_runners))
            if job != "cpu":  # workers cannot speed up a job of `true`s; only one worker counts
                order = [runner for runner in order if runner.workers == 1]
            for runner in order:
                measured = time_runner(runner, template, runs_root)
                found.setdefault((job, runner.label, runner.workers), []).append(measured)
                print(
                    f"  {job:4} {runner.label:22} w={runner.workers}: {measured.wall_s:6.2f} s",
                    file=sys.stderr,
                )
    return found


def measure_check(openjd: Path | None, template: Path, repeats: int) -> dict[str, float]:
    """Each CLI's `check`: start-up, parsing and validation, nothing run."""
    commands = {"openjd-notebook check": [str(OURS), "check", str(template)]}
    if openjd is not None:
        commands["openjd check"] = [str(openjd), "check", str(template)]
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeats):
        for label, command in commands.items():
            times[label].append(time_subprocess(command).wall_s)
    return {label: round(min(values), 3) for label, values in times.items()}


def _best(values: list[Measured]) -> Measured:
    walls = [value.wall_s for value in values]
    peaks = [value.peak_rss_mb for value in values if value.peak_rss_mb is not None]
    return Measured(min(walls), max(peaks) if peaks else None)


def summarize(times: dict[Key, list[Measured]], check: dict[str, float]) -> dict[str, Any]:
    best = {key: _best(values) for key, values in times.items()}
    rows = []
    for (job, label, workers), measured in best.items():
        reference = best.get((job, REFERENCE, 1))
        sequential = best.get((job, label, 1))
        rows.append(
            {
                "job": job,
                "runner": label,
                "workers": workers,
                "wall_s": round(measured.wall_s, 3),
                "vs_openjd_run": _ratio(measured.wall_s, reference and reference.wall_s),
                "peak_rss_mb": _rounded(measured.peak_rss_mb),
                "memory_vs_openjd_run": _ratio(
                    measured.peak_rss_mb, reference and reference.peak_rss_mb
                ),
                "speedup_vs_workers_1": _ratio(sequential and sequential.wall_s, measured.wall_s),
            }
        )
    return {"rows": rows, "check_s": check, "targets": targets(best, check)}


def _ratio(value: float | None, reference: float | None) -> float | None:
    return round(value / reference, 3) if value and reference else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _target(value: float | None, limit: float, kind: str) -> dict[str, Any] | None:
    if value is None:
        return None
    met = value <= limit if kind == "max" else value >= limit
    return {"value": value, "target": f"{'<=' if kind == 'max' else '>='} {limit}", "met": met}


def targets(best: dict[Key, Measured], check: dict[str, float]) -> dict[str, Any]:
    def ratio(job: str, label: str, memory: bool = False) -> float | None:
        ours, reference = best.get((job, label, 1)), best.get((job, REFERENCE, 1))
        if ours is None or reference is None:
            return None
        if memory:
            return _ratio(ours.peak_rss_mb, reference.peak_rss_mb)
        return _ratio(ours.wall_s, reference.wall_s)

    def speedup(label: str) -> float | None:
        one, two = best.get(("cpu", label, 1)), best.get(("cpu", label, 2))
        return _ratio(one.wall_s, two.wall_s) if one and two else None

    checks = check.get("openjd-notebook check"), check.get("openjd check")
    found = {
        f"{CLI} / {REFERENCE}, 1 task, wall": _target(ratio("one", CLI), ONE_TASK_TARGET, "max"),
        f"{CLI} / {REFERENCE}, {TRUE_TASKS} tasks, wall": _target(
            ratio("true", CLI), HUNDRED_TASKS_TARGET, "max"
        ),
        f"{CLI} / {REFERENCE}, 1 task, peak memory": _target(
            ratio("one", CLI, memory=True), MEMORY_TARGET, "max"
        ),
        f"{CLI} / {REFERENCE}, {TRUE_TASKS} tasks, peak memory": _target(
            ratio("true", CLI, memory=True), MEMORY_TARGET, "max"
        ),
        "openjd-notebook check / openjd check, wall": _target(_ratio(*checks), CHECK_TARGET, "max"),
        f"{IN_PROCESS} / {REFERENCE}, {TRUE_TASKS} tasks, wall": _target(
            ratio("true", IN_PROCESS), IN_PROCESS_TARGET, "max"
        ),
        f"{CLI} workers=2 speed-up (cpu job)": _target(speedup(CLI), SPEEDUP_TARGET, "min"),
        f"{IN_PROCESS} workers=2 speed-up (cpu job)": _target(
            speedup(IN_PROCESS), SPEEDUP_TARGET, "min"
        ),
    }
    return {name: target for name, target in found.items() if target is not None}


# ---- output ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def print_table(summary: dict[str, Any]) -> None:
    header = ["job", "runner", "workers", "wall s", "/ openjd run", "peak MB", "/ openjd run"]
    header.append("speed-up vs w=1")
    keys = ["job", "runner", "workers", "wall_s", "vs_openjd_run", "peak_rss_mb"]
    keys += ["memory_vs_openjd_run", "speedup_vs_workers_1"]
    table = [header] + [[_cell(row[k]) for k in keys] for row in summary["rows"]]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    print()
    check = ", ".join(f"{label} {s:.3f} s" for label, s in summary["check_s"].items())
    print(f"`check` of the 100-task template, best round: {check}\n")
    for name, target in summary["targets"].items():
        verdict = "met" if target["met"] else "NOT met"
        print(f"{name}: {target['value']:.3f} (target {target['target']}): {verdict}")


def describe(commands: dict[str, str], repeats: int) -> dict[str, Any]:
    return {
        "command": shlex.join([sys.executable, *sys.argv]),
        "timed_commands": commands,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repeats": repeats,
        "note": "openjd run and openjd-notebook run are timed as whole processes, start-up "
        "included; run_job is timed inside this process. Best round of each; the 1-task job "
        f"and `check` get {_rounds('one', repeats)} rounds.",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best counts")
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
        times = measure(templates, all_runners, args.repeats, directory / "runs")
        check = measure_check(openjd, templates["true"], _rounds("one", args.repeats))
        summary = summarize(times, check)
    if args.json:
        print(json.dumps({**info, **summary}, indent=2))
    else:
        print(f"\nPython {info['python']}, {info['cpus']} CPUs, best of {args.repeats} rounds.")
        print(f"{info['note']}\n")
        print_table(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
