"""Ctrl-C while waiting for a run: counted by a signal handler, acted on by the waiting loop.

A ``KeyboardInterrupt`` raised in the middle of the loop's own cancel request could escape
while the run goes on; a handler that only queues the request cannot.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

__all__ = ["interrupts_as_requests"]


@contextlib.contextmanager
def interrupts_as_requests(
    request: Callable[[bool], None],
    signals: Sequence[signal.Signals] = (signal.SIGINT,),
) -> Iterator[bool]:
    """While inside, each of ``signals`` calls ``request`` (a queue's ``put``) with a cancel
    request: False first, then True (force). Yields whether the handler is installed:
    signals reach only the main thread, so elsewhere nothing changes (and no
    ``KeyboardInterrupt`` can arrive there either).

    ``request`` runs in a signal handler, where ``SimpleQueue.put`` is safe. The previous
    handlers come back on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    presses = itertools.count()

    def handler(signum: int, frame: FrameType | None) -> None:
        request(next(presses) > 0)

    previous = {sig: signal.getsignal(sig) for sig in signals}
    try:
        for sig in previous:
            signal.signal(sig, handler)
        yield True
    finally:
        for sig, old in previous.items():
            # None means a handler not set from Python; the default is the closest we can do.
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
