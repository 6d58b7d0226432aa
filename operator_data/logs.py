"""Log output for the long-running commands (`pintar hub`, `pintar gateway`): plain text
for a terminal or the journal, or one JSON object per line for a log collector.

A JSON line holds `time` (UTC, ISO 8601 with its offset), `level`, `logger`, `message`
and, when the record carries one, `exception` (the formatted traceback) and `stack`.
JSON escapes newlines, so a traceback never splits a record across lines.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Handler(logging.StreamHandler[TextIO]):
    """The handler configure_logging installs (known by its class when replaced)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted by another handler
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a message argument that is not JSON-serialisable has already been
        # rendered by getMessage(), so only odd `extra` values could reach here.
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format {log_format!r}: expected one of {', '.join(LOG_FORMATS)}")


def configure_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Send the root logger's records at `level` and above to `stream` (stderr: stdout
    carries the commands' one-line status for supervisors) in `log_format`.

    Raises ValueError on an unknown level or format, before anything is changed.
    """
    name = level.upper()
    if name not in LOG_LEVELS:
        raise ValueError(f"log level {level!r}: expected one of {', '.join(LOG_LEVELS)}")
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    # Replaces what an earlier call installed (a test, a re-run in one process) instead of
    # printing every record twice.
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(name)
