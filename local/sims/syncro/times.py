"""Time as Syncro writes and reads it.

Out: ISO 8601 with milliseconds, in the account's offset as a live account writes it
(``2025-04-11T15:00:53.119+02:00``) or in UTC as the spec's examples do (``2019-10-21T01:28:00.000Z``).
In: any ISO 8601 form; a time without an offset is in the account's zone, as Rails'
``Time.zone.parse`` reads it. Dates in query strings are account-zone days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MILLISECOND = timedelta(milliseconds=1)


def to_millis(moment: datetime) -> datetime:
    """Drop sub-millisecond digits: Syncro stores and shows milliseconds only."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_utc(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_time(moment: datetime, zone: ZoneInfo | None) -> str:
    """``moment`` in ``zone``'s offset (UTC when None), as Rails' ``xmlschema(3)``: "Z" for a zero offset."""
    if zone is None:
        return format_utc(moment)
    local = moment.astimezone(zone)
    if not local.utcoffset():
        return format_utc(moment)
    return local.isoformat(timespec="milliseconds")


def parse_datetime(text: str, zone: ZoneInfo) -> datetime | None:
    """An aware UTC datetime, or None when ``text`` is not ISO 8601."""
    cleaned = text.strip()
    if not cleaned:
        return None
    if cleaned[-1] in "Zz":
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    # Years near the ends of the calendar overflow once moved between zones; Rails keeps them as
    # nil, which reads "can't be blank".
    if not 1000 <= parsed.year <= 9000:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return to_millis(parsed.astimezone(UTC))


def parse_day(text: str) -> date | None:
    """A ``YYYY-MM-DD`` query date (a datetime's date part is accepted too, like Rails' Date.parse)."""
    try:
        day = date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None
    return day if 1000 <= day.year <= 9000 else None


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def start_label(moment: datetime, zone: ZoneInfo) -> str:
    """Syncro's ``start_at_label``, e.g. ``Sun 10-20-19 06:28 PM`` in the account zone."""
    return moment.astimezone(zone).strftime("%a %m-%d-%y %I:%M %p")


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def standard_offset(zone: ZoneInfo, year: int) -> str:
    """The zone's offset without daylight saving, as ``-08:00`` (the ``locale.time_offset`` of /settings)."""
    offsets = [datetime(year, month, 1, tzinfo=zone).utcoffset() or timedelta() for month in (1, 7)]
    minutes = int(min(offsets).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"
