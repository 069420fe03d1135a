"""Real Jupyter kernels for the extension's tests (fixtures imported by the test modules)."""

from __future__ import annotations

import json
import queue
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

KERNEL_NAME = "openjd-notebook-test"


@pytest.fixture(scope="session")
def kernel_spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec that runs ipykernel with this interpreter (not whatever `python` is)."""
    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / KERNEL_NAME
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL_NAME, "language": "python"})
    )
    return kernels


@dataclass
class Execution:
    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.reply["content"]["status"])

    @property
    def error_name(self) -> str | None:
        return self.reply["content"].get("ename")

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    def text(self) -> str:
        parts = []
        for message in self.of_type("stream", "execute_result", "display_data", "error"):
            content = message["content"]
            parts.append(content.get("text") or str(content.get("data", {}).get("text/plain", "")))
            parts.extend(content.get("traceback", []))
        return "\n".join(parts)


class KernelHarness:
    """Send cells to a real kernel and collect every iopub message they cause."""

    def __init__(self, manager: KernelManager) -> None:
        self.manager = manager
        self.client = manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 60) -> Execution:
        return self.collect(self.client.execute(code), timeout)

    def submit(self, code: str) -> str:
        return str(self.client.execute(code))

    def collect(self, msg_id: str, timeout: float = 60, settle: float = 0.0) -> Execution:
        """Iopub messages until the request is idle (plus ``settle`` s of stragglers)."""
        messages: list[dict[str, Any]] = []
        give_up = time.monotonic() + timeout
        idle_at: float | None = None
        while True:
            now = time.monotonic()
            if idle_at is not None and now >= idle_at + settle:
                break
            assert now < give_up, (
                f"no idle after {timeout} s; got {[m['msg_type'] for m in messages]}"
            )
            try:
                message = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            messages.append(message)
            parent = message.get("parent_header", {}).get("msg_id")
            state = message["content"].get("execution_state")
            if message["msg_type"] == "status" and state == "idle" and parent == msg_id:
                idle_at = time.monotonic()
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        return Execution(reply, messages)

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def close(self) -> None:
        self.client.stop_channels()
        if self.manager.is_alive():
            self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel(kernel_spec_dir: Path, tmp_path: Path) -> Iterator[KernelHarness]:
    manager = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_spec_dir)]),
    )
    manager.start_kernel(cwd=str(tmp_path))
    harness = KernelHarness(manager)
    harness.execute("%load_ext openjd_notebook")
    try:
        yield harness
    finally:
        harness.close()
