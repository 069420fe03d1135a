"""One action's OS process: launch, output pump, deadlines and cancel escalation.

A single pump thread owns the process after launch. It sleeps in ``select`` on the
output pipe, a pidfd (or a waiter thread's wake-up) and a wake pipe that other threads
use to post cancel requests, so a silent process costs no CPU. Timeouts and the notify
grace period are deadlines of the same loop, not timer threads.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Protocol

from . import _process_tree
from ._logging import LogContent, SessionLog
from ._worker import SerialWorker

__all__ = [
    "ActionProcess",
    "CancelReason",
    "CancelRequest",
    "LaunchSpec",
    "LineCutter",
    "ProcessOutcome",
    "split_long_line",
]

MAX_LINE_CHARACTERS = 64_000
"""Longer output lines are split into records of at most this many characters (as the
reference reads them), after any message earlier on the line's batch took effect."""
_READ_SIZE = 1 << 16
_STDOUT_DRAIN_AFTER_EXIT_S = 0.1
"""How long output is still read after the process exits (a background child may keep
the pipe open forever; the action ends anyway)."""


class CancelReason(str, Enum):
    """Why an action is being canceled; it decides the action's final state."""

    USER = "user"
    TIMEOUT = "timeout"
    PROTOCOL_ERROR = "protocol_error"
    CLEANUP = "cleanup"


@dataclass(frozen=True)
class LaunchSpec:
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    tag: str
    """Value of the process tag variable that marks this action's processes."""
    notify_period_s: int | None
    """Grace period of NOTIFY_THEN_TERMINATE, or None for TERMINATE."""
    timeout_s: int | None
    cancel_info_path: Path
    sudo_user: str | None = None


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int | None
    cancel_reason: CancelReason | None
    mark_failed: bool
    ended_at: datetime


@dataclass(frozen=True)
class CancelRequest:
    reason: CancelReason
    time_limit_s: float | None = None
    """Caps the notify period of NOTIFY_THEN_TERMINATE."""
    mark_failed: bool = False
    force: bool = False
    """Kill at once, whatever the action's cancelation method."""


class LineCutter(Protocol):
    """Chooses where a long line may be cut (the session's redactor: never inside a secret)."""

    @property
    def longest_secret(self) -> int: ...

    def safe_cut(self, text: str, limit: int) -> int: ...


def split_long_line(line: str, cutter: LineCutter) -> list[str]:
    """``line`` as records of at most MAX_LINE_CHARACTERS, cut where ``cutter`` allows."""
    if len(line) <= MAX_LINE_CHARACTERS:
        return [line]
    pieces: list[str] = []
    while len(line) > MAX_LINE_CHARACTERS:
        cut = cutter.safe_cut(line, MAX_LINE_CHARACTERS)
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def _utc_stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ActionProcess:
    """Runs one process to completion; reports its output lines (in batches) and outcome."""

    def __init__(
        self,
        spec: LaunchSpec,
        log: SessionLog,
        on_lines: Callable[[list[str]], None],
        on_exit: Callable[[ProcessOutcome], None],
        cutter: LineCutter,
    ) -> None:
        self._spec = spec
        self._cutter = cutter
        self._log = log
        self._on_lines = on_lines
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._requests: list[CancelRequest] = []
        self._cancel_reason: CancelReason | None = None
        self._mark_failed = False
        self._grace_ends: float | None = None
        self._timeout_at: float | None = None
        self._pending = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._popen: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()

    # ---- launching -------------------------------------------------------------------

    def start(self) -> int:
        """Launch the process on the calling thread; returns the pid.

        Output waits in the pipe until ``start_pump``, so the caller can report the start
        before any message from the process is handled.
        """
        try:
            self._popen = subprocess.Popen(
                list(self._spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(self._spec.env),
                cwd=self._spec.cwd,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            self._close_wake_pipe()
            raise
        if self._spec.timeout_s is not None:
            self._timeout_at = time.monotonic() + self._spec.timeout_s
        return self._popen.pid

    def start_pump(self, worker: SerialWorker) -> None:
        """Pump on the session's long-lived worker thread (cheaper than a new thread)."""
        worker.submit(self._pump_on_this_thread)

    def _pump_on_this_thread(self) -> None:
        assert self._popen is not None
        self._thread = threading.current_thread()
        self._thread.name = f"openjd-action-{self._popen.pid}"
        self._pump()

    def is_pump_thread(self) -> bool:
        return self._thread is threading.current_thread()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    # ---- requests from any thread ------------------------------------------------------

    def cancel(self, request: CancelRequest) -> None:
        """Ask for cancelation; returns at once."""
        with self._lock:
            if self._finished.is_set():
                return
            self._requests.append(request)
            self._wake_locked()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def _wake(self) -> None:
        with self._lock:
            self._wake_locked()

    def _wake_locked(self) -> None:
        # The pipe is closed under the same lock once the pump has finished, so a late
        # wake-up can never write into a reused descriptor.
        if self._finished.is_set():
            return
        with contextlib.suppress(BlockingIOError):  # a full pipe already holds a wake-up
            os.write(self._wake_w, b"!")

    # ---- the pump thread ---------------------------------------------------------------

    def _pump(self) -> None:
        assert self._popen is not None and self._popen.stdout is not None
        stdout_fd = self._popen.stdout.fileno()
        os.set_blocking(stdout_fd, False)
        with selectors.DefaultSelector() as selector:
            selector.register(stdout_fd, selectors.EVENT_READ, "out")
            selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            exit_fd = self._watch_exit(selector)
            try:
                self._pump_until_done(selector, stdout_fd)
            finally:
                if exit_fd is not None:
                    os.close(exit_fd)
        self._finish()

    def _watch_exit(self, selector: selectors.BaseSelector) -> int | None:
        """Make process exit wake the selector: a pidfd on Linux, else a waiter thread."""
        assert self._popen is not None
        if hasattr(os, "pidfd_open"):
            try:
                exit_fd = os.pidfd_open(self._popen.pid)
            except OSError:
                pass
            else:
                selector.register(exit_fd, selectors.EVENT_READ, "exit")
                return exit_fd
        popen = self._popen

        def wait_then_wake() -> None:
            popen.wait()
            self._wake()

        threading.Thread(target=wait_then_wake, name="openjd-action-waiter", daemon=True).start()
        return None

    def _pump_until_done(self, selector: selectors.BaseSelector, stdout_fd: int) -> None:
        assert self._popen is not None
        output_open = True
        drain_until: float | None = None
        while True:
            for key, _ in selector.select(self._select_timeout(drain_until)):
                if key.data == "out" and not self._read_output(stdout_fd):
                    selector.unregister(stdout_fd)
                    output_open = False
                elif key.data == "wake":
                    os.read(self._wake_r, 4096)
                elif key.data == "exit":
                    selector.unregister(key.fd)
                    self._popen.wait()
            self._serve_requests_and_deadlines()
            if self._popen.poll() is None:
                continue
            if not output_open:
                return
            now = time.monotonic()
            if drain_until is None:
                drain_until = now + _STDOUT_DRAIN_AFTER_EXIT_S
            elif now >= drain_until:
                self._read_output(stdout_fd)
                return

    def _select_timeout(self, drain_until: float | None) -> float | None:
        deadlines = [d for d in (self._timeout_at, self._grace_ends, drain_until) if d is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _read_output(self, fd: int) -> bool:
        """Read what is available; False at end of file."""
        while True:
            try:
                chunk = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self._accept_bytes(chunk)
            if len(chunk) < _READ_SIZE:
                return True

    def _accept_bytes(self, chunk: bytes) -> None:
        # Incremental decoding keeps multi-byte characters whole across reads.
        self._accept_text(self._decoder.decode(chunk))

    def _accept_text(self, text: str) -> None:
        text = self._pending + text
        carriage_return = ""
        if "\r" in text:
            # Universal newlines, like a text-mode reader: \r\n, \r and \n end a line. A
            # final \r may be the first half of a \r\n that the next read completes.
            if text.endswith("\r"):
                text, carriage_return = text[:-1], "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        complete, newline, rest = text.rpartition("\n")
        lines = complete.split("\n") if newline else []
        # An endless line still reaches the log, in records of at most MAX_LINE_CHARACTERS;
        # enough is held back that a secret is never cut in two.
        hold_back = max(0, self._cutter.longest_secret - 1)
        while len(rest) >= MAX_LINE_CHARACTERS + hold_back:
            cut = self._cutter.safe_cut(rest, MAX_LINE_CHARACTERS)
            lines.append(rest[:cut])
            rest = rest[cut:]
        self._pending = rest + carriage_return
        if lines:
            self._on_lines(lines)

    def _flush_pending(self) -> None:
        self._accept_text(self._decoder.decode(b"", final=True))
        text, self._pending = self._pending.removesuffix("\r"), ""
        if text:
            self._on_lines([text])

    # ---- cancelation -------------------------------------------------------------------

    def _serve_requests_and_deadlines(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, []
        for request in requests:
            self._serve(request)
        now = time.monotonic()
        if self._timeout_at is not None and now >= self._timeout_at:
            self._timeout_at = None
            self._log.info(
                f"TIMEOUT - Runtime limit reached at {_utc_stamp(datetime.now(timezone.utc))}. "
                "Canceling action.",
                LogContent.PROCESS_CONTROL,
            )
            self._serve(CancelRequest(CancelReason.TIMEOUT))
        if self._grace_ends is not None and time.monotonic() >= self._grace_ends:
            self._grace_ends = None
            self._log.info(
                f"Notify period ended. Terminate at {_utc_stamp(datetime.now(timezone.utc))}",
                LogContent.PROCESS_CONTROL,
            )
            self._terminate()

    def _serve(self, request: CancelRequest) -> None:
        if self._popen is None or self._popen.poll() is not None:
            self._remember(request)
            return
        self._remember(request)
        notify = self._spec.notify_period_s
        if request.force or notify is None:
            if not request.force:
                self._log.info(
                    f"Canceling subprocess {self._popen.pid} via termination method at "
                    f"{_utc_stamp(datetime.now(timezone.utc))}.",
                    LogContent.PROCESS_CONTROL,
                )
            self._terminate()
            return
        self._notify(notify, request.time_limit_s)

    def _remember(self, request: CancelRequest) -> None:
        if self._cancel_reason is None:
            self._cancel_reason = request.reason
        self._mark_failed = self._mark_failed or request.mark_failed

    def _notify(self, period_s: int, time_limit_s: float | None) -> None:
        assert self._popen is not None
        grace_s: float = period_s if time_limit_s is None else min(period_s, time_limit_s)
        now = time.monotonic()
        already_notified = self._grace_ends is not None
        if self._grace_ends is None:
            self._log.info(
                f"Canceling subprocess {self._popen.pid} via notify then terminate method at "
                f"{_utc_stamp(datetime.now(timezone.utc))}.",
                LogContent.PROCESS_CONTROL,
            )
            self._grace_ends = now + grace_s
        else:
            self._grace_ends = min(self._grace_ends, now + grace_s)
        ends_at = datetime.now(timezone.utc) + timedelta(seconds=self._grace_ends - now)
        if not self._write_cancel_info(ends_at):
            self._terminate()
            return
        self._log.info(f"Grace period ends at {_utc_stamp(ends_at)}", LogContent.PROCESS_CONTROL)
        if already_notified:
            # One notify per action: a second SIGTERM means "abort now" to many renderers,
            # which would lose the checkpoint the grace period exists to protect.
            return
        self._log.info(
            f'INTERRUPT: Sending signal "term" to the process groups of {self._popen.pid}',
            LogContent.PROCESS_CONTROL,
        )
        _process_tree.notify_tree(
            self._spec.tag, self._popen.pid, signal.SIGTERM, self._spec.sudo_user
        )

    def _write_cancel_info(self, ends_at: datetime) -> bool:
        try:
            self._spec.cancel_info_path.write_text(
                json.dumps({"NotifyEnd": _utc_stamp(ends_at)}), encoding="utf-8"
            )
        except OSError as error:
            self._log.warning(
                f"Could not write {self._spec.cancel_info_path} ({error}); terminating instead.",
                LogContent.PROCESS_CONTROL,
            )
            return False
        return True

    def _terminate(self) -> None:
        assert self._popen is not None
        self._grace_ends = None
        self._log.info(
            f'INTERRUPT: Sending signal "kill" to the process tree of {self._popen.pid}',
            LogContent.PROCESS_CONTROL,
        )
        _process_tree.kill_tree(
            self._spec.tag, self._popen.pid, self._popen.pid, self._spec.sudo_user
        )

    # ---- the end -----------------------------------------------------------------------

    def _finish(self) -> None:
        assert self._popen is not None
        self._flush_pending()
        if self._cancel_reason is not None:
            # A canceled action reports its end only once nothing of its tree is alive.
            _process_tree.kill_tree(self._spec.tag, None, self._popen.pid, self._spec.sudo_user)
        if self._popen.stdout is not None:
            self._popen.stdout.close()
        exit_code = self._popen.wait()
        with self._lock:
            self._finished.set()
            self._close_wake_pipe()
            outcome = ProcessOutcome(
                exit_code, self._cancel_reason, self._mark_failed, datetime.now(timezone.utc)
            )
        self._on_exit(outcome)

    def _close_wake_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
