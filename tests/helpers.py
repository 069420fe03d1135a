"""Helpers shared by the test modules: model objects built by openjd-model."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from openjd.model import (
    Job,
    create_job,
    decode_job_template,
    preprocess_job_parameters,
)

from openjd_notebook.sessions import ActionStatus

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


class StatusMessages:
    """A session callback that lets a test wait for an ``openjd_status`` message."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._seen: set[str] = set()
        self._changed = threading.Condition()
        self._timeout_s = timeout_s

    def __call__(self, session_id: str, status: ActionStatus) -> None:
        if status.status_message is not None:
            with self._changed:
                self._seen.add(status.status_message)
                self._changed.notify_all()

    def wait_for(self, message: str) -> None:
        with self._changed:
            seen = self._changed.wait_for(lambda: message in self._seen, self._timeout_s)
        assert seen, f"the action never reported status {message!r}"


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def wait_until(condition: Callable[[], bool], timeout_s: float) -> float | None:
    """Seconds until ``condition`` held, or None when it did not within ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if condition():
            return time.monotonic() - start
        time.sleep(0.01)
    return None
