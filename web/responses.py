"""HTTP responses in one shape: JSON bodies, and errors that say what went wrong and what to do."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec

import azure.functions as func

P = ParamSpec("P")


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


def bad_syncro_user_id() -> func.HttpResponse:
    return error_response(400, "bad_syncro_user_id", "The Syncro user id must be a positive whole number.")


def unavailable_as_503(endpoint: Callable[P, func.HttpResponse]) -> Callable[P, func.HttpResponse]:
    """For admin JSON endpoints: invalid settings or unreachable Table Storage answer 503 with a
    sentence saying so, never a traceback."""

    @functools.wraps(endpoint)
    def run(*args: P.args, **kwargs: P.kwargs) -> func.HttpResponse:
        from settings import SettingsError
        from storage.errors import StorageUnavailable

        try:
            return endpoint(*args, **kwargs)
        except SettingsError as error:
            return error_response(503, "misconfigured", str(error))
        except StorageUnavailable:
            return error_response(503, "storage_unavailable", "Table Storage did not answer; try again shortly.")

    return run
