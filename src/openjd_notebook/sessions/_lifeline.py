"""A session's lifeline: when this process dies, nothing the session started outlives it.

A session's actions run in sessions of their own (``setsid``), so neither the process group
nor ``PR_SET_PDEATHSIG`` reaches all of them when the Python process that owns the session
is killed (a crashed kernel, a SIGKILLed Dask worker). The lifeline is a watchdog holding
the read end of a pipe whose write end only this process holds, close-on-exec so that no
action inherits it. A normal end releases the watchdog; any death of this process closes the
pipe, and the watchdog then kills every process carrying the session's tag and removes the
session's working directory (unless it is retained).

The watchdog is ``/bin/sh`` blocked in ``read`` (about 1 ms to start, a few hundred kB), which
becomes the Python reaper (``_lifeline_reaper.py``) only when the pipe is cut.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import psutil

__all__ = ["Lifeline"]

_REAPER = Path(__file__).with_name("_lifeline_reaper.py")
_RELEASE = b"released\n"
# $0 is the watchdog's name; "$@" is the reaper's command line.
_WATCHDOG = 'IFS= read -r answer; [ "$answer" = released ] && exit 0; exec "$@"'
_REAP_TIMEOUT_S = 2.0


class Lifeline:
    """The session side of the lifeline; ``release`` it when the session ends normally."""

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self._process = process
        self._pipe: int | None = pipe

    @classmethod
    def start(
        cls, tag_prefix: str, directory: Path, *, retain: bool, sudo_user: str | None
    ) -> Lifeline:
        """Start the watchdog for a session; raises ``OSError`` when it cannot start."""
        read_end, write_end = os.pipe()  # both close-on-exec: actions never inherit them
        try:
            process = subprocess.Popen(
                [
                    "/bin/sh",
                    "-c",
                    _WATCHDOG,
                    "openjd-lifeline",
                    sys.executable,
                    "-S",
                    "-E",
                    str(_REAPER),
                    tag_prefix,
                    str(directory),
                    "retain" if retain else "remove",
                    sudo_user or "",
                    str(Path(psutil.__file__).parent.parent),
                ],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,  # a terminal's Ctrl-C or hang-up must not end it
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return cls(process, write_end)

    @property
    def pid(self) -> int:
        return self._process.pid

    def release(self) -> None:
        """The session ended normally: let the watchdog go without acting. Idempotent."""
        pipe, self._pipe = self._pipe, None
        if pipe is None:
            return
        with contextlib.suppress(OSError):  # the watchdog is already gone
            os.write(pipe, _RELEASE)
        os.close(pipe)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(_REAP_TIMEOUT_S)

    def __repr__(self) -> str:
        state = "released" if self._pipe is None else "holding"
        return f"<Lifeline watchdog pid={self._process.pid} {state}>"
