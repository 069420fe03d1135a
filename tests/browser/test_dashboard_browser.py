"""The dashboard in a real JupyterLab, driven by headless Debian Chromium through Playwright.

One JupyterLab server and one page serve both tests (the notebook stays open): the first runs
a 40-task job on two workers and watches the live dashboard (bars with percent, rate and time
left, labelled running tasks, a task table whose header stays in view), then checks the one
grouped summary it leaves and the run's timeline; the second presses the notebook's stop
button during a long task and checks the countdown, the one-line stop message and the
summary of what was canceled. Screenshots go to ``$OPENJD_SCREENSHOTS`` or a folder under the
test's temporary directory; the folder is printed and recorded as the ``screenshots`` property.

Needs ``/usr/bin/chromium`` (Debian's package; ``.ci/run`` installs it) and the ``playwright``
package; the browser Playwright downloads itself is never used.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")
pytest.importorskip("ipywidgets", reason="ipywidgets is not installed")

import nbformat  # noqa: E402
import psutil  # noqa: E402
from playwright.sync_api import Browser, Locator, Page, sync_playwright  # noqa: E402

from lab_server import KERNEL_NAME, LabServer  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NOTEBOOK = "dashboard.ipynb"
# Chromium's own calls home (updates, sync, field trials) only fail in a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Cell indices in the test notebook.
LOAD, FRAMES, RUN_FRAMES, TIMELINE, LONG, RUN_LONG = range(6)

FRAMES_TEMPLATE = """\
%%openjd_template frames
specificationVersion: jobtemplate-2023-09
name: Frames
steps:
- name: Render
  parameterSpace:
    taskParameterDefinitions:
    - name: Frame
      type: INT
      range: "1-40"
  script:
    embeddedFiles:
    - name: work
      type: TEXT
      data: |
        import sys, time
        frame = int(sys.argv[1])
        for line in range(1, 13):
            print(f"frame {frame:02d} line {line:02d}", flush=True)
            if line % 3 == 0:
                print(f"openjd_progress: {100 * line / 12:.0f}", flush=True)
                print(f"openjd_status: bucket {line // 3} of 4", flush=True)
            time.sleep(0.025)
    actions:
      onRun:
        command: @PYTHON@
        args: ["{{Task.File.work}}", "{{Task.Param.Frame}}"]
"""

# Four frames; the first writes its pid where the test can read it; on SIGTERM (the graceful
# cancel) it cleans up for 1.5 s, so the dashboard's countdown can be seen, writes a marker and
# leaves. Otherwise it would wait five minutes. The other three never start.
LONG_TEMPLATE = """\
%%openjd_template long
specificationVersion: jobtemplate-2023-09
name: Long
steps:
- name: Wait
  parameterSpace:
    taskParameterDefinitions:
    - name: Frame
      type: INT
      range: "1-4"
  script:
    embeddedFiles:
    - name: wait
      type: TEXT
      data: |
        import os, pathlib, signal, sys, time
        root = pathlib.Path(sys.argv[1])
        def leave(*_):
            print("SIGTERM: cleaning up", flush=True)
            time.sleep(1.5)
            (root / "long.sigterm").write_text("yes")
            sys.exit(0)
        signal.signal(signal.SIGTERM, leave)
        (root / "long.tmp").write_text(str(os.getpid()))
        os.replace(root / "long.tmp", root / "long.pid")
        for second in range(300):
            print(f"still waiting, {second} s", flush=True)
            time.sleep(1)
    actions:
      onRun:
        command: @PYTHON@
        args: ["{{Task.File.wait}}", "@ROOT@"]
        cancelation:
          mode: NOTIFY_THEN_TERMINATE
          notifyPeriodInSeconds: 30
"""

# ---- JavaScript run in the page ------------------------------------------------------------

NOTEBOOK_READY = """(path) => {
    const widget = window.jupyterapp?.shell?.currentWidget;
    return !!widget && widget.context?.path === path
        && widget.sessionContext?.session?.kernel?.status === 'idle'
        && document.querySelectorAll('.jp-Notebook .jp-Cell').length >= 6;
}"""
KERNEL_IDLE = """() => window.jupyterapp.shell.currentWidget
    .sessionContext.session.kernel.status === 'idle'"""
# Select one cell and run it with the notebook's own command. The command's promise resolves
# only when the cell is done, so a running cell must not be awaited: the test watches it.
RUN_CELL = """async ([index, wait]) => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    app.shell.activateById(panel.id);
    panel.content.deselectAll();
    panel.content.activeCellIndex = index;
    const done = app.commands.execute('notebook:run-cell');
    if (wait) { await done; }
}"""
# What the dashboard inside one output area shows right now.
# "In view" = inside every scroll box around it (the newest line / row should be).
SAMPLE = """(area) => {
    const bar = area.querySelector('.widget-hprogress .progress-bar');
    const pre = area.querySelector('.jupyter-widgets pre');
    const caption = pre ? pre.parentElement.previousElementSibling : null;
    const header = area.querySelector('.jupyter-widgets .widget-html-content');
    const inside = (rect, boxes) => boxes.every((box) => {
        const outer = box.getBoundingClientRect();
        return rect.top >= outer.top - 1 && rect.bottom <= outer.bottom + 1;
    });
    let logInView = null;
    if (pre && pre.textContent) {
        const range = document.createRange();
        range.selectNodeContents(pre);
        const lines = range.getClientRects();
        logInView = inside(lines[lines.length - 1], [pre, pre.parentElement]);
    }
    let rowInView = null, headInView = null, firstRowHidden = null;
    const ended = area.querySelector('.jupyter-widgets table thead');
    if (ended) {
        const rows = ended.closest('table').querySelectorAll('tbody tr');
        const box = ended.closest('table').parentElement;
        rowInView = inside(rows[rows.length - 1].getBoundingClientRect(), [box]);
        headInView = inside(ended.querySelector('th').getBoundingClientRect(), [box]);
        firstRowHidden = !inside(rows[0].getBoundingClientRect(), [box]);
    }
    const counts = area.querySelector('.widget-gridbox .widget-html-content');
    const running = [...area.querySelectorAll('.jupyter-widgets table')]
        .filter((t) => !t.querySelector('thead')).map((t) => t.innerText);
    return {
        widgets: area.querySelectorAll('.jupyter-widgets').length,
        bar: bar ? parseFloat(bar.style.width || '0') : null,
        log: pre ? pre.textContent : '',
        caption: caption ? caption.textContent : '',
        header: header ? header.textContent : '',
        results: area.querySelectorAll('.openjd-job-result').length,
        logInView: logInView,
        rowInView: rowInView,
        headInView: headInView,
        firstRowHidden: firstRowHidden,
        counts: counts ? counts.textContent : '',
        running: running.join(String.fromCharCode(10)),
    };
}"""


@dataclass(frozen=True)
class Sample:
    at: float
    widgets: int
    bar: float | None
    log_lines: int
    last_line: str
    header: str
    results: int
    newest_line_in_view: bool | None
    newest_row_in_view: bool | None
    header_in_view: bool | None
    first_row_scrolled_away: bool | None
    counts: str
    running: str


def log_total(log: str, caption: str) -> int:
    """Lines of output seen so far: "Output (last 200 of 240 lines)" or the lines shown."""
    match = re.search(r"of (\d+) lines", caption)
    return int(match.group(1)) if match else len(log.splitlines())


def notebook_cells(root: Path) -> list[str]:
    python = sys.executable
    return [
        "%load_ext openjd_notebook",
        FRAMES_TEMPLATE.replace("@PYTHON@", python),
        "%openjd_run frames --workers 2",
        "first = _\nfirst.timeline()",
        LONG_TEMPLATE.replace("@PYTHON@", python).replace("@ROOT@", str(root)),
        "%openjd_run long --out second --cancel-grace 3",
    ]


def write_notebook(root: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in notebook_cells(root)]
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, root / NOTEBOOK)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    server = LabServer(tmp_path_factory.mktemp("lab"))
    server.root.mkdir(parents=True)
    write_notebook(server.root)
    started = time.monotonic()
    try:
        server.start()
        print(f"\nJupyterLab up at {server.url} in {time.monotonic() - started:.1f} s")
        yield server
    finally:
        survivors = server.stop()
        assert not survivors, f"processes outlived JupyterLab (killed now): {survivors}"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("OPENJD_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def page(browser: Browser, lab: LabServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    started = time.monotonic()
    opened.goto(f"{lab.url}/lab/tree/{NOTEBOOK}")
    opened.wait_for_function(NOTEBOOK_READY, arg=NOTEBOOK, timeout=60_000)
    dismiss_news(opened)
    print(f"\nNotebook open with an idle kernel in {time.monotonic() - started:.1f} s")
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def shots(screenshots: Path, record_property: Any) -> Path:
    print(f"\nScreenshots of the dashboard: {screenshots}")
    record_property("screenshots", str(screenshots))
    return screenshots


def dismiss_news(page: Page) -> None:
    """The "official Jupyter news?" toast (off in the settings we write, but be safe)."""
    no = page.get_by_role("button", name="No", exact=True)
    if no.count():
        no.first.click()


# ---- page helpers ----------------------------------------------------------------------------


def cell(page: Page, index: int) -> Locator:
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def output_area(page: Page, index: int) -> Locator:
    return cell(page, index).locator(".jp-OutputArea")


def run_cell(page: Page, index: int, *, wait: bool) -> None:
    page.evaluate(RUN_CELL, [index, wait])


def sample(page: Page, index: int, start: float) -> Sample:
    seen = output_area(page, index).evaluate(SAMPLE)
    log: str = seen["log"]
    lines = log.splitlines()
    return Sample(
        at=time.monotonic() - start,
        widgets=seen["widgets"],
        bar=seen["bar"],
        log_lines=log_total(log, seen["caption"]),
        last_line=lines[-1] if lines else "",
        header=seen["header"],
        results=seen["results"],
        newest_line_in_view=seen["logInView"],
        newest_row_in_view=seen["rowInView"],
        header_in_view=seen["headInView"],
        first_row_scrolled_away=seen["firstRowHidden"],
        counts=seen["counts"],
        running=seen["running"],
    )


def wait_idle(page: Page, timeout_s: float = 60) -> None:
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_s * 1000)


def snap(page: Page, folder: Path, name: str, index: int) -> None:
    """The cell alone, and the whole window around it."""
    target = cell(page, index)
    target.scroll_into_view_if_needed()
    target.screenshot(path=folder / f"{name}-cell.png")
    page.screenshot(path=folder / f"{name}-page.png")


def shown(area: Locator, limit: int = 4000) -> str:
    """What an output area says, for failure messages."""
    text = area.inner_text()
    return text if len(text) <= limit else text[:limit] + "\n[...]"


def stderr_lines(area: Locator) -> list[str]:
    """The lines of the cell's error output (what a traceback or one-line error shows)."""
    errors = area.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [line for text in errors.all_inner_texts() for line in text.splitlines() if line]


RATE = re.compile(r"\d+/40 · \d+% · [\d.]+ (tasks/s|s/task) · ~\d+:\d\d left")


# ---- tests -----------------------------------------------------------------------------------


def test_live_dashboard_then_one_grouped_summary(page: Page, shots: Path) -> None:
    run_cell(page, LOAD, wait=True)
    run_cell(page, FRAMES, wait=True)
    start = time.monotonic()
    run_cell(page, RUN_FRAMES, wait=False)

    samples: list[Sample] = []
    live_shot = False
    while time.monotonic() - start < 90:
        now = sample(page, RUN_FRAMES, start)
        samples.append(now)
        if now.results:
            break
        scrolled = now.first_row_scrolled_away and now.header_in_view
        if not live_shot and now.bar is not None and now.bar >= 40 and scrolled:
            snap(page, shots, "1-running", RUN_FRAMES)
            live_shot = True
        page.wait_for_timeout(200)
    wait_idle(page)
    elapsed = time.monotonic() - start
    snap(page, shots, "2-finished", RUN_FRAMES)

    live = [s for s in samples if s.widgets and s.bar is not None]
    trace = "\n".join(
        f"{s.at:5.1f}s bar={s.bar} log={s.log_lines} newest in view: line={s.newest_line_in_view}"
        f" row={s.newest_row_in_view} header={s.header_in_view} | {s.counts} | {s.last_line}"
        for s in live
    )
    print(f"\nrun of 'frames': {elapsed:.1f} s, {len(live)} live samples\n{trace}")
    area = output_area(page, RUN_FRAMES)
    trace += f"\n--- the cell's output now:\n{shown(area)}"
    assert live_shot, f"never saw the bar at 40% with the task table scrolled:\n{trace}"
    bars = [s.bar for s in live if s.bar is not None]
    assert any(0 < bar < 100 for bar in bars), trace
    assert any(a < b for a, b in itertools.pairwise(bars)), f"bar never moved:\n{trace}"
    assert bars == sorted(bars), f"the bar went backwards:\n{trace}"
    logs = [s.log_lines for s in live]
    assert any(a < b for a, b in itertools.pairwise(logs)), f"log never grew:\n{trace}"
    assert logs == sorted(logs), f"the log tail shrank:\n{trace}"
    assert any(re.match(r"\[worker-[12]\] frame \d+ line", s.last_line) for s in live), trace
    assert live[-1].newest_line_in_view, f"the log tail does not show its newest line:\n{trace}"
    # As tqdm: done/total, percent, rate and time left next to the bar.
    assert any(RATE.search(s.counts) for s in live), f"no percent, rate and ETA:\n{trace}"
    # Running tasks are labelled rows: worker, task, parameters, progress and status.
    labelled = re.compile(r"worker-[12]: Render\[\d+\] Frame=\d+ · \d+% · bucket \d of 4")
    assert any(labelled.search(s.running) for s in live), f"no labelled running row:\n{trace}"
    # The ended tasks scroll under a header that stays in view.
    assert all(s.header_in_view for s in live if s.first_row_scrolled_away), trace
    assert any(s.first_row_scrolled_away for s in live), f"the task table never scrolled:\n{trace}"

    # The end: the widgets were replaced, through the display id, by one static summary, and
    # the magic's return value is not shown again as Out[].
    assert area.locator(".jupyter-widgets").count() == 0, shown(area)
    assert area.locator(".widget-hprogress").count() == 0, shown(area)
    assert area.locator(".openjd-job-result").count() == 1, shown(area)
    assert area.locator(".jp-OutputArea-executeResult").count() == 0, shown(area)
    summary = area.locator(".openjd-job-result").first
    text = summary.inner_text()
    assert "Frames" in text and "success" in text and "40 tasks: 40 success" in text, text
    # Grouped: counts per step, no attention rows (nothing failed), every task folded away.
    steps = summary.locator("table.openjd-steps tbody tr").all_inner_texts()
    assert [row.split() for row in steps] == [["Render", "40", "40"]], steps
    assert summary.locator("table.openjd-attention").count() == 0
    assert summary.locator("details table.openjd-all-tasks tbody tr").count() == 40
    assert not summary.locator("details table.openjd-all-tasks").is_visible()  # folded
    summary.locator("details summary").click()
    assert summary.locator("details table.openjd-all-tasks").is_visible()
    snap(page, shots, "2b-finished-all-tasks", RUN_FRAMES)
    summary.locator("details summary").click()
    # The record is a link relative to the notebook; two workers: a small timeline.
    link = summary.locator("a", has_text="openjd-runs/").first
    href = link.get_attribute("href") or ""
    print(f"\nthe record's link: {link.inner_text()} -> {href}")
    assert re.search(r"/openjd-runs/[^/]+/run\.json", href), href  # Lab opens it when clicked
    assert summary.locator("svg rect.openjd-task").count() == 40

    run_cell(page, TIMELINE, wait=True)
    chart = output_area(page, TIMELINE)
    chart.locator(".openjd-timeline svg").wait_for(timeout=10_000)
    snap(page, shots, "6-timeline", TIMELINE)
    bars = chart.locator("svg rect.openjd-task")
    assert bars.count() == 40
    lanes = chart.locator("svg text").all_text_contents()
    assert "worker-1" in lanes and "worker-2" in lanes, lanes
    tip = bars.first.locator("title").text_content() or ""
    assert re.match(r"Render\[\d+\] Frame=\d+\nsuccess, [\d.]+ s on worker-[12]", tip), tip


def test_stop_button_cancels_the_run(page: Page, lab: LabServer, shots: Path) -> None:
    pid_file = lab.root / "long.pid"
    pid_file.unlink(missing_ok=True)
    run_cell(page, LOAD, wait=True)  # harmless when the first test already loaded it
    run_cell(page, LONG, wait=True)
    run_cell(page, RUN_LONG, wait=False)

    area = output_area(page, RUN_LONG)
    give_up = time.monotonic() + 30
    while not pid_file.exists():
        assert time.monotonic() < give_up, f"the long task never wrote its pid:\n{shown(area)}"
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    area.locator("pre", has_text="still waiting").wait_for(timeout=15_000)
    snap(page, shots, "3-long-running", RUN_LONG)

    clicked = time.monotonic()
    page.locator(
        ".jp-NotebookPanel-toolbar jp-button[data-command='notebook:interrupt-kernel']"
    ).click()
    # The action takes 1.5 s to leave after its SIGTERM: the header counts the grace down and
    # says how to kill at once.
    countdown = area.locator(".widget-html-content", has_text="canceling")
    countdown.first.wait_for(timeout=5_000)
    header = countdown.first.inner_text()
    snap(page, shots, "4-canceling", RUN_LONG)
    assert "press ■ again to kill now" in header and "twice" not in header, header
    while not gone(pid):
        assert time.monotonic() - clicked < 8, f"action {pid} still alive 8 s after the stop"
        time.sleep(0.05)
    died = time.monotonic() - clicked

    area.locator(".openjd-job-result").first.wait_for(timeout=30_000)
    area.get_by_text("KeyboardInterrupt").first.wait_for(timeout=30_000)
    wait_idle(page)
    ended = time.monotonic() - clicked
    snap(page, shots, "5-canceled", RUN_LONG)
    print(f"\nstop button: action gone after {died:.2f} s, cell done after {ended:.2f} s")

    assert (lab.root / "long.sigterm").read_text() == "yes"  # the graceful cancel reached it
    assert area.locator(".jupyter-widgets").count() == 0, shown(area)
    summary = area.locator(".openjd-job-result").first
    assert "canceled" in summary.inner_text(), shown(area)
    # One line instead of a traceback, and it says where the result is.
    assert stderr_lines(area) == [
        "KeyboardInterrupt: stopped: 1 task canceled, 3 not run; result in `second`"
    ], shown(area)
    # The summary groups the counts and lists only the task that needs attention.
    steps = summary.locator("table.openjd-steps tbody tr").all_inner_texts()
    assert [row.split() for row in steps] == [["Wait", "4", "1", "3"]], steps
    attention = summary.locator("table.openjd-attention tbody tr").all_inner_texts()
    assert len(attention) == 1 and "canceled" in attention[0], attention
    assert "not run: 3 of Wait" in summary.inner_text()
