"""Reading the services' ISO 8601 times."""

from __future__ import annotations

from datetime import datetime


def parse_time(value: object) -> datetime | None:
    """An aware datetime from an ISO 8601 string (``Z`` or an offset), None for anything else
    (no text, no zone, not a time). Graph writes seven fractional digits; Python reads six."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None
