"""One Graph request as handlers see it, whether it came over HTTP or inside a ``$batch``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from local.sims.graph.errors import GraphError
from local.sims.graph.model import Mailbox

_PREFER_ITEM = re.compile(r'\s*([A-Za-z0-9_.\-]+)\s*(?:=\s*("(?:[^"]*)"|[^,;]*))?')


@dataclass
class GraphRequest:
    method: str
    path: str  # below /v1.0, percent-decoded, e.g. "/me/events/AAMk..."
    query: dict[str, str]  # first value of each parameter, names as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str  # "https://127.0.0.1:port" as the client addressed us

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def parse_prefer(values: list[str]) -> dict[str, str]:
    """``Prefer`` preferences by lower-cased name, quotes removed (several headers or comma-joined)."""
    result: dict[str, str] = {}
    for value in values:
        for part in _split_outside_quotes(value):
            match = _PREFER_ITEM.match(part)
            if match and match[1]:
                result[match[1].lower()] = (match[2] or "").strip().strip('"')
    return result


def _split_outside_quotes(value: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


@dataclass
class Ctx:
    """What a handler gets: the request, the caller, its mailbox and the matched path parameters."""

    request: GraphRequest
    params: dict[str, str]
    claims: dict[str, Any]
    mailbox: Mailbox | None
    prefer: dict[str, str]
    applied: list[str] = field(default_factory=list)  # Preference-Applied values
    _body: Any = None
    _parsed: bool = False

    @property
    def base(self) -> str:
        return f"{self.request.base_url}/v1.0"

    @property
    def me(self) -> Mailbox:
        assert self.mailbox is not None
        return self.mailbox

    def query(self, name: str) -> str | None:
        """OData and function parameters are case-insensitive in Graph."""
        wanted = name.lower()
        return next((v for k, v in self.request.query.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        if not self._parsed:
            content_type = (self.request.header("content-type") or "").lower()
            # Graph reads a body only when it is declared as JSON.
            raw = self.request.body if "json" in content_type or not self.request.body.strip() else b"\x00"
            self._body, self._parsed = _parse_json(raw), True
        return self._body

    def link(self, path: str, params: dict[str, str]) -> str:
        query = urlencode(params, safe="$'(),:/")
        return f"{self.base}{path}" + (f"?{query}" if query else "")


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise GraphError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid "
            "JSON format.",
        ) from None
