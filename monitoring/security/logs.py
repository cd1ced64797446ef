"""Structured logs (one JSON object per line) that never carry a secret or patient data.

What could leak into a log line is a request path or header: patient form links (/f/<token>/),
staff invitation links (/join/<token>/), password-reset keys (/accounts/password/reset/key/...),
API tokens (bdn_...) and Authorization headers. Every message passes through ``scrub``
(``RedactingFilter`` on the handler); gunicorn's own log and access log use ``GunicornLogger``,
which writes the same JSON lines, scrubbed the same way, and leaves query strings out. Log
messages never name patients: the application logs codes and counts, and pages or API responses
are never logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger

_PATTERNS = [
    (re.compile(r"/(f|join)/[^/\s?\"']+"), r"/\1/[redacted]"),
    (re.compile(r"/password/reset/key/[^/\s?\"']+"), "/password/reset/key/[redacted]"),
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
    (scrubbed) and status; a record's ``http`` dict (gunicorn's access lines) is merged in."""

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
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            entry.update({key: scrub(v) if isinstance(v, str) else v for key, v in http.items()})
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class GunicornLogger(_GunicornLogger):  # type: ignore[misc]
    """gunicorn's own log and access log as JSON lines (``JsonFormatter``), scrubbed
    (``--access-logfile - --logger-class monitoring.security.logs.GunicornLogger``).

    An access line is ``{"time", "level", "logger": "gunicorn.access", "message": "GET /f/[redacted]/
    200", "method", "path", "status", "duration_ms", "remote_addr", "bytes"}``; the path is scrubbed
    and has no query string (a search can hold a patient's name). ``--access-logformat`` is not
    used.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(JsonFormatter())
                    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                        handler.addFilter(RedactingFilter())
        # Python's warnings (a missing static directory, a deprecation) would be printed as plain
        # text on stderr, the log: route them through logging, and give the root logger a JSON
        # handler until Django's LOGGING (which replaces it) is configured in the worker.
        logging.captureWarnings(True)
        if not logging.root.handlers:
            fallback = logging.StreamHandler()
            fallback.setFormatter(JsonFormatter())
            fallback.addFilter(RedactingFilter())
            logging.root.addHandler(fallback)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        with contextlib.suppress(TypeError, ValueError):
            status = int(status)
        method = str(environ.get("REQUEST_METHOD") or "-")
        path = scrub(str(environ.get("PATH_INFO") or "/"))
        http = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote_addr": environ.get("REMOTE_ADDR", "-"),
            "bytes": getattr(resp, "sent", None),
        }
        try:
            self.access_log.info("%s %s %s", method, path, status, extra={"http": http})
        except Exception:
            self.error("Could not write an access line", exc_info=True)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: scrub(value) if isinstance(value, str) else value for key, value in atoms.items()}
