"""The web pages' own request and response shapes, and their translation to Azure Functions'.

Handlers in `web/handlers.py` take a `WebRequest` and return a `WebResponse`, so they can be
tested without the Functions runtime; the blueprint calls `from_functions` and `to_functions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import azure.functions as func

FORM_TYPE = "application/x-www-form-urlencoded"


class BadForm(ValueError):
    """A POST body that is not a form we can read; the message says why, for a person."""


@dataclass(frozen=True)
class WebRequest:
    method: str
    url: str
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    cookie: str | None = None
    form_error: str = ""  # set when the body could not be read as a form


@dataclass(frozen=True)
class WebResponse:
    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"


def redirect(location: str, *, headers: Mapping[str, str] | None = None) -> WebResponse:
    return WebResponse(303, "", {"Location": location, **(headers or {})})


def read_form(body: bytes, content_type: str | None) -> dict[str, str]:
    """A urlencoded form body as a dict (the first value of each field); raises BadForm."""
    if not body:
        return {}
    if (content_type or "").split(";")[0].strip().lower() != FORM_TYPE:
        raise BadForm(f"this page accepts only HTML forms ({FORM_TYPE})")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise BadForm("the form could not be read (not UTF-8, or too many fields)") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def from_functions(req: func.HttpRequest) -> WebRequest:
    form: dict[str, str] = {}
    problem = ""
    if req.method.upper() == "POST":
        try:
            form = read_form(req.get_body(), req.headers.get("content-type"))
        except BadForm as error:
            problem = str(error)
    return WebRequest(
        method=req.method.upper(),
        url=req.url,
        query=dict(req.params),
        form=form,
        cookie=req.headers.get("cookie"),
        form_error=problem,
    )


def to_functions(response: WebResponse) -> func.HttpResponse:
    from web.pages import PAGE_HEADERS  # CSP (with the hashes of our one style and script), no-store, ...

    headers = {**PAGE_HEADERS, **response.headers}
    if response.body:
        headers["Content-Type"] = response.content_type
    return func.HttpResponse(response.body, status_code=response.status, headers=headers)


def wants_html(accept: str | None) -> bool:
    """Whether the client is a browser that asked for a page (``Accept`` naming ``text/html``),
    not an API client or a calendar app: people get pages, programs keep JSON."""
    return "text/html" in (accept or "").lower()
