"""Reading what a client sent: its token and its params, as Syncro's Rails stack reads them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request


class MalformedBody(Exception):
    """The body claims to be JSON but is not."""


def token_of(request: Request) -> str | None:
    """``Authorization: Bearer <t>``, a bare ``Authorization: <t>``, or ``?api_key=<t>``."""
    header = request.headers.get("authorization", "").strip()
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    if header:
        return header
    return request.query_params.get("api_key") or None


async def params_of(request: Request) -> dict[str, Any]:
    """The body's params. Rails parses JSON and form bodies and ignores any other; a JSON body
    that is not an object lands under ``_json``, leaving the named params blank."""
    raw = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            raise MalformedBody(str(error)) from error
        return data if isinstance(data, dict) else {"_json": data}
    if media == "application/x-www-form-urlencoded":
        return _form(raw.decode("utf-8", errors="replace"))
    return {}


def _form(text: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key.endswith("[]"):
            params.setdefault(key[:-2], []).append(value)
        else:
            params[key] = value
    return params


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "t", "yes")


def page_number(value: str | None) -> int:
    """``page``: a positive integer; anything else reads as the first page."""
    text = (value or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else 1
