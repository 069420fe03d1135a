"""Run the same work through `openjd.sessions` 0.14 and `openjd_notebook.sessions`, print ratios.

Three measurements, each through the public API that both engines share:

- per-task time: 100 tasks of `true` in one session, against 100 bare `subprocess.run(["true"])`;
- log throughput: one action printing 200,000 lines, counted by a handler on the package's `LOG`;
- CPU: this process's own CPU time (children excluded) while one action runs `sleep 3`.

Engines alternate within each round (the order flips every round) and the best round counts,
because small machines are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import logging
import operator
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from openjd.model import (
    StepParameterSpaceIterator,
    create_job,
    decode_job_template,
    preprocess_job_parameters,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
ENGINE_MODULES = {"reference": "openjd.sessions", "ours": "openjd_notebook.sessions"}

TASK_COUNT = 100
LINE_COUNT = 200_000
LINE_PREFIX = "bench-line "
SLEEP_SECONDS = 3
SILENT_WINDOW = (0.5, 2.5)  # seconds after the action starts: the child is surely asleep

TASK_TIMEOUT = 30.0
THROUGHPUT_TIMEOUT = 180.0

COMPARE = {"<=": operator.le, ">=": operator.ge, "<": operator.lt}
TARGETS = {
    "per_task_overhead": ("<=", 1 / 3),
    "log_throughput": (">=", 3.0),
    "silent_cpu": ("<", 0.01),
}

PRINT_LINES = (
    f"import sys; sys.stdout.write(''.join('{LINE_PREFIX}%d\\n' % i for i in range({LINE_COUNT})))"
)


# --------------------------------------------------------------------------------------------
# The job: one step per measurement, built once and handed to both engines.


@dataclass(frozen=True)
class Workload:
    job: Any
    job_parameters: dict[str, Any]

    def step(self, name: str) -> Any:
        return next(step for step in self.job.steps if step.name == name)

    def tasks(self, name: str) -> list[dict[str, Any]]:
        return list(StepParameterSpaceIterator(space=self.step(name).parameterSpace))


def _step(name: str, command: str, args: list[str], tasks: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"command": command, **({"args": args} if args else {})}
    step: dict[str, Any] = {"name": name, "script": {"actions": {"onRun": action}}}
    if tasks is not None:
        parameter = {"name": "I", "type": "INT", "range": tasks}
        step["parameterSpace"] = {"taskParameterDefinitions": [parameter]}
    return step


def build_workload() -> Workload:
    template = decode_job_template(
        template={
            "name": "SessionsBenchmark",
            "specificationVersion": "jobtemplate-2023-09",
            "steps": [
                _step("PerTask", "true", [], f"1-{TASK_COUNT}"),
                _step("Throughput", sys.executable, ["-c", PRINT_LINES]),
                _step("Idle", "sleep", [str(SLEEP_SECONDS)]),
            ],
        }
    )
    parameters = preprocess_job_parameters(
        job_template=template,
        job_parameter_values={},
        job_template_dir=REPO_ROOT,
        current_working_dir=Path.cwd(),
    )
    job = create_job(job_template=template, job_parameter_values=parameters)
    return Workload(job=job, job_parameters=dict(parameters))


# --------------------------------------------------------------------------------------------
# Engines and the portable wait (callback + Event), identical for both.


@dataclass
class Engine:
    name: str
    module: ModuleType | None = None
    error: str | None = None

    @property
    def usable(self) -> bool:
        return self.module is not None and self.error is None


def load_engine(name: str) -> Engine:
    module_name = ENGINE_MODULES[name]
    if name == "ours" and importlib.util.find_spec("openjd_notebook") is None:
        sys.path.insert(0, str(REPO_ROOT / "src"))  # not installed and no PYTHONPATH=src
    try:
        return Engine(name, importlib.import_module(module_name))
    except Exception as exc:
        return Engine(name, error=f"import {module_name} failed: {exc!r}")


class ActionWaiter:
    """The README's pattern: the callback sets an Event once the action leaves RUNNING."""

    def __init__(self, running_state: Any) -> None:
        self._running = running_state
        self._done = threading.Event()
        self.status: Any = None

    def callback(self, session_id: str, status: Any) -> None:
        self.status = status
        if status.state != self._running:
            self._done.set()

    def clear(self) -> None:
        self._done.clear()

    def wait(self, timeout: float) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError(f"action still running after {timeout:.0f} s")
        return self.status


@contextlib.contextmanager
def open_session(engine: Engine, work: Workload, root: Path) -> Iterator[tuple[Any, ActionWaiter]]:
    module = _module(engine)
    waiter = ActionWaiter(module.ActionState.RUNNING)
    with module.Session(
        session_id=f"bench-{engine.name}",
        job_parameter_values=work.job_parameters,
        callback=waiter.callback,
        session_root_directory=root,
    ) as session:
        yield session, waiter


def start_task(session: Any, waiter: ActionWaiter, step: Any, params: dict[str, Any]) -> None:
    waiter.clear()
    session.run_task(step_script=step.script, task_parameter_values=params)


def finish_task(engine: Engine, session: Any, waiter: ActionWaiter, timeout: float) -> None:
    try:
        status = waiter.wait(timeout)
    except TimeoutError:
        with contextlib.suppress(Exception):
            session.cancel_action()
        raise
    if status.state != _module(engine).ActionState.SUCCESS:
        raise RuntimeError(f"action ended {status!r}")


def _module(engine: Engine) -> Any:
    if engine.module is None:
        raise RuntimeError(engine.error or f"{engine.name} is not loaded")
    return engine.module


@contextlib.contextmanager
def info_level(log: logging.Logger) -> Iterator[None]:
    """Both engines log at INFO; the reference sets that level at import, so pin it for both."""
    previous = log.level
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.setLevel(previous)


# --------------------------------------------------------------------------------------------
# Measurements. Each returns plain numbers; the round loop keeps the best.


def time_bare_tasks() -> float:
    start = time.perf_counter()
    for _ in range(TASK_COUNT):
        subprocess.run(["true"], check=True)
    return (time.perf_counter() - start) / TASK_COUNT


def time_engine_tasks(engine: Engine, work: Workload, root: Path) -> float:
    step, tasks = work.step("PerTask"), work.tasks("PerTask")
    with open_session(engine, work, root) as (session, waiter):
        start = time.perf_counter()
        for params in tasks:
            start_task(session, waiter, step, params)
            finish_task(engine, session, waiter, TASK_TIMEOUT)
        elapsed = time.perf_counter() - start
    return elapsed / len(tasks)


class LineCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(LINE_PREFIX):
            self.lines += 1


def measure_bare_throughput() -> float:
    start = time.perf_counter()
    with subprocess.Popen([sys.executable, "-c", PRINT_LINES], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        lines = sum(1 for _ in proc.stdout)
    elapsed = time.perf_counter() - start
    return lines / elapsed


def measure_throughput(engine: Engine, work: Workload, root: Path) -> tuple[float, int]:
    """Lines per second from run_task to the terminal callback, and lines the handler saw."""
    log: logging.Logger = _module(engine).LOG
    counter = LineCounter()
    with info_level(log), open_session(engine, work, root) as (session, waiter):
        log.addHandler(counter)
        try:
            start = time.perf_counter()
            start_task(session, waiter, work.step("Throughput"), {})
            finish_task(engine, session, waiter, THROUGHPUT_TIMEOUT)
            elapsed = time.perf_counter() - start
        finally:
            log.removeHandler(counter)
    return LINE_COUNT / elapsed, counter.lines


def measure_idle_cpu(engine: Engine, work: Workload, root: Path) -> tuple[float, float]:
    """CPU seconds of this process for the whole `sleep` action, and within the silent window."""
    with open_session(engine, work, root) as (session, waiter):
        cpu_start, started = time.process_time(), time.monotonic()
        start_task(session, waiter, work.step("Idle"), {})
        _sleep_until(started + SILENT_WINDOW[0])
        cpu_window_start = time.process_time()
        _sleep_until(started + SILENT_WINDOW[1])
        cpu_window = time.process_time() - cpu_window_start
        finish_task(engine, session, waiter, TASK_TIMEOUT)
        cpu_action = time.process_time() - cpu_start
    return cpu_action, cpu_window


def _sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


# --------------------------------------------------------------------------------------------
# Rounds: engines alternate inside each round; errors are recorded, never raised.


@dataclass
class Results:
    bare_task: list[float] = field(default_factory=list)
    bare_lines_per_s: list[float] = field(default_factory=list)
    task: dict[str, list[float]] = field(default_factory=dict)
    lines_per_s: dict[str, list[float]] = field(default_factory=dict)
    lines_seen: dict[str, list[int]] = field(default_factory=dict)
    cpu_action: dict[str, list[float]] = field(default_factory=dict)
    cpu_silent: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _guarded(results: Results, engine: Engine, what: str, fn: Any, *args: Any) -> Any:
    if not engine.usable:
        return None
    try:
        return fn(engine, *args)
    except Exception as exc:
        results.errors[f"{engine.name}.{what}"] = repr(exc)
        if what == "warm_up" or isinstance(exc, TimeoutError):
            engine.error = f"{what} failed: {exc!r}"  # broken or hanging: skip the rest
        return None


def warm_up(engine: Engine, work: Workload, root: Path) -> None:
    step, params = work.step("PerTask"), work.tasks("PerTask")[0]
    with open_session(engine, work, root) as (session, waiter):
        start_task(session, waiter, step, params)
        finish_task(engine, session, waiter, TASK_TIMEOUT)


def run_round(results: Results, engines: list[Engine], work: Workload, root: Path) -> None:
    results.bare_task.append(time_bare_tasks())
    results.bare_lines_per_s.append(measure_bare_throughput())
    for engine in engines:
        value = _guarded(results, engine, "per_task", time_engine_tasks, work, root)
        if value is not None:
            results.task.setdefault(engine.name, []).append(value)
    for engine in engines:
        pair = _guarded(results, engine, "throughput", measure_throughput, work, root)
        if pair is not None:
            results.lines_per_s.setdefault(engine.name, []).append(pair[0])
            results.lines_seen.setdefault(engine.name, []).append(pair[1])


def run_idle(results: Results, engines: list[Engine], work: Workload, root: Path) -> None:
    for engine in engines:
        pair = _guarded(results, engine, "idle_cpu", measure_idle_cpu, work, root)
        if pair is not None:
            results.cpu_action.setdefault(engine.name, []).append(pair[0])
            results.cpu_silent.setdefault(engine.name, []).append(pair[1])


def run_all(engines: list[Engine], repeats: int) -> Results:
    results = Results()
    work = build_workload()
    with tempfile.TemporaryDirectory(prefix="openjd-bench-") as tmp:
        root = Path(tmp)
        for engine in engines:
            _guarded(results, engine, "warm_up", warm_up, work, root)
        for i in range(repeats):
            run_round(results, engines if i % 2 == 0 else engines[::-1], work, root)
        run_idle(results, engines, work, root)
    return results


# --------------------------------------------------------------------------------------------
# Summary: best of the rounds, ratios ours/reference, targets.


def _best_low(values: list[float] | None) -> float | None:
    return min(values) if values else None


def _best_high(values: list[float] | None) -> float | None:
    return max(values) if values else None


def _ratio(ours: float | None, reference: float | None) -> float | None:
    if ours is None or reference is None or reference <= 0:
        return None
    return ours / reference


def _minus(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def summarize(results: Results, engines: list[Engine]) -> dict[str, Any]:
    bare = _best_low(results.bare_task)
    task = {e.name: _best_low(results.task.get(e.name)) for e in engines}
    overhead = {name: _minus(value, bare) for name, value in task.items()}
    lines = {e.name: _best_high(results.lines_per_s.get(e.name)) for e in engines}
    action = {e.name: _best_low(results.cpu_action.get(e.name)) for e in engines}
    silent = {e.name: _best_low(results.cpu_silent.get(e.name)) for e in engines}
    rows = {
        "per_task_ms": _row(_ms(bare), {k: _ms(v) for k, v in task.items()}),
        "per_task_overhead_ms": _row(None, {k: _ms(v) for k, v in overhead.items()}),
        "log_throughput_lines_per_s": _row(_best_high(results.bare_lines_per_s), lines),
        "cpu_s_whole_sleep_action": _row(None, action),
        "cpu_s_silent_window": _row(None, silent),
    }
    return {
        "rows": rows,
        "lines_received": {e.name: results.lines_seen.get(e.name) for e in engines},
        "warnings": line_warnings(results.lines_seen),
        "targets": _targets(rows),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _row(bare: float | None, values: dict[str, float | None]) -> dict[str, float | None]:
    row: dict[str, float | None] = {"bare": bare, **values}
    row["ratio"] = _ratio(values.get("ours"), values.get("reference"))
    return row


def _targets(rows: dict[str, dict[str, float | None]]) -> dict[str, dict[str, Any]]:
    measured = {
        "per_task_overhead": rows["per_task_overhead_ms"]["ratio"],
        "log_throughput": rows["log_throughput_lines_per_s"]["ratio"],
        "silent_cpu": rows["cpu_s_silent_window"]["ratio"],
    }
    return {name: _target(measured[name], *TARGETS[name]) for name in TARGETS}


def _target(ratio: float | None, op: str, bound: float) -> dict[str, Any]:
    met = None if ratio is None else COMPARE[op](ratio, bound)
    return {"ratio": ratio, "target": f"{op} {bound:.3g}", "met": met}


# --------------------------------------------------------------------------------------------
# Output.


def command_line() -> str:
    python = sys.executable
    if Path(python).is_relative_to(Path.cwd()):
        python = os.path.relpath(python)
    command = shlex.join([python, *sys.argv])
    pythonpath = os.environ.get("PYTHONPATH")
    return f"PYTHONPATH={shlex.quote(pythonpath)} {command}" if pythonpath else command


def describe(engines: list[Engine], repeats: int) -> dict[str, Any]:
    return {
        "command": command_line(),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}",
        "repeats": repeats,
        "engines": {e.name: _engine_info(e) for e in engines},
    }


def _engine_info(engine: Engine) -> str:
    if engine.module is None:
        return f"{ENGINE_MODULES[engine.name]}: not loaded"
    version = getattr(engine.module, "version", getattr(engine.module, "__version__", "?"))
    return f"{engine.module.__name__} {version} ({engine.module.__file__})"


ROW_LABELS = {
    "per_task_ms": f"per-task time, ms ({TASK_COUNT} x true)",
    "per_task_overhead_ms": "per-task overhead, ms above bare",
    "log_throughput_lines_per_s": f"log throughput, lines/s ({LINE_COUNT:,} lines)",
    "cpu_s_whole_sleep_action": f"CPU s, whole `sleep {SLEEP_SECONDS}` action",
    "cpu_s_silent_window": "CPU s, {:g}-{:g} s into the sleep (silent)".format(*SILENT_WINDOW),
}
ROW_TARGETS = {
    "per_task_overhead_ms": "per_task_overhead",
    "log_throughput_lines_per_s": "log_throughput",
    "cpu_s_silent_window": "silent_cpu",
}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def render_table(header: dict[str, Any], summary: dict[str, Any], errors: dict[str, str]) -> str:
    lines = [f"machine: {header['machine']}"]
    lines += [f"{name}: {info}" for name, info in header["engines"].items()]
    lines += [f"best of {header['repeats']} rounds (engines alternate); CPU once per engine", ""]
    columns = ("measurement", "bare", "reference", "ours", "ours/ref", "target", "met")
    lines.append(_table_line(columns))
    for key, row in summary["rows"].items():
        lines.append(_table_line(_table_cells(key, row, summary["targets"])))
    lines += _warnings(summary, errors)
    return "\n".join(lines)


def _table_cells(key: str, row: dict[str, Any], targets: dict[str, Any]) -> tuple[str, ...]:
    target = targets.get(ROW_TARGETS.get(key, ""), {})
    met = {True: "yes", False: "NO", None: "-"}[target.get("met")]
    values = (row["bare"], row.get("reference"), row.get("ours"), row["ratio"])
    return (ROW_LABELS[key], *map(_fmt, values), target.get("target", ""), met if target else "")


def _table_line(cells: tuple[str, ...]) -> str:
    widths = (46, 10, 10, 10, 9, 9, 4)
    first = cells[0].ljust(widths[0])
    rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
    return first + "".join(rest)


def _warnings(summary: dict[str, Any], errors: dict[str, str]) -> list[str]:
    out = [f"WARNING: {warning}" for warning in summary["warnings"]]
    out += [f"ERROR {where}: {message}" for where, message in errors.items()]
    return ["", *out] if out else []


def line_warnings(lines_seen: dict[str, list[int]]) -> list[str]:
    """All lines must reach the handler; a shortfall is reported, not raised."""
    return [
        f"{name} delivered {seen} of {LINE_COUNT:,} lines to the handler (per round)"
        for name, seen in lines_seen.items()
        if any(count != LINE_COUNT for count in seen)
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("reference", "ours", "both"), default="both")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best counts")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    names = ["reference", "ours"] if args.only == "both" else [args.only]
    engines = [load_engine(name) for name in names]
    header = describe(engines, args.repeats)
    if not args.json:
        print(f"$ {header['command']}", flush=True)
    results = run_all(engines, args.repeats)
    errors = {f"{e.name}.import": e.error for e in engines if e.module is None and e.error}
    errors |= results.errors
    summary = summarize(results, engines)
    if args.json:
        print(json.dumps({**header, **summary, "errors": errors}, indent=2))
    else:
        print(render_table(header, summary, errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
