"""The package logger and the per-session log writer.

Every session writes through its own ``SessionLog``: redaction, the runtime log level and
the ``session_id`` attribute live there, so nothing one session does changes another, and
nothing is set on ``LOG`` itself (handlers and levels stay the application's business).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from enum import Flag, auto

from ._redaction import Redactor

__all__ = ["LOG", "LogContent", "SessionLog"]

LOG = logging.getLogger("openjd_notebook.sessions")
"""The engine's logger. Records carry ``session_id`` and ``openjd_log_content`` attributes."""

_BANNER_RULE = "=" * 46
_SUBSECTION_RULE = "-" * 46


class LogContent(Flag):
    """What a log record contains, so that consumers can filter on ``openjd_log_content``."""

    BANNER = auto()
    FILE_PATH = auto()
    FILE_CONTENTS = auto()
    COMMAND_OUTPUT = auto()
    EXCEPTION_INFO = auto()
    PROCESS_CONTROL = auto()
    PARAMETER_INFO = auto()
    HOST_INFO = auto()


class SessionLog:
    """Writes one session's records to ``LOG`` (and to extra handlers of its own)."""

    def __init__(
        self,
        session_id: str,
        redactor: Redactor,
        *,
        logger: logging.Logger = LOG,
        handlers: Sequence[logging.Handler] = (),
    ) -> None:
        self.session_id = session_id
        self.redactor = redactor
        self._logger = logger
        self._handlers = tuple(handlers)
        self.runtime_level: int | None = None

    def threshold(self) -> int:
        """The lowest level this session emits.

        A level requested by the session's own actions wins; otherwise the level the
        application set on ``LOG``; otherwise INFO, the reference library's default.
        """
        if self.runtime_level is not None:
            return self.runtime_level
        return self._logger.level or logging.INFO

    def log(self, level: int, message: str, content: LogContent | None = None) -> None:
        if level < self.threshold():
            return
        if self.redactor:
            message = self.redactor.redact(message)
        self._dispatch(self._make_record(level, message, content))

    def log_lines(self, lines: list[str], content: LogContent | None = None) -> None:
        """Log many INFO lines at once, e.g. one read of a process's output.

        Records are copied from one template instead of running ``LogRecord.__init__``
        per line, which is most of the cost of logging output; an application that
        installed its own record factory still gets its factory.
        """
        if self.threshold() > logging.INFO or not lines:
            return
        redact = self.redactor.redact if self.redactor else None
        if logging.getLogRecordFactory() is not logging.LogRecord:
            for line in lines:
                self._dispatch(
                    self._make_record(logging.INFO, redact(line) if redact else line, content)
                )
            return
        template = self._make_record(logging.INFO, "", content).__dict__
        started = template["created"] - template["relativeCreated"] / 1000
        for line in lines:
            fields = template.copy()
            now = time.time()
            fields["msg"] = redact(line) if redact else line
            fields["created"] = now
            fields["msecs"] = (now - int(now)) * 1000
            fields["relativeCreated"] = (now - started) * 1000
            record = logging.LogRecord.__new__(logging.LogRecord)
            record.__dict__ = fields
            self._dispatch(record)

    def _make_record(
        self, level: int, message: str, content: LogContent | None
    ) -> logging.LogRecord:
        return self._logger.makeRecord(
            self._logger.name,
            level,
            "(openjd session)",
            0,
            message,
            (),
            None,
            extra={"session_id": self.session_id, "openjd_log_content": content},
        )

    def _dispatch(self, record: logging.LogRecord) -> None:
        for handler in self._handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
        self._logger.handle(record)

    def debug(self, message: str, content: LogContent | None = None) -> None:
        self.log(logging.DEBUG, message, content)

    def info(self, message: str, content: LogContent | None = None) -> None:
        self.log(logging.INFO, message, content)

    def warning(self, message: str, content: LogContent | None = None) -> None:
        self.log(logging.WARNING, message, content)

    def error(self, message: str, content: LogContent | None = None) -> None:
        self.log(logging.ERROR, message, content)

    def section_banner(self, title: str) -> None:
        self.info("")
        for line in (_BANNER_RULE, f"--------- {title}", _BANNER_RULE):
            self.info(line, LogContent.BANNER)

    def subsection_banner(self, title: str) -> None:
        for line in (_SUBSECTION_RULE, title, _SUBSECTION_RULE):
            self.info(line, LogContent.BANNER)
