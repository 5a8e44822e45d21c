"""One structured log line per sync action and per webhook, safe to keep in Application Insights.

Contract of ``log_event(logger, event, *, tech, job_id, correlation_id, level=logging.INFO, **fields)``:

- It writes exactly one log record whose message is one line of JSON, and returns that line::

      {"event": "sync.action", "tech": 42, "job_id": "7c1e...", "correlation_id": "b3f0...",
       "action": "create_in_outlook", "outcome": "done", "status_code": 201}

  ``event``, ``tech``, ``job_id`` and ``correlation_id`` come first, always present (``null`` when
  not known, e.g. a webhook before its body names a tech); the other fields follow sorted by name.
- ``event`` is a dotted lower-case name (``sync.action``, ``webhook.syncro``, ``webhook.graph``).
  Anything else is a bug in the caller and raises ``ValueError``; nothing else ever raises, so a
  log line can never break a sync or a webhook.
- ``tech`` is the Syncro user id; ``job_id`` the sync job (queue message) id; ``correlation_id``
  ties together the lines of one request or job (the Functions invocation id, or the id a webhook
  carries). Each is written as given: an int, a string, or ``null``.
- Field values are scalars: str, int, float, bool, None; datetimes and dates are written in ISO
  8601, enums as their value. Anything else (a dict, a list, bytes, an object: where a request or
  event body would hide) is written as ``"[not logged: <type>]"``. Strings are cut to 200
  characters.
- Never a secret: a field whose name contains token, secret, body, password, passwd, code, key,
  authorization, cookie, credential, signature, assertion, clientstate or jwt (case and ``_``/``-``
  ignored) is written as ``"[redacted]"``, except ``status_code`` and ``error_code``, which are
  protocol codes. A string that looks like a credential (``Bearer ...``, a JWT ``eyJ...``) is
  redacted whatever its field is called. ``tech``, ``job_id`` and ``correlation_id`` get the same
  value check.

In Application Insights (the host forwards each record to the ``traces`` table)::

    traces
    | where message startswith '{"event":'
    | extend e = parse_json(message)
    | where e.event == "sync.action" and e.tech == 42
    | project timestamp, e.action, e.outcome, e.correlation_id
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime
from enum import Enum
from typing import Any

__all__ = ["REDACTED", "log_event"]

REDACTED = "[redacted]"
MAX_TEXT = 200

_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
_SENSITIVE_PARTS = (
    "token",
    "secret",
    "body",
    "password",
    "passwd",
    "code",
    "key",
    "authorization",
    "cookie",
    "credential",
    "signature",
    "assertion",
    "clientstate",
    "jwt",
)
_PROTOCOL_CODES = frozenset({"status_code", "error_code"})
# "Bearer <anything>", or three base64url segments starting like a JSON header (a JWT).
_CREDENTIAL_VALUE = re.compile(r"(?i:bearer\s+\S)|eyJ[\w-]{4,}\.[\w-]+\.")


def log_event(
    logger: logging.Logger,
    event: str,
    *,
    tech: int | str | None,
    job_id: str | None,
    correlation_id: str | None,
    level: int = logging.INFO,
    **fields: Any,
) -> str:
    """Log one structured line (see the module docstring) and return it.

    Raises ValueError if ``event`` is not a dotted lower-case name; never for a field's value.
    """
    if not isinstance(event, str) or not _EVENT_NAME.fullmatch(event):
        raise ValueError(f"event names are dotted lower-case words like 'sync.action', not {event!r}")
    record: dict[str, Any] = {
        "event": event,
        "tech": _value(tech),
        "job_id": _value(job_id),
        "correlation_id": _value(correlation_id),
    }
    for name in sorted(fields):
        record[name] = REDACTED if _is_sensitive(name) else _value(fields[name])
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    logger.log(level, "%s", line)
    return line


def _is_sensitive(name: str) -> bool:
    if name.lower() in _PROTOCOL_CODES:
        return False
    squashed = re.sub(r"[_\-\s]", "", name.lower())
    return any(part in squashed for part in _SENSITIVE_PARTS)


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        if _CREDENTIAL_VALUE.search(value):
            return REDACTED
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    return f"[not logged: {type(value).__name__}]"
