"""Logs as one JSON object per line, so an operator can filter and join them (by `requestId`) with any tool.

Every record carries `time` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message` and the
`requestId` of the request it was logged in (null outside one); an access line adds the request's
`method`, `route`, `status`, `durationMs`, `keyId` and `project`; a record with an exception adds its
`error` type and `traceback`. Nothing here logs a request's body, headers or query: only what the
code passes to a logger, and the access fields, which name a key by its id, never its secret.
"""

from __future__ import annotations

import logging
import logging.config
import time
import traceback
from typing import Any

import msgspec

from domain.request_context import current_request_id

FIELDS = "fields"
"""A log call's `extra={"fields": {...}}` adds these keys to its line (the access line uses it)."""

LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}

_encoder = msgspec.json.Encoder(enc_hook=str)


def rfc3339_ms(created: float) -> str:
    """`2026-01-31T12:34:56.789Z` for a `time.time()` value."""
    seconds = int(created)
    return (
        f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{int((created - seconds) * 1000):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON; newlines inside values are escaped by the encoding."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": rfc3339_ms(record.created),
            "level": LEVELS.get(record.levelno, record.levelname.lower()),
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": current_request_id.get(),
        }
        fields = getattr(record, FIELDS, None)
        if fields:
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        elif record.stack_info:
            line["stack"] = record.stack_info
        return _encoder.encode(line).decode()


LOG_LEVEL = "INFO"

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "api.logs.JsonFormatter"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # uvicorn's own lines (startup, shutdown, protocol errors) go through the root's JSON handler;
        # its access line is off: `api.request_ids` writes one access line per request instead.
        "uvicorn": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "uvicorn.error": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        # one line per HTTP call of the app's own clients would drown the access lines
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
"""The process's logging: every logger's records as JSON lines on stdout. Handed to uvicorn as
`log_config`, so each worker process configures itself the same way."""


def configure_logging() -> None:
    """Set up JSON logging for this process (the serve command calls it before anything logs)."""
    logging.config.dictConfig(LOG_CONFIG)
