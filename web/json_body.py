"""Reading a JSON request body, for every endpoint that takes one: a body that is not UTF-8, not
JSON, or nested too deeply to decode is refused with a sentence a person understands. Python's
decoder recurses once per level of nesting, so 200,000 ``[`` end in RecursionError (which is not
a ValueError): left alone, that is a 500 and a traceback. Pure: bytes in, data or
`UnreadableJson` out."""

from __future__ import annotations

import json
from typing import Any


class UnreadableJson(ValueError):
    """The body cannot be taken as JSON; ``str(error)`` says why, for the caller's 400."""


def parse_json_body(body: bytes) -> Any:
    """The decoded body; raises UnreadableJson. Nesting is bounded by the interpreter's recursion
    limit (about a thousand levels; Graph's notifications nest 3, Syncro's payloads 4), and no
    code of ours walks a body recursively, so no lower bound is imposed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableJson("The body is not valid JSON (it is not UTF-8 text).") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise UnreadableJson("The body's JSON is nested too deeply to read.") from None
    except ValueError:
        raise UnreadableJson("The body is not valid JSON.") from None
