"""The ipywidgets dashboard outside a kernel, fed by real runs.

Widgets work without a kernel (their comms are inert), so these tests read widget values
directly. ``IPython.display.display`` is replaced by a spy that records what would have been
shown; the real-kernel message budget is tested with the magics.
"""

from __future__ import annotations

import html
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import comm
import IPython.display
import pytest
import yaml
from comm import DummyComm

from openjd_notebook import Template, start_job
from openjd_notebook.jobs import JobResult
from openjd_notebook.notebook.dashboard import Dashboard
from openjd_notebook.notebook.views import SummaryView, ViewOptions

FAST = ViewOptions(refresh_s=0.1)
# A task that reports progress and status, then waits (ignoring SIGTERM) until killed.
STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('openjd_progress: 45', flush=True)\n"
    "print('openjd_status: rendering tile 3', flush=True)\n"
    "time.sleep(60)\n"
)


def py(code: str, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-c", code], **extra}


def frames(count: int, code: str, name: str = "Render", **step: Any) -> dict[str, Any]:
    return {
        "name": name,
        "parameterSpace": {
            "taskParameterDefinitions": [{"name": "Frame", "type": "INT", "range": f"1-{count}"}]
        },
        "script": {"actions": {"onRun": py(code)}},
        **step,
    }


def template(*steps: dict[str, Any]) -> Template:
    document = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "Test Job",
        "steps": list(steps),
    }
    return Template.from_text(yaml.safe_dump(document, sort_keys=False))


def stubborn_step(notify: int = 30) -> dict[str, Any]:
    cancelation = {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": notify}
    step = frames(1, STUBBORN)
    step["script"] = {"actions": {"onRun": py(STUBBORN, cancelation=cancelation)}}
    return step


@dataclass
class DisplaySpy:
    """Records ``display`` calls and the ``update`` calls on the handles it returns."""

    displays: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    def display(self, *objects: Any, **options: Any) -> Any:
        self.displays.append((objects, options))
        return _Handle(self) if options.get("display_id") else None


@dataclass
class _Handle:
    spy: DisplaySpy

    def update(self, obj: Any, **options: Any) -> None:
        self.spy.updates.append((obj, options))


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> DisplaySpy:
    spy = DisplaySpy()
    monkeypatch.setattr(IPython.display, "display", spy.display)
    return spy


@pytest.fixture
def widget_messages(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts what widgets would send to a frontend: comm_open and comm_msg."""
    sent: Counter[str] = Counter()

    class CountingComm(DummyComm):
        def publish_msg(self, msg_type: str, *args: Any, **kwargs: Any) -> None:
            sent[msg_type] += 1

    monkeypatch.setattr(comm, "create_comm", CountingComm)
    return sent


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "sessions").mkdir()
    return {"runs_root": tmp_path / "runs", "session_root": tmp_path / "sessions"}


@pytest.fixture(autouse=True)
def no_dashboard_thread_left() -> Iterator[None]:
    yield
    left = [t for t in threading.enumerate() if t.name == "openjd-dashboard"]
    for thread in left:
        thread.join(5)
    assert not any(t.is_alive() for t in left), "a dashboard UI thread outlived its run"


def run_with(view: Dashboard, job: Template, **options: Any) -> JobResult:
    run = start_job(job, on_event=view.handle, **options)
    view.bind(run)
    result = run.wait()
    view.finish(result)
    return result


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, "condition not met in time"
        time.sleep(0.02)


def log_lines(view: Dashboard) -> list[str]:
    match = re.search(r"<pre[^>]*>(.*)</pre>", view.widgets.log.value, re.DOTALL)
    text = re.sub(r"<[^>]+>", "", match.group(1)) if match else ""  # the dimming spans
    return html.unescape(text).split("\n") if match else []


def table_rows(view: Dashboard) -> list[str]:
    return re.findall(r"<tr title=.*?</tr>", view.widgets.table.value)


def bars(view: Dashboard) -> dict[str, tuple[int, int, str]]:
    return {bar.description: (bar.value, bar.max, bar.bar_style) for bar, _ in view.widgets.bars}


def test_a_successful_run_fills_the_dashboard_then_leaves_a_static_summary(
    shown: DisplaySpy, roots: dict[str, Any]
) -> None:
    render = "for i in range(300): print('frame {{Task.Param.Frame}} line', i, '<&>')"
    job = template(
        frames(4, render),
        frames(1, "print('encoded')", name="Encode", dependencies=[{"dependsOn": "Render"}]),
    )
    view = Dashboard("Test Job", FAST)
    assert len(shown.displays) == 1
    objects, options = shown.displays[0]
    assert objects == (view.widgets.box,) and options == {"display_id": True}

    result = run_with(view, job, **roots)
    assert result.state == "success"
    assert bars(view) == {"Render": (4, 4, "success"), "Encode": (1, 1, "success")}
    render, encode = (counts.value for _, counts in view.widgets.bars)
    assert re.fullmatch(r"4/4 · 100% · [\d.]+ (tasks/s|s/task)", render), render
    assert encode.startswith("1/1 · 100% · ")
    header = view.widgets.header.value
    assert "<b>Test Job</b>" in header and "success" in header and "stop button" not in header
    assert view.widgets.running.value == ""

    lines = log_lines(view)
    assert len(lines) == 200 and lines[-1] == "encoded"
    assert lines[-2] == "frame 4 line 299 <&>"  # escaped in the HTML, intact as text
    assert "&lt;&amp;&gt;" in view.widgets.log.value
    assert not any(line.startswith(("Output:", "Process pid")) for line in lines)
    assert "last 200 of 1201 lines" in view.widgets.log.value
    assert str(result.run_dir) in view.widgets.log.value

    rows = table_rows(view)
    assert len(rows) == 5 and all(">success<" in row for row in rows)
    assert re.search(r">Render</td><td[^>]*>3</td><td[^>]*>Frame=4</td>", rows[3])
    assert "Tasks: 5 ended (5 success), 0 running" in view.widgets.table.value

    assert len(shown.updates) == 1
    bundle, options = shown.updates[0]
    assert options == {"raw": True}
    assert set(bundle) == {"text/html", "text/plain"}  # no widget: a saved notebook keeps it
    assert "success" in bundle["text/html"] and "<table" in bundle["text/html"]
    assert "Render" in bundle["text/html"] and "Encode" in bundle["text/html"]
    assert bundle["text/plain"].startswith("Test Job: success | 5 tasks: 5 success")
    assert "Render" in bundle["text/plain"]

    view.finish(result)  # a second call changes nothing
    assert len(shown.updates) == 1


def test_a_failed_step_turns_red_and_stays_red(shown: DisplaySpy, roots: dict[str, Any]) -> None:
    # Frame 1 fails fast; frame 2 ignores the cancel that follows and ends on its own later.
    code = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "f = {{Task.Param.Frame}}; time.sleep(0.2 if f == 1 else 1.5); sys.exit(3 if f == 1 else 0)"
    )
    step = frames(2, code)
    cancelation = {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 30}
    step["script"] = {"actions": {"onRun": py(code, cancelation=cancelation)}}
    view = Dashboard("Test Job", FAST)
    styles: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.01):
            styles.extend(style for _, _, style in bars(view).values())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run_with(view, template(step), workers=2, cancel_grace=10, **roots)
    finally:
        done.set()
        watcher.join()
    assert result.state == "failed"
    assert bars(view)["Render"][2] == "danger"
    first_red = styles.index("danger")
    assert set(styles[first_red:]) == {"danger"}
    counts = view.widgets.bars[0][1].value
    assert "1 failed" in counts and "#c62828" in counts
    assert "failed" in view.widgets.header.value
    assert any(">failed<" in row and ">3<" in row for row in table_rows(view))
    bundle = shown.updates[0][0]
    assert "failed" in bundle["text/plain"] and "failed" in bundle["text/html"]


def test_tasks_that_did_not_run_show_as_a_count(shown: DisplaySpy, roots: dict[str, Any]) -> None:
    code = "import sys; sys.exit(3 if {{Task.Param.Frame}} == 1 else 0)"
    view = Dashboard("Test Job", FAST)
    result = run_with(view, template(frames(6, code)), **roots)
    assert result.not_run == {"Render": 5}
    counts = view.widgets.bars[0][1].value
    assert re.search(r"1/6 · 16% · [\d.]+ (tasks/s|s/task) · 1 failed, 5 not run", counts), counts
    assert "Tasks: 1 ended (1 failed), 0 running, 5 not run" in view.widgets.table.value
    assert len(table_rows(view)) == 1  # rows only for what ran
    bundle = shown.updates[0][0]
    assert "6 tasks: 1 failed, 5 not run" in bundle["text/plain"]
    assert "ETA" not in counts and "left" not in counts  # a failure stops new work: no estimate
    assert "not run: 5 of Render" in bundle["text/html"]


def test_running_tasks_show_progress_and_status_and_interrupts_show_in_the_header(
    shown: DisplaySpy, roots: dict[str, Any]
) -> None:
    view = Dashboard("Test Job", FAST)
    run = start_job(template(stubborn_step()), on_event=view.handle, cancel_grace=20, **roots)
    view.bind(run)
    wait_until(lambda: "rendering tile 3" in view.widgets.running.value)
    running = view.widgets.running.value
    assert "worker-1: Render[0] Frame=1 · 45% · rendering tile 3" in running
    assert "<progress value='45' max='100'" in running
    assert "stop button = cancel, twice = kill" in view.widgets.header.value

    view.show_cancel(force=False, grace_s=20)
    wait_until(lambda: "canceling" in view.widgets.header.value)
    header = view.widgets.header.value
    assert re.search(r"canceling, (20|19) s left before kill", header)
    # While the countdown runs the header says how to kill now, not the general hint.
    assert "press &#9632; again to kill now" in header and "twice" not in header
    run.cancel()
    view.show_cancel(force=True, grace_s=20)
    wait_until(lambda: "killing" in view.widgets.header.value)
    run.cancel(force=True)

    result = run.wait()
    view.finish(result)
    assert result.state == "canceled"
    assert bars(view)["Render"] == (1, 1, "warning")
    assert "canceled" in view.widgets.header.value and view.widgets.running.value == ""
    assert "canceled" in shown.updates[0][0]["text/plain"]


def test_a_no_block_run_has_a_cancel_button_and_replaces_itself_at_the_end(
    shown: DisplaySpy, roots: dict[str, Any]
) -> None:
    view = Dashboard("Test Job", ViewOptions(refresh_s=0.1, blocking=False))
    button = view.widgets.button
    assert button is not None and button in view.widgets.box.children
    assert (button.description, button.disabled) == ("Cancel", False)
    assert "Cancel button = cancel, twice = kill" in view.widgets.header.value
    run = start_job(template(stubborn_step()), on_event=view.handle, cancel_grace=20, **roots)
    view.bind(run)
    wait_until(lambda: "rendering tile 3" in view.widgets.running.value)

    button.click()  # graceful: the task ignores SIGTERM and has 20 s
    wait_until(lambda: button.description == "Kill now")
    assert "canceling" in view.widgets.header.value
    assert run.state.value == "canceling"
    button.click()
    result = run.wait()
    assert result.state == "canceled"

    wait_until(lambda: len(shown.updates) == 1)  # the dashboard finished itself on RunEnded
    assert "canceled" in shown.updates[0][0]["text/plain"]
    assert button.disabled
    view.finish(result)  # the magics may call it too
    assert len(shown.updates) == 1


def test_ten_thousand_lines_cost_fewer_than_a_hundred_widget_messages(
    shown: DisplaySpy, widget_messages: Counter[str], roots: dict[str, Any]
) -> None:
    code = "import time\nfor i in range(10000):\n    print('line', i)\n    if i % 1000 == 0: time.sleep(0.2)"
    job = template(frames(1, code, name="Print"))
    view = Dashboard("Test Job", ViewOptions())
    started = time.monotonic()
    result = run_with(view, job, **roots)
    assert result.state == "success" and time.monotonic() - started > 2
    assert log_lines(view)[-1] == "line 9999"
    total = widget_messages["comm_open"] + widget_messages["comm_msg"]
    assert 0 < total < 100, widget_messages
    assert widget_messages["comm_open"] <= 12  # shared layout and styles, few widgets


def test_a_run_that_fails_before_starting_still_ends_with_a_summary(
    shown: DisplaySpy, roots: dict[str, Any], tmp_path: Path
) -> None:
    view = Dashboard("Test Job", FAST)
    # Bad input raises at start_job; what can still fail is the record (here: the runs
    # root is a file, so no record directory can be made in it).
    blocked = tmp_path / "runs-is-a-file"
    blocked.write_text("")
    options = {**roots, "runs_root": blocked}
    result = run_with(view, template(frames(1, "print(1)")), **options)
    assert result.state == "failed" and view.widgets.bars == []
    assert "failed" in view.widgets.header.value
    assert "failed" in shown.updates[0][0]["text/plain"]


def test_quiet_shows_a_placeholder_then_only_the_summary(
    shown: DisplaySpy, roots: dict[str, Any]
) -> None:
    view = SummaryView("Test Job", ViewOptions(quiet=True), rich=True)
    run = start_job(template(frames(2, "print('hi')")), on_event=view.handle, **roots)
    view.bind(run)
    result = run.wait()
    view.finish(result)
    view.finish(result)
    assert [options for _, options in shown.displays] == [{"raw": True, "display_id": True}]
    assert shown.displays[0][0] == ({"text/plain": "Test Job: running"},)
    assert len(shown.updates) == 1 and set(shown.updates[0][0]) == {"text/html", "text/plain"}


def test_the_end_closes_every_widget_after_the_summary_replaced_them(
    shown: DisplaySpy, widget_messages: Counter[str], roots: dict[str, Any]
) -> None:
    view = Dashboard("Test Job", FAST)
    run_with(view, template(frames(2, "print('hi')")), **roots)
    assert len(shown.updates) == 1  # the summary first, through the display id
    # Then every model (layouts and styles too) is closed: nothing left to save with the file.
    assert widget_messages["comm_open"] > 0
    assert widget_messages["comm_close"] == widget_messages["comm_open"], widget_messages


def test_progress_and_status_lines_are_dimmed_in_the_log_or_left_out(
    shown: DisplaySpy, roots: dict[str, Any]
) -> None:
    code = "print('openjd_progress: 50'); print('openjd_status: half'); print('real output')"
    job = template(frames(1, code))
    dimmed = Dashboard("Test Job", FAST)
    run_with(dimmed, job, **roots)
    assert log_lines(dimmed)[-3:] == ["openjd_progress: 50", "openjd_status: half", "real output"]
    assert "<span style='opacity:0.5'>openjd_progress: 50</span>" in dimmed.widgets.log.value
    assert "<span style='opacity:0.5'>real output" not in dimmed.widgets.log.value

    hidden = Dashboard("Test Job", ViewOptions(refresh_s=0.1, hide_protocol_lines=True))
    run_with(hidden, job, **roots)
    assert log_lines(hidden) == ["real output"]


def test_the_ended_tasks_table_keeps_its_header_in_view() -> None:
    from openjd_notebook.jobs import TaskEnded, TaskOutcome
    from openjd_notebook.notebook.dashboard import table_html
    from openjd_notebook.progress import LiveRun

    live = LiveRun.create("J").with_event(TaskEnded(TaskOutcome("Render", 0, state="success")))
    table = table_html(live)
    assert table.count("position:sticky;top:0") == 8  # every header cell
    assert "width:max-content" in table and "white-space:nowrap" in table
