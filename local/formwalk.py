"""A browser's least: read a page's forms and submit one, over a `requests.Session` (which keeps
cookies). The demo stack links its first technician with it, through the same pages a person
uses; tests that need no real browser use it too."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden and text inputs, as the page fills them
    buttons: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # id -> (name, value)
    id: str = ""


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            method = values.get("method", "get").lower()
            self.forms.append(Form(values.get("action", ""), method, id=values.get("id", "")))
        elif not self.forms:
            return
        elif tag == "input" and values.get("name"):
            kind = values.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in values:
                return
            if kind != "submit":
                self.forms[-1].fields[values["name"]] = values.get("value", "on" if kind == "checkbox" else "")
        elif tag in ("button", "input") and values.get("id"):
            self.forms[-1].buttons[values["id"]] = (values.get("name"), values.get("value"))


def forms_of(html: str) -> list[Form]:
    reader = _FormReader()
    reader.feed(html)
    return reader.forms


def find_form(page: requests.Response, *, form_id: str | None = None, button: str | None = None) -> Form:
    """The form with ``form_id``, or the first holding ``button``, or the first; LookupError if none."""
    for form in forms_of(page.text):
        if (form_id is None or form.id == form_id) and (button is None or button in form.buttons):
            return form
    raise LookupError(f"no form {form_id or button or ''} on {page.url} ({page.status_code})")


def submit(
    session: requests.Session,
    page: requests.Response,
    *,
    form_id: str | None = None,
    button: str | None = None,
    fields: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    timeout: float = 30,
) -> requests.Response:
    """Submit a form of ``page`` as a browser would (clicking ``button`` if given), without
    following the redirect that answers it. ``fields`` are typed in; ``drop`` leaves fields out."""
    form = find_form(page, form_id=form_id, button=button)
    data = {**form.fields, **(fields or {})}
    for name in drop:
        data.pop(name, None)
    if button is not None:
        name, value = form.buttons[button]
        if name:
            data[name] = value or ""
    url = urljoin(page.url, form.action or page.url)
    if form.method == "post":
        return session.post(url, data=data, allow_redirects=False, timeout=timeout)
    return session.get(url, params=data, allow_redirects=False, timeout=timeout)


def follow(session: requests.Session, response: requests.Response, *, timeout: float = 30) -> requests.Response:
    """Follow redirects one by one (so cookies set on the way are kept, whatever their host)."""
    for _ in range(20):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        response = session.get(
            urljoin(response.url, response.headers["location"]), allow_redirects=False, timeout=timeout
        )
    raise RuntimeError("too many redirects")
