"""Run records that are broken or tampered with: runs() skips and reports them, load_run says
what is wrong, and logs are never read from outside the record.

Every case uses real files: a FIFO, links to /dev/zero and /etc/passwd, deep nesting, sparse
files past the size limit.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from openjd_notebook import Template, load_run, run_job, runs
from openjd_notebook.jobs.records import MAX_RECORD_BYTES, RunRecordError
from openjd_notebook.jobs.results import LogNotAvailableError, read_log_file

JOB = Template.from_text(
    yaml.safe_dump(
        {
            "specificationVersion": "jobtemplate-2023-09",
            "name": "Echo",
            "jobEnvironments": [
                {"name": "Env", "script": {"actions": {"onEnter": {"command": "true"}}}}
            ],
            "steps": [
                {
                    "name": "Say",
                    "parameterSpace": {
                        "taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-2"}]
                    },
                    "script": {
                        "actions": {
                            "onRun": {"command": "/bin/echo", "args": ["said {{Task.Param.N}}"]}
                        }
                    },
                }
            ],
        }
    )
)


@pytest.fixture
def record(tmp_path: Path) -> Path:
    """A real, good record under tmp_path/runs."""
    (tmp_path / "sessions").mkdir()
    result = run_job(JOB, runs_root=tmp_path / "runs", session_root=tmp_path / "sessions")
    assert result.ok and result.run_dir is not None
    return result.run_dir


def bad_record(root: Path, name: str) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    return directory / "run.json"


def listed_within(seconds: float, root: Path) -> Any:
    """runs(root) on a thread; fails (instead of hanging the suite) if it blocks."""
    answer: list[Any] = []
    thread = threading.Thread(target=lambda: answer.append(runs(root)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"runs() still blocked after {seconds} s"
    return answer[0]


# ---- runs() skips what is not a record and says so -------------------------------------------


def test_a_fifo_as_run_json_neither_hangs_runs_nor_load_run(record: Path) -> None:
    fifo = bad_record(record.parent, "fifo")
    os.mkfifo(fifo)
    with pytest.warns(UserWarning, match="FIFO"):
        frame = listed_within(5, record.parent)
    assert frame["path"].tolist() == [record]
    assert "FIFO" in frame.attrs["skipped"][str(fifo)]
    with pytest.raises(RunRecordError, match="FIFO"):
        load_run(fifo.parent)


def test_a_fifo_as_the_task_journal_of_a_running_record_does_not_hang(record: Path) -> None:
    tamper(record, lambda body: body.update(state="running"))
    os.mkfifo(record / "tasks.jsonl")
    frame = listed_within(5, record.parent)
    assert frame[["state", "tasks"]].values.tolist() == [["running", 0]]


def test_a_link_to_dev_zero_is_refused_without_reading_it(record: Path) -> None:
    zero = bad_record(record.parent, "zero")
    zero.symlink_to("/dev/zero")
    with pytest.warns(UserWarning, match="character device"):
        frame = listed_within(5, record.parent)
    assert frame["path"].tolist() == [record]
    with pytest.raises(RunRecordError, match="character device"):
        load_run(zero)


def test_a_run_json_over_the_size_limit_is_refused_unread(record: Path) -> None:
    huge = bad_record(record.parent, "huge")
    with huge.open("wb") as file:
        file.truncate(MAX_RECORD_BYTES + 1)  # sparse: no disk used
    with pytest.warns(UserWarning, match="over the limit"):
        frame = listed_within(5, record.parent)
    assert frame["path"].tolist() == [record]
    with pytest.raises(RunRecordError, match="over the limit"):
        load_run(huge.parent)


def test_deep_nesting_is_a_bad_record_not_a_crash(record: Path) -> None:
    deep = bad_record(record.parent, "deep")
    deep.write_text("[" * 100_000 + "]" * 100_000)
    nested_field = bad_record(record.parent, "nested-field")
    body = json.loads((record / "run.json").read_text())
    text = json.dumps(body)
    nested_field.write_text(
        text.replace(
            '"parameters": {', '"deep": ' + "[" * 100_000 + "]" * 100_000 + ', "parameters": {', 1
        )
    )
    with pytest.warns(UserWarning, match="nested too deeply"):
        frame = listed_within(10, record.parent)
    assert frame["path"].tolist() == [record]
    assert set(frame.attrs["skipped"]) == {str(deep), str(nested_field)}
    for path in (deep, nested_field):
        with pytest.raises(RunRecordError, match="nested too deeply"):
            load_run(path)


WRONG_TYPES: dict[str, Callable[[dict[str, Any]], None]] = {
    "started is a number": lambda b: b.update(started=20250101),
    "state is a list": lambda b: b.update(state=["success"]),
    "tasks is text": lambda b: b.update(tasks="lots"),
    "a task row is a number": lambda b: b["tasks"].append(7),
    "a task index is text": lambda b: b["tasks"][0].update(task="first"),
    "a task state is unknown": lambda b: b["tasks"][0].update(state="exploded"),
    "a task parameter is a list": lambda b: b["tasks"][0].update(parameters={"N": [1]}),
    "duration is text": lambda b: b.update(duration_s="long"),
    "template is a list": lambda b: b.update(template=["t"]),
    "not_run is negative": lambda b: b.update(not_run={"Say": -1}),
    "parameter columns are text": lambda b: b.update(parameter_columns={"Say": "N"}),
    "an environment scope is unknown": lambda b: b["environments"][0].update(scope="galaxy"),
}


def test_records_of_the_wrong_types_are_skipped_one_by_one(record: Path) -> None:
    good = json.loads((record / "run.json").read_text())
    broken = {}
    for number, (problem, spoil) in enumerate(WRONG_TYPES.items()):
        body = json.loads(json.dumps(good))
        spoil(body)
        path = bad_record(record.parent, f"bad-{number}")
        path.write_text(json.dumps(body))
        broken[str(path)] = problem
    with pytest.warns(UserWarning) as warned:
        frame = runs(record.parent)
    assert frame["path"].tolist() == [record]  # the one good record is still listed
    assert set(frame.attrs["skipped"]) == set(broken)
    assert len(warned) == len(broken)
    for path, problem in broken.items():
        assert any(path in str(w.message) for w in warned), problem
    # load_run says what is wrong with each (a listing row needs fewer fields than a result).
    for path, problem in broken.items():
        if problem in ("duration is text", "template is a list"):
            continue
        with pytest.raises(RunRecordError, match=r"malformed run record|not a"):
            load_run(path)


def test_a_directory_without_run_json_is_passed_over_quietly(record: Path, recwarn: Any) -> None:
    (record.parent / "notes").mkdir()
    (record.parent / "stray.txt").write_text("x")
    assert runs(record.parent)["path"].tolist() == [record]
    assert not recwarn.list


# ---- logs stay inside the record -------------------------------------------------------------


def tamper(record: Path, change: Callable[[dict[str, Any]], None]) -> None:
    body = json.loads((record / "run.json").read_text())
    change(body)
    (record / "run.json").write_text(json.dumps(body))


def set_task_log(path: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["tasks"][0].update(log_path=path)


@pytest.mark.parametrize("log_path", ["/etc/passwd", "../../../../../../../../etc/passwd"])
def test_a_log_path_outside_the_record_is_refused(record: Path, log_path: str) -> None:
    tamper(record, set_task_log(log_path))
    loaded = load_run(record)
    with pytest.raises(LogNotAvailableError, match="outside the record directory"):
        loaded.log("Say", 0)
    with pytest.raises(LogNotAvailableError, match="outside the record directory"):
        loaded.output("Say", 0)
    assert "said 2" in loaded.log("Say", 1)  # the untouched row still reads


def test_a_link_inside_the_record_that_leads_out_is_refused(record: Path) -> None:
    (record / "logs" / "escape.log").symlink_to("/etc/passwd")
    (record / "logs" / "up").symlink_to(record.parent.parent)
    tamper(record, set_task_log("logs/escape.log"))
    with pytest.raises(LogNotAvailableError, match="outside the record directory"):
        load_run(record).log("Say", 0)
    tamper(record, set_task_log("logs/up/etc/passwd"))
    with pytest.raises(LogNotAvailableError):
        load_run(record).log("Say", 0)
    # A link that stays inside is just another name for a log of the record.
    (record / "logs" / "same.log").symlink_to(record / "logs" / "Say" / "task-0001.log")
    tamper(record, set_task_log("logs/same.log"))
    assert "said 2" in load_run(record).log("Say", 0)


def test_an_environment_log_path_is_checked_too(record: Path) -> None:
    tamper(record, lambda body: body["environments"][0].update(log_path="/etc/passwd"))
    with pytest.raises(LogNotAvailableError, match="outside the record directory"):
        load_run(record).environment_log("Env")


def test_a_log_that_is_a_fifo_or_a_directory_is_refused_without_blocking(record: Path) -> None:
    os.mkfifo(record / "logs" / "pipe.log")
    tamper(record, set_task_log("logs/pipe.log"))
    answer: list[BaseException] = []

    def read() -> None:
        try:
            load_run(record).log("Say", 0)
        except LogNotAvailableError as error:
            answer.append(error)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "reading a FIFO as a log blocked"
    assert answer and "not a regular file" in str(answer[0])
    tamper(record, set_task_log("logs"))
    with pytest.raises(LogNotAvailableError, match=r"not a regular file|cannot be opened"):
        load_run(record).log("Say", 0)


def test_a_log_past_the_limit_reads_as_its_tail(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "big.log"
    log.parent.mkdir()
    log.write_text("".join(f"line {n}\n" for n in range(1000)))
    text = read_log_file(tmp_path, "logs/big.log", "a task", limit=100)
    first, *rest = text.splitlines()
    assert first.startswith("[... the first ") and str(log) in first
    assert rest[-1] == "line 999" and all(line.startswith("line ") for line in rest)
    assert len("\n".join(rest)) < 100
    assert read_log_file(tmp_path, "logs/big.log", "a task").count("\n") == 1000
