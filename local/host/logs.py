"""Structured logs: one JSON object per line on the console, with the function and invocation
that wrote it (the real host sends the same fields to Application Insights)."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_invocation: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("invocation", default=None)

# Attributes every LogRecord has; anything else was passed as ``extra=`` and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        invocation = _invocation.get()
        if invocation:
            entry["function"], entry["invocation_id"] = invocation
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Azure SDKs log every HTTP request at INFO, headers included: keep them to warnings.
    for noisy in ("azure", "urllib3", "msal", "uvicorn.error", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def invocation(function_name: str) -> Iterator[str]:
    """Tag log lines written inside with the function and a fresh invocation id."""
    invocation_id = str(uuid.uuid4())
    token = _invocation.set((function_name, invocation_id))
    try:
        yield invocation_id
    finally:
        _invocation.reset(token)
