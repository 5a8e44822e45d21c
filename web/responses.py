"""HTTP responses in one shape: JSON bodies, and errors that say what went wrong and what to do."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=str),
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
        mimetype="application/json",
        charset="utf-8",
    )


def error_response(status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """``{"error": code, "message": message}``; ``message`` is for a person and never holds a secret."""
    return json_response({"error": code, "message": message}, status=status, headers=headers)
