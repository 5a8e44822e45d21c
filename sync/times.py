"""ISO 8601 times as Syncro and Graph write them, read in one place (pure: no I/O).

Both services write ISO 8601, each its own way: Syncro ``2026-03-10T09:00:00.000-07:00`` (and,
from some endpoints, no offset at all: the account's zone), Graph ``2026-03-10T16:00:00.1234567Z``
(seven fractional digits, one more than Python reads) or, for an event's ``start``/``end``, a
wall time with no offset beside a separate ``timeZone``.

- `parse_time`: a version marker, a creation time, a filter's start: an aware datetime, or None
  when the value is missing or unreadable (the caller decides what an unreadable one means). A
  time without an offset is read in ``naive`` when the caller knows the zone it was written in.
- `read_iso`: the mapping's strict reader for an item's start and end: the time and whether it
  carried an offset (a Graph ``dateTime`` does not: its ``timeZone`` says where it is), raising
  `UnreadableTime` with the reason in words.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

__all__ = ["UnreadableTime", "parse_time", "read_iso"]


class UnreadableTime(ValueError):
    """Raised by `read_iso` for a value that is no ISO 8601 time; the message says why."""


def parse_time(value: object, *, naive: tzinfo | None = None) -> datetime | None:
    """``value`` (ISO 8601, ``Z`` or an offset, any number of fractional digits) as an aware
    datetime. A time without an offset is read in ``naive``, or is None without it; so is
    anything that is not a readable time."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1] in "Zz":  # Python reads "Z" but not "z"
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)  # any number of fractional digits: Graph writes seven
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None if naive is None else moment.replace(tzinfo=naive)
    return moment


_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<hm>\d{2}:\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d+))?)?)?"
    r"\s*(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)


def read_iso(value: object, what: str) -> tuple[datetime, bool]:
    """An ISO 8601 date-time (any number of fractional digits, dropped: times are whole seconds)
    as a datetime, aware when it carried an offset, and whether it did. ``what`` names the value
    in the error. Raises `UnreadableTime`."""
    if not isinstance(value, str):
        raise UnreadableTime(f"{what} is {'missing' if value is None else 'not a text'}")
    match = _ISO.match(value.strip())
    if not match:
        raise UnreadableTime(f"{what} {value[:40]!r} is not an ISO 8601 time")
    text = f"{match['date']}T{match['hm'] or '00:00'}:{match['s'] or '00'}"
    offset = match["offset"]
    try:
        moment = datetime.fromisoformat(text)
        if offset:
            tz = "+00:00" if offset in "Zz" else offset
            if len(tz) == 3:
                tz += ":00"
            elif ":" not in tz:
                tz = f"{tz[:3]}:{tz[3:]}"
            moment = datetime.fromisoformat(text + tz)
    except ValueError as error:
        raise UnreadableTime(f"{what} {value[:40]!r} is not a valid time") from error
    return moment, bool(offset)
