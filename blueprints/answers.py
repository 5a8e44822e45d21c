"""The one place an `http_answer.Answer` becomes Azure Functions' ``HttpResponse``.

Everything below the blueprints answers with plain data (`http_answer`); `tests/test_architecture.py`
fails if a module outside `blueprints` and `function_app` builds an ``HttpResponse``.
"""

from __future__ import annotations

from collections.abc import Mapping

import azure.functions as func

from http_answer import Answer


def http_response(answer: Answer, *, beneath: Mapping[str, str] | None = None) -> func.HttpResponse:
    """``answer`` for the Functions host. ``beneath``: a route's own headers (the pages' security
    headers, the webhooks' no-store), which the answer's headers override. Without a
    ``Content-Type`` the host sends its default, ``text/plain; charset=utf-8``."""
    headers = {**(beneath or {}), **answer.headers}
    return func.HttpResponse(answer.body, status_code=answer.status, headers=headers)
