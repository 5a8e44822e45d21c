"""Graph's error answers, turned into the typed errors of `sync.errors`.

Graph answers a failure with ``{"error": {"code", "message"}}``, on the request itself or on one
step of a ``$batch``; both are read here, and the class comes from ``GRAPH_STATUS_ERRORS``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from sync.client_http import parse_retry_after
from sync.errors import GRAPH_STATUS_ERRORS, GraphError, GraphThrottled, GraphUnavailable


def graph_error(response: requests.Response) -> GraphError:
    """The typed error for a Graph error response (``{"error": {"code", "message"}}``)."""
    code, message = _error_fields(response)
    retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
    where = f"{response.request.method} {path_of(response.url)}"
    return error_of(response.status_code, code, message or where, retry_after)


def error_of(status: int, code: str | None, message: str, retry_after: float | None) -> GraphError:
    """The typed error for ``status``: the table's class, but a 503 that says when to come back
    is a throttle, not an outage."""
    kind = GRAPH_STATUS_ERRORS.kind_of(status)
    if status == 503 and retry_after is not None and kind is GraphUnavailable:
        kind = GraphThrottled
    return kind(status, code, message, retry_after=retry_after)


def _error_fields(response: requests.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, response.reason or ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None, response.reason or ""
    return fields_of(body)


def fields_of(body: Any) -> tuple[str | None, str]:
    """The ``code`` and ``message`` of a Graph error body (None and "" when it has none)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    return (str(code) if code else None), str(error.get("message") or "")


def header(headers: dict[str, str], name: str) -> str | None:
    """A header of a ``$batch`` step's answer (a plain dict), by case-insensitive name."""
    lowered = name.lower()
    return next((str(value) for key, value in headers.items() if key.lower() == lowered), None)


def path_of(url: str | None) -> str:
    return urlsplit(url or "").path
