"""The lifeline: when the Python process that owns a session dies, nothing the session
started survives it, and its working directory goes too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from helpers import alive, wait_until
from openjd_notebook.sessions import Session

# A session in a child Python process runs an action that starts a grandchild in a session of
# its own (setsid) that ignores SIGTERM and never writes: the process group and a dead pipe
# do not reach it. The owner prints the working directory once everything runs.
OWNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from openjd_notebook.sessions import Session

    root, pid_file, retain = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "retain"
    grandchild = (
        "import signal, subprocess, sys, time;"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "p = subprocess.Popen([sys.executable, '-c', 'import signal, time;"
        " signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'],"
        " start_new_session=True);"
        f"open({pid_file!r}, 'w').write(str(p.pid));"
        "time.sleep(600)"
    )
    session = Session(
        session_id="owner",
        job_parameter_values={},
        session_root_directory=root,
        retain_working_dir=retain,
    )
    session.run_subprocess(command=sys.executable, args=["-c", grandchild])
    while not Path(pid_file).exists() or not Path(pid_file).read_text():
        time.sleep(0.01)
    print(session.working_directory, flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def start_owner(
    tmp_path: Path,
) -> Iterator[Callable[[str], tuple[subprocess.Popen[str], int, Path]]]:
    owners: list[subprocess.Popen[str]] = []
    pids: list[int] = []

    def start(retain: str) -> tuple[subprocess.Popen[str], int, Path]:
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        pid_file = tmp_path / f"grandchild-{len(owners)}.pid"
        owner = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(root), str(pid_file), retain],
            stdout=subprocess.PIPE,
            text=True,
        )
        owners.append(owner)
        assert owner.stdout is not None
        working_directory = Path(owner.stdout.readline().strip())
        grandchild = int(pid_file.read_text())
        pids.append(grandchild)
        return owner, grandchild, working_directory

    yield start
    for owner in owners:
        owner.kill()
        owner.wait()
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_owner_kills_the_setsid_grandchild_and_removes_the_directory(
    start_owner: Callable[[str], tuple[subprocess.Popen[str], int, Path]],
) -> None:
    owner, grandchild, working_directory = start_owner("remove")
    assert alive(grandchild) and working_directory.is_dir()

    owner.send_signal(signal.SIGKILL)
    owner.wait()

    assert wait_until(lambda: not alive(grandchild), 2.0) is not None
    assert wait_until(lambda: not working_directory.exists(), 2.0) is not None


def test_a_retained_directory_stays_after_the_owner_dies(
    start_owner: Callable[[str], tuple[subprocess.Popen[str], int, Path]],
) -> None:
    owner, grandchild, working_directory = start_owner("retain")

    owner.send_signal(signal.SIGKILL)
    owner.wait()

    assert wait_until(lambda: not alive(grandchild), 2.0) is not None
    assert working_directory.is_dir()


def _watchdogs() -> set[int]:
    found = set()
    for child in psutil.Process().children():
        try:
            if "openjd-lifeline" in child.cmdline() and alive(child.pid):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


def test_a_normal_cleanup_releases_the_watchdog(session_root: Path) -> None:
    before = _watchdogs()
    session = Session(
        session_id="released", job_parameter_values={}, session_root_directory=session_root
    )
    assert len(_watchdogs() - before) == 1

    session.cleanup()

    assert _watchdogs() - before == set()
    assert list(session_root.iterdir()) == []
