"""The one HTTP answer the app's functions return: a status, the body's bytes and the headers.

The pages (`web`), the feed (`ics`) and the webhooks (`realtime`) all answer with an `Answer`;
only `blueprints` turn it into Azure Functions' ``HttpResponse`` (`blueprints.answers`), so
everything below them is tested with plain data and no Functions runtime. The content type is a
header like any other: an answer says all it means, and one translation serves every route.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer. Without a ``Content-Type`` header an empty body goes out as the host's
    default (``text/plain; charset=utf-8``)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def text_answer(status: int, text: str, content_type: str, *, headers: Mapping[str, str] | None = None) -> Answer:
    """``text`` in UTF-8 with its content type (an empty text goes out with none, as a bare status)."""
    typed = {"Content-Type": content_type} if text else {}
    return Answer(status, text.encode("utf-8"), {**typed, **(headers or {})})


def json_answer(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    """``body`` as JSON, never cached (it is a person's or a job's state, or an error)."""
    return text_answer(
        status, json.dumps(body, default=str), JSON_TYPE, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def error_answer(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> Answer:
    """``{"error": code, "message": message}``; ``message`` is for a person and never holds a secret."""
    return json_answer({"error": code, "message": message}, status=status, headers=headers)
