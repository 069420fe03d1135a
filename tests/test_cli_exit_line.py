"""A failing action's ``Process pid N exited with code: C`` line in ``openjd-notebook run``'s output.

Every OpenJD runner prints that line, and tools (the conformance suite's runner among them) read
the failing action's exit code from it. The default output shows it only for a failing action,
right after the action's output; ``--verbose`` shows the whole log, which holds it once.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from openjd_notebook.progress import action_output

PY = sys.executable
CLI = str(Path(PY).with_name("openjd-notebook"))
EXIT_LINE = re.compile(r"^(?:\[worker-\d+\] )?Process pid \d+ exited with code: (-?\d+)\b")


def action(code: str) -> dict[str, Any]:
    return {"command": PY, "args": ["-c", code]}


def template(on_run: str, **environment_actions: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "ExitLine",
        "steps": [{"name": "S", "script": {"actions": {"onRun": action(on_run)}}}],
    }
    if environment_actions:
        actions = {name: action(code) for name, code in environment_actions.items()}
        body["jobEnvironments"] = [{"name": "Env", "script": {"actions": actions}}]
    return body


def run(tmp_path: Path, document: dict[str, Any], *options: str) -> tuple[int, list[str]]:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    done = subprocess.run(
        [CLI, "run", str(path), "--runs-root", str(tmp_path / "runs"), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def exit_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(index, code) of every exit line."""
    return [(i, m.group(1)) for i, line in enumerate(lines) if (m := EXIT_LINE.match(line))]


def test_failing_task_prints_its_exit_line_between_its_output_and_the_failure(
    tmp_path: Path,
) -> None:
    code, lines = run(tmp_path, template("print('hi'); raise SystemExit(3)"))
    assert code == 1
    [(index, exit_code)] = exit_lines(lines)
    assert exit_code == "3"
    assert lines[index - 1] == "hi" and lines[index + 1] == "S[0] failed: exit code 3"
    assert lines[index].endswith("exited with code: 3 (unsigned) / 0x3 (hex)")


def test_successful_actions_print_no_exit_line(tmp_path: Path) -> None:
    code, lines = run(
        tmp_path,
        template("print('task ran')", onEnter="print('entered')", onExit="print('exited')"),
    )
    assert code == 0
    assert {"entered", "task ran", "exited"} <= set(lines)
    assert exit_lines(lines) == []


@pytest.mark.parametrize(
    ("actions", "output", "expected"),
    [
        ({"onEnter": "print('entering'); raise SystemExit(5)"}, "entering", "5"),
        ({"onExit": "print('leaving'); raise SystemExit(6)"}, "leaving", "6"),
    ],
    ids=["onEnter", "onExit"],
)
def test_failing_environment_action_prints_its_exit_line(
    tmp_path: Path, actions: dict[str, str], output: str, expected: str
) -> None:
    code, lines = run(tmp_path, template("print('task ran')", **actions))
    assert code == 1
    [(index, exit_code)] = exit_lines(lines)
    assert exit_code == expected
    assert lines[index - 1] == output


def test_the_first_failing_action_is_the_first_exit_line(tmp_path: Path) -> None:
    # The task fails with 4, then the environment's onExit with 6: readers take the first.
    code, lines = run(tmp_path, template("raise SystemExit(4)", onExit="raise SystemExit(6)"))
    assert code == 1
    assert [exit_code for _, exit_code in exit_lines(lines)] == ["4", "6"]


def test_verbose_shows_each_exit_line_once(tmp_path: Path) -> None:
    code, lines = run(
        tmp_path, template("print('hi'); raise SystemExit(3)", onEnter="print('in')"), "--verbose"
    )
    assert code == 1
    # The whole log: the successful onEnter's line too, and the failing task's only once.
    assert [exit_code for _, exit_code in exit_lines(lines)] == ["0", "3"]


def test_several_workers_prefix_the_exit_line(tmp_path: Path) -> None:
    code, lines = run(tmp_path, template("raise SystemExit(9)"), "--workers", "2")
    assert code == 1
    [(index, exit_code)] = exit_lines(lines)
    assert exit_code == "9" and lines[index].startswith("[worker-")


def test_action_output_keeps_only_failed_exit_lines_when_asked() -> None:
    lines = [
        "Output:",
        "a",
        "Process pid 7 exited with code: 0 (unsigned) / 0x0 (hex)",
        "Output:",
        "b",
        "Process pid 8 exited with code: -9 (killed by SIGKILL)",
        "--------- Exiting Environment: Env",
    ]
    assert action_output(lines, False) == (["a", "b"], False)
    shown, inside = action_output(lines, False, failed_exits=True)
    assert (shown, inside) == (["a", "b", lines[5]], False)
