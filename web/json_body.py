"""Reading a JSON request body, for every endpoint that takes one: a body that is not UTF-8, not
JSON, or nested deeper than any real client nests (Python's decoder recurses once per level, so
200,000 ``[`` would otherwise end in RecursionError, a 500 and a traceback) is refused with a
sentence a person understands. Pure: bytes in, data or `UnreadableJson` out."""

from __future__ import annotations

import json
from typing import Any

# Graph's notifications nest 3 levels, Syncro's payloads 4, our admin bodies 1.
MAX_DEPTH = 64


class UnreadableJson(ValueError):
    """The body cannot be taken as JSON; ``str(error)`` says why, for the caller's 400."""


def parse_json_body(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The decoded body; raises UnreadableJson."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableJson("The body is not valid JSON (it is not UTF-8 text).") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise UnreadableJson(f"The body's JSON is nested more than {max_depth} levels deep.") from None
    except ValueError:
        raise UnreadableJson("The body is not valid JSON.") from None
    if _depth_exceeds(data, max_depth):
        raise UnreadableJson(f"The body's JSON is nested more than {max_depth} levels deep.")
    return data


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Iterative (a recursive walk would fail where the decoder did)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
