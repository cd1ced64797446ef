"""Structured logs (one JSON object per line) that never carry a secret or patient data.

What could leak into a log line is a request path or header: patient form links (/f/<token>/),
staff invitation links (/join/<token>/), API tokens (bdn_...) and Authorization headers. Every
message passes through ``scrub`` (``RedactingFilter`` on the handler); gunicorn's access log uses
``GunicornLogger``, which scrubs the same way. Log messages never name patients: the
application logs codes and counts, and pages or API responses are never logged.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger

_PATTERNS = [
    (re.compile(r"/(f|join)/[^/\s?\"']+"), r"/\1/[redacted]"),
    (re.compile(r"\bbdn_[A-Za-z0-9_\-]+"), "bdn_[redacted]"),
    (re.compile(r"(?i)\b(bearer|token)\s+[^\s\"',]+"), r"\1 [redacted]"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record's message with tokens and links removed (keeps the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        return True


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message, and for request logs the method, path
    (scrubbed) and status."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            entry["method"] = getattr(request, "method", None)
            entry["path"] = scrub(request.path)
        if hasattr(record, "status_code"):
            entry["status"] = record.status_code
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class GunicornLogger(_GunicornLogger):  # type: ignore[misc]
    """gunicorn's access log without link tokens in paths or secrets in headers
    (``--logger-class monitoring.security.logs.GunicornLogger``)."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: scrub(value) if isinstance(value, str) else value for key, value in atoms.items()}
