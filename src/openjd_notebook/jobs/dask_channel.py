"""The event channel from a worker's nodes to the client that owns the run.

On the worker, ``EventChannel`` is the nodes' ``EventSink``: it buffers their events, joins
consecutive log lines of one action, and sends a numbered batch every ``flush_s`` (and at
once for a task start, and whenever the caller needs everything sent, such as at the end of
a task). Batches go out through a Dask topic (``Worker.log_event``) in the order they were
numbered. On the client, ``ChannelReceiver`` decodes each batch into the run's sink and
remembers the last number seen per channel, so the executor can wait until everything a
node published before a task ended has arrived, and hand over the task's outcome only then.

Secrets never leave the worker: a session redacts its lines before any handler sees them.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .events import ActionSource, Event, EventSink, LogLines, TaskStarted
from .wire import NODE_EVENT_TYPES, NodeEvent, decode_event, encode_event

__all__ = ["ChannelReceiver", "EventChannel"]

_LOG = logging.getLogger(__name__)
_MAX_LINES = 1000
"""Lines per batch: bounds each message, and what the scheduler keeps of the topic's tail."""

Send = Callable[[dict[str, Any]], None]


class EventChannel:
    """Worker side: an ``EventSink`` that sends what nodes publish, in order, in batches."""

    def __init__(self, send: Send, flush_s: float) -> None:
        self.channel_id = uuid.uuid4().hex
        self._send = send
        self._flush_s = flush_s
        self._lock = threading.Lock()
        self._pending: list[NodeEvent | tuple[ActionSource, list[str]]] = []
        self._pending_lines = 0
        self._seq = 0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._flush_periodically, daemon=True)
        self._thread.name = f"openjd-channel-{self.channel_id[:8]}"
        self._thread.start()

    def publish(self, event: Event) -> None:
        if not isinstance(event, NODE_EVENT_TYPES):
            raise TypeError(f"a node does not publish {type(event).__name__}")
        with self._lock:
            self._pending.append(event)
            if isinstance(event, TaskStarted):  # at once: the client counts attempts by it
                self._flush_locked()

    def publish_line(self, source: ActionSource, text: str) -> None:
        with self._lock:
            last = self._pending[-1] if self._pending else None
            if isinstance(last, tuple) and (last[0] is source or last[0] == source):
                last[1].append(text)
            else:
                self._pending.append((source, [text]))
            self._pending_lines += 1
            if self._pending_lines >= _MAX_LINES:
                self._flush_locked()

    def flush(self) -> int:
        """Send what is buffered; returns the number of the last batch sent."""
        with self._lock:
            return self._flush_locked()

    def stop(self) -> int:
        """Stop the periodic flush and send the rest; returns the last batch number."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        return self.flush()

    def _flush_periodically(self) -> None:
        while not self._stopped.wait(self._flush_s):
            try:
                self.flush()
            except Exception:
                _LOG.exception("openjd-notebook: could not send node events")

    def _flush_locked(self) -> int:
        if not self._pending:
            return self._seq
        events = [_encode(item) for item in self._pending]
        self._pending = []
        self._pending_lines = 0
        self._seq += 1
        # Sent under the lock, so batches leave in the order of their numbers.
        self._send({"channel": self.channel_id, "seq": self._seq, "events": events})
        return self._seq


def _encode(item: NodeEvent | tuple[ActionSource, list[str]]) -> dict[str, Any]:
    if isinstance(item, tuple):
        source, lines = item
        item = LogLines(
            source.worker, source.step, source.task, source.environment, tuple(lines), source.scope
        )
    return encode_event(item)


class ChannelReceiver:
    """Client side: publishes received batches into ``sink`` and tracks what has arrived."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self._arrived = threading.Condition()
        self._last_seq: dict[str, int] = {}
        self._starts: dict[tuple[str, int], int] = {}

    def handle(self, event: tuple[float, Mapping[str, Any]]) -> None:
        """A Dask topic handler: runs on the client's event loop, so it never raises."""
        try:
            _, body = event
            for encoded in body["events"]:
                self._deliver(decode_event(encoded))
            channel, seq = str(body["channel"]), int(body["seq"])
        except Exception:
            _LOG.exception("openjd-notebook: could not read a batch of node events")
            return
        with self._arrived:
            self._last_seq[channel] = max(seq, self._last_seq.get(channel, 0))
            self._arrived.notify_all()

    def wait_for(self, channel: str, seq: int, timeout_s: float) -> bool:
        """Block until batch ``seq`` of ``channel`` arrived; False after ``timeout_s``."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self._last_seq.get(channel, 0) >= seq, timeout_s)

    def starts(self, step: str, task: int) -> int:
        """How many times a node reported starting this task (more than one after a retry)."""
        with self._arrived:
            return self._starts.get((step, task), 0)

    def _deliver(self, event: Event) -> None:
        if isinstance(event, LogLines):
            source = event.source
            for line in event.lines:
                self._sink.publish_line(source, line)
            return
        if isinstance(event, TaskStarted):
            with self._arrived:
                key = (event.step, event.task)
                self._starts[key] = self._starts.get(key, 0) + 1
        self._sink.publish(event)
