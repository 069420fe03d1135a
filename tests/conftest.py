"""Shared fixtures: real sessions in a private root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openjd_notebook.sessions import Session


@pytest.fixture
def session_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def make_session(session_root: Path) -> Iterator[Any]:
    """Build sessions that are always cleaned up, even when a test fails."""
    sessions: list[Session] = []

    def factory(**kwargs: Any) -> Session:
        kwargs.setdefault("session_id", f"test-{len(sessions)}")
        kwargs.setdefault("job_parameter_values", {})
        kwargs.setdefault("session_root_directory", session_root)
        session = Session(**kwargs)
        sessions.append(session)
        return session

    yield factory
    for session in sessions:
        session.cleanup()


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests assert on the variables their actions see; keep the host's out of the way.
    monkeypatch.delenv("OPENJD_SESSION_WORKING_DIR", raising=False)
    os.environ.setdefault("HOME", "/root")
