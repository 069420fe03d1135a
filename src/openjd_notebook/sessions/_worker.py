"""A long-lived daemon thread that runs a session's pumps one after another."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["SerialWorker"]


class SerialWorker:
    """Runs submitted callables in order on one daemon thread, started on first use.

    Unlike ``ThreadPoolExecutor``, nothing joins this thread when Python exits, so a pump
    busy with a long action cannot hold up interpreter exit (and the exit handlers that
    kill the session's processes).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, work: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put(work)

    def shutdown(self) -> None:
        """Let the thread end once the work already submitted is done."""
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            work()
            # Drop the reference while idle, so a finished action's session can be collected.
            del work
