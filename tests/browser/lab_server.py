"""A throw-away JupyterLab server for the browser tests (no token, fresh workspace, own kernel).

The server runs ``sys.executable -m jupyterlab`` with a Python config file built on
``jupyterlab.galata.configure_jupyter_server`` (the settings JupyterLab's own UI tests use:
no token, no XSRF check, ``window.jupyterapp`` exposed), then overrides the port, the root
directory, the workspace and settings directories so nothing from an earlier run or from the
user's own Jupyter setup leaks in. Its ``python3`` kernel is this interpreter: a kernelspec in
a private ``JUPYTER_PATH`` (searched before the venv's own spec, which says plain ``python``),
and the venv's ``bin`` first on ``PATH`` for good measure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

KERNEL_NAME = "python3"

_CONFIG = """\
c = get_config()  # noqa: F821
try:
    from jupyterlab.galata import configure_jupyter_server
except ImportError:  # an older JupyterLab: the same settings by hand
    configure_jupyter_server = None
if configure_jupyter_server is not None:
    configure_jupyter_server(c)
else:
    c.IdentityProvider.token = ""
    c.ServerApp.password = ""
    c.ServerApp.disable_check_xsrf = True
    c.LabApp.expose_app_in_browser = True
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = {port}
c.ServerApp.port_retries = 0
c.ServerApp.root_dir = {root!r}
c.ServerApp.open_browser = False
c.ServerApp.allow_root = {allow_root}
c.ServerApp.terminals_enabled = False
c.LabApp.workspaces_dir = {workspaces!r}
c.LabApp.user_settings_dir = {settings!r}
"""

# Lab settings for a quiet, predictable page: no news toast, no update check, and every cell
# attached to the DOM so the n-th ``.jp-Cell`` is the n-th cell.
_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class LabServer:
    """One JupyterLab server on a free port, serving ``root``."""

    base: Path
    root: Path = field(init=False)
    port: int = field(init=False)
    log_path: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.log_path = self.base / "jupyterlab.log"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- start ------------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        environment = self._environment()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", f"--config={config}"],
                cwd=self.root,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self._wait_until_up(timeout)

    def _write_config(self) -> Path:
        workspaces = self.base / "workspaces"
        settings = self.base / "user-settings"
        workspaces.mkdir(exist_ok=True)
        for name, values in _SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        config = self.base / "jupyter_lab_config.py"
        config.write_text(
            _CONFIG.format(
                port=self.port,
                root=str(self.root),
                allow_root=hasattr(os, "geteuid") and os.geteuid() == 0,
                workspaces=str(workspaces),
                settings=str(settings),
            )
        )
        return config

    def _environment(self) -> dict[str, str]:
        jupyter_path = self.base / "jupyter-path"
        spec = jupyter_path / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "Python 3 (test venv)", "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(kernel))
        scratch = self.base / "tmp"  # galata's helper makes temp dirs and files: keep them here
        scratch.mkdir(exist_ok=True)
        environment = dict(os.environ)
        environment.update(
            PATH=os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", "")]),
            JUPYTER_PATH=str(jupyter_path),
            JUPYTER_CONFIG_DIR=str(self.base / "jupyter-config"),
            JUPYTER_DATA_DIR=str(self.base / "jupyter-data"),
            JUPYTER_RUNTIME_DIR=str(self.base / "jupyter-runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            TMPDIR=str(scratch),
            PYTHONUNBUFFERED="1",
        )
        environment.pop("JUPYTERLAB_GALATA_ROOT_DIR", None)
        return environment

    def _wait_until_up(self, timeout: float) -> None:
        give_up = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited at start:\n{self.log_tail()}")
            try:
                status = self.api("GET", "/api/status")
            except (OSError, urllib.error.URLError):
                status = None
            if isinstance(status, dict):
                return
            if time.monotonic() > give_up:
                raise RuntimeError(f"JupyterLab did not answer in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.2)

    # ---- use --------------------------------------------------------------------------------

    def api(self, method: str, path: str, timeout: float = 5.0) -> Any:
        request = urllib.request.Request(self.url + path, method=method)
        if method != "GET":
            request.data = b""
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ---- stop -------------------------------------------------------------------------------

    def stop(self, timeout: float = 20.0) -> list[str]:
        """Shut the kernels and the server down; returns the processes that had to be killed
        (the server's descendants that outlived it: kernels, or actions they started)."""
        process = self.process
        if process is None:
            return []
        self.process = None
        family = descendants(process.pid)
        try:
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=timeout)
            self.api("POST", "/api/shutdown")
        except (OSError, urllib.error.URLError):
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        give_up = time.monotonic() + 10
        while any(alive(p) for p in family) and time.monotonic() < give_up:
            time.sleep(0.1)
        survivors = []
        for leftover in family:
            if alive(leftover):
                try:
                    survivors.append(f"{leftover.pid} {' '.join(leftover.cmdline())[:200]}")
                    leftover.kill()
                except psutil.NoSuchProcess:
                    pass
        return survivors
