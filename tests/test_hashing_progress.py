"""Hashing a large manifest shows progress: a line a second in the CLI, the header of the
notebook's dashboard; a small one stays silent."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from openjd_notebook.cli_output import HumanReporter
from openjd_notebook.jobs.events import ManifestProgress
from openjd_notebook.notebook.live_html import header_html
from openjd_notebook.progress import LiveRun, format_hashing

GIB = 1024**3


def test_a_large_manifest_says_how_far_hashing_got() -> None:
    assert format_hashing(ManifestProgress("outputs", 512, 1000, GIB // 2, GIB)) == (
        "hashing outputs: 512/1,000 files, 0.5/1.0 GiB"
    )
    assert format_hashing(ManifestProgress("inputs", 1, 3, 10, 30)) is None


def test_the_cli_prints_hashing_progress_then_done() -> None:
    stream = io.StringIO()
    reporter = HumanReporter(stream, live=False)
    with reporter:
        reporter(ManifestProgress("outputs", 100, 1000, GIB // 10, GIB))
        reporter(ManifestProgress("outputs", 200, 1000, GIB // 5, GIB))  # within a second
        reporter(ManifestProgress("outputs", 1000, 1000, GIB, GIB))
        reporter(ManifestProgress("inputs", 3, 3, 30, 30))  # small: silent
    lines = stream.getvalue().splitlines()
    assert lines == [
        "hashing outputs: 100/1,000 files, 0.1/1.0 GiB",
        "hashing outputs: 1,000/1,000 files, 1.0/1.0 GiB (done)",
    ]


def test_the_dashboard_header_shows_hashing_while_it_lasts() -> None:
    now = datetime.now(timezone.utc)
    live = LiveRun.create("Job").with_event(ManifestProgress("outputs", 10, 1000, GIB // 4, GIB))
    assert "hashing outputs: 10/1,000 files, 0.2/1.0 GiB" in header_html(live, now)
    done = live.with_event(ManifestProgress("outputs", 1000, 1000, GIB, GIB))
    assert "hashing" not in header_html(done, now)
