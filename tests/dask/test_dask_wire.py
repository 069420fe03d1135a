"""The event channel's pieces without a cluster: the codec, batching, order and arrival."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import pytest

from openjd_notebook.jobs import (
    EnvironmentEntered,
    EnvironmentExited,
    EnvironmentOutcome,
    Event,
    LogLines,
    RunStarted,
    TaskProgress,
    TaskStarted,
    TaskStatus,
)
from openjd_notebook.jobs.dask_channel import ChannelReceiver, EventChannel
from openjd_notebook.jobs.events import ActionSource
from openjd_notebook.jobs.wire import decode_event, encode_event

msgpack = pytest.importorskip("msgpack")

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
EVENTS: list[Any] = [
    TaskStarted("Render", 3, {"Frame": 4, "Scale": 0.5, "Out": "/out/a"}, "0", NOW),
    TaskProgress("Render", 3, "0", 42.5),
    TaskStatus("Render", 3, "0", "half way"),
    EnvironmentEntered("RenderEnv", "step", "Render", "1", True, NOW),
    EnvironmentExited(
        EnvironmentOutcome("JobEnv", "job", None, "1", "success", NOW, NOW, "logs/x.log")
    ),
    LogLines("0", None, None, "JobEnv", ("one", "two"), "job"),
]


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.lines: list[tuple[ActionSource, str]] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def publish_line(self, source: ActionSource, text: str) -> None:
        self.lines.append((source, text))


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_node_event_survives_msgpack(event: Any) -> None:
    encoded = encode_event(event)
    assert decode_event(msgpack.unpackb(msgpack.packb(encoded))) == event


def test_only_node_events_decode() -> None:
    with pytest.raises(ValueError, match="unknown encoded type"):
        decode_event({"type": "RunStarted"})


def test_a_channel_joins_consecutive_lines_and_numbers_its_batches() -> None:
    sent: list[dict[str, Any]] = []
    channel = EventChannel(sent.append, flush_s=60)
    a, b = ActionSource("0", "Render", 1), ActionSource("0", None, None, "Env", "job")
    for source, text in ((a, "1"), (a, "2"), (b, "x"), (a, "3")):
        channel.publish_line(source, text)
    channel.publish(TaskProgress("Render", 1, "0", 10.0))

    assert channel.flush() == 1
    assert channel.flush() == 1  # nothing new: no empty batch
    sink = Sink()
    receiver = ChannelReceiver(sink)
    receiver.handle((0.0, sent[0]))
    assert [text for _, text in sink.lines] == ["1", "2", "x", "3"]
    assert [source for source, _ in sink.lines] == [a, a, b, a]
    assert sink.events == [TaskProgress("Render", 1, "0", 10.0)]
    assert [len(event["events"]) for event in sent] == [4]
    assert receiver.wait_for(channel.channel_id, 1, timeout_s=0)
    assert not receiver.wait_for(channel.channel_id, 2, timeout_s=0)


def test_a_task_start_is_sent_at_once_and_counted_as_an_attempt() -> None:
    sent: list[dict[str, Any]] = []
    channel = EventChannel(sent.append, flush_s=60)
    channel.publish(EVENTS[0])
    receiver = ChannelReceiver(Sink())
    for batch in sent:
        receiver.handle((0.0, batch))
    channel.publish(EVENTS[0])
    for batch in sent[1:]:
        receiver.handle((0.0, batch))
    assert len(sent) == 2 and receiver.starts("Render", 3) == 2


def test_a_channel_flushes_on_its_own_and_when_stopped() -> None:
    sent: list[dict[str, Any]] = []
    arrived = threading.Event()
    channel = EventChannel(lambda batch: (sent.append(batch), arrived.set()), flush_s=0.01)
    channel.start()
    channel.publish_line(ActionSource("0", "A", 0), "periodic")
    assert arrived.wait(5)
    channel.publish_line(ActionSource("0", "A", 0), "last")
    last = channel.stop()
    assert [e["lines"] for batch in sent for e in batch["events"]] == [["periodic"], ["last"]]
    assert last == sent[-1]["seq"]


def test_a_node_publishes_node_events_only() -> None:
    channel = EventChannel(lambda batch: None, flush_s=60)
    with pytest.raises(TypeError):
        channel.publish(RunStarted("r", "j", (), {}, NOW, None))


def test_a_malformed_batch_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    receiver = ChannelReceiver(Sink())
    receiver.handle((0.0, {"channel": "c", "seq": 1, "events": [{"type": "Nope"}]}))
    assert "could not read a batch" in caplog.text
    assert not receiver.wait_for("c", 1, timeout_s=0)
