"""Action logs written on the record's side from the lines nodes publish."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from openjd_notebook.jobs import (
    EnvironmentEntered,
    Event,
    TaskEnded,
    TaskOutcome,
    TaskStarted,
)
from openjd_notebook.jobs.action_logs import (
    ActionLogWriter,
    environment_log_name,
    task_log_name,
)
from openjd_notebook.jobs.events import ActionSource

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Sink:
    def __init__(self) -> None:
        self.received: list[object] = []

    def publish(self, event: Event) -> None:
        self.received.append(event)

    def publish_line(self, source: ActionSource, text: str) -> None:
        self.received.append((source, text))


def test_lines_go_to_their_actions_log_and_on_to_the_events(tmp_path: Path) -> None:
    sink = Sink()
    writer = ActionLogWriter(tmp_path, sink)
    task = ActionSource("worker-1", "Render", 3)
    env = ActionSource("worker-2", None, None, "JobEnv", "job")
    idle = ActionSource("worker-1", None)

    writer.publish(TaskStarted("Render", 3, {}, "worker-1", NOW))
    writer.publish_line(task, "frame 3")
    writer.publish_line(env, "entering")
    writer.publish_line(idle, "between actions")
    writer.publish_line(task, "done")
    writer.close()

    assert (tmp_path / task_log_name("Render", 3)).read_text() == "frame 3\ndone\n"
    env_log = tmp_path / environment_log_name("JobEnv", "job", None, "worker-2")
    assert env_log.read_text() == "entering\n"
    assert len(sink.received) == 5


def test_a_log_exists_from_the_actions_start_even_without_lines(tmp_path: Path) -> None:
    writer = ActionLogWriter(tmp_path, Sink())
    writer.publish(TaskStarted("Render", 0, {}, "w", NOW))
    writer.publish(EnvironmentEntered("Env", "step", "Render", "w", True, NOW))
    writer.publish(TaskEnded(TaskOutcome("Render", 0, worker="w")))
    writer.close()

    assert (tmp_path / task_log_name("Render", 0)).read_text() == ""
    assert (tmp_path / environment_log_name("Env", "step", "Render", "w")).read_text() == ""


def test_names_match_the_record_layout() -> None:
    assert task_log_name("Render", 7) == "logs/Render/task-0007.log"
    assert environment_log_name("Env", "step", "Render", "worker-1") == (
        "logs/environments/worker-1.step.Render.Env.log"
    )
