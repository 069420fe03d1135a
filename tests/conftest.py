"""Shared fixtures: real sessions in a private root, and model objects built by openjd-model."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openjd.model import (
    Job,
    create_job,
    decode_job_template,
    preprocess_job_parameters,
)

from openjd_notebook.sessions import Session

PYTHON = sys.executable


def make_job(
    template: dict[str, Any],
    parameters: dict[str, str] | None = None,
    extensions: list[str] | None = None,
) -> tuple[Job, Any]:
    """Decode, validate and instantiate a job template; returns (job, parameter values)."""
    body = {"specificationVersion": "jobtemplate-2023-09", "name": "TestJob", **template}
    if extensions:
        body["extensions"] = extensions
    job_template = decode_job_template(template=body, supported_extensions=extensions or [])
    values = preprocess_job_parameters(
        job_template=job_template,
        job_parameter_values=parameters or {},
        job_template_dir=Path.cwd(),
        current_working_dir=Path.cwd(),
    )
    return create_job(job_template=job_template, job_parameter_values=values), values


def python_action(code: str, **extra: Any) -> dict[str, Any]:
    """An action that runs ``code`` with this test's Python interpreter."""
    return {"command": PYTHON, "args": ["-c", code], **extra}


def one_step_job(
    on_run: dict[str, Any], *, script_extra: dict[str, Any] | None = None, **template: Any
) -> tuple[Job, Any]:
    step = {"name": "Step", "script": {"actions": {"onRun": on_run}, **(script_extra or {})}}
    return make_job({"steps": [step], **template})


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
