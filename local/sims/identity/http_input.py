"""Reading requests the way AAD does: form bodies, the base URL, the client's correlation id."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from local.sims.identity import errors

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY = 64 * 1024


def base_url(request: Request) -> str:
    """The simulator's own https base, as the client reached it."""
    return str(request.base_url).rstrip("/")


def correlation_id(request: Request) -> str | None:
    return errors.valid_correlation_id(request.headers.get("client-request-id"))


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict; anything else reads as empty (AAD then reports the first missing
    parameter). A repeated parameter is refused with AADSTS9000411."""
    if not request.headers.get("content-type", "").lower().startswith(FORM_TYPE):
        return {}
    body = await request.body()
    pairs = parse_qsl(body[:MAX_BODY].decode("utf-8", errors="replace"), keep_blank_values=True)
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise errors.duplicated_parameter(name)
        form[name] = value
    return form
