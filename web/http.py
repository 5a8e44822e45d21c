"""The web pages' request shape, and the answers they give (the app's one `http_answer.Answer`).

Page handlers take a `WebRequest` and return an `Answer`, so they can be tested without the
Functions runtime; the blueprint builds the request (`blueprints.linking`) and sends the answer
(`blueprints.answers`) with the pages' own headers (`web.pages.PAGE_HEADERS`) beneath its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from http_answer import HTML_TYPE, Answer, text_answer

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


def page(status: int, html: str, *, headers: Mapping[str, str] | None = None) -> Answer:
    """A rendered page (`web.pages`) with ``status``."""
    return text_answer(status, html, HTML_TYPE, headers=headers)


def redirect(location: str, *, headers: Mapping[str, str] | None = None) -> Answer:
    """303 See Other: after a form's POST, the browser GETs ``location`` (post/redirect/get)."""
    return Answer(303, headers={"Location": location, **(headers or {})})


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


def wants_html(accept: str | None) -> bool:
    """Whether the client is a browser that asked for a page (``Accept`` naming ``text/html``),
    not an API client or a calendar app: people get pages, programs keep JSON."""
    return "text/html" in (accept or "").lower()
