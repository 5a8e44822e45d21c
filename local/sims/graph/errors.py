"""Graph's error shape and the exception handlers raise to answer with it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class GraphError(Exception):
    """Answer the current request with Graph's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str, *, request_id: str = "", client_request_id: str = "") -> dict[str, Any]:
    request_id = request_id or str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


@dataclass
class GraphResponse:
    """What a handler returns; the HTTP layer and $batch both turn it into their own form."""

    status: int = 200
    body: Any = None  # JSON-able, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


def not_found(message: str = "The specified object was not found in the store.") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", message)


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


# What an injected fault answers when its rule gives no body.
FAULT_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "ErrorAccessDenied",
    404: "ErrorItemNotFound",
    409: "ErrorIrresolvableConflict",
    410: "SyncStateNotFound",
    412: "ErrorIrresolvableConflict",
    429: "TooManyRequests",
    500: "generalException",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


# Graph's own wording where it is known, so an injected fault reads like the real one.
FAULT_MESSAGES = {
    412: "The change key passed in the request does not match the current change key for the item.",
    410: "The sync state generation is not found. Delta tokens may be expired or invalid.",
}


def fault_error_body(status: int) -> dict[str, Any]:
    code = FAULT_CODES.get(status, "generalException")
    return error_body(code, FAULT_MESSAGES.get(status, f"Injected fault: {status} {code}."))
