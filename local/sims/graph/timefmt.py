"""Graph's date-time formats and time zones.

Graph writes ``dateTime`` with seven fractional digits and no offset, its zone in the sibling
``timeZone`` field; timestamps such as ``createdDateTime`` carry seven digits and ``Z``.
Zones are Windows names (mapped here to IANA through a subset of CLDR's windowsZones table) or,
optionally, the IANA names that table points at.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from local.sims.graph.errors import GraphError, bad_request

WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "tzone://Microsoft/Utc": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Calcutta",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "E. Australia Standard Time": "Australia/Brisbane",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "W. Australia Standard Time": "Australia/Perth",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time": "America/Denver",
    "Central Standard Time": "America/Chicago",
    "Canada Central Standard Time": "America/Regina",
    "Eastern Standard Time": "America/New_York",
    "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Pacific Standard Time": "America/Bogota",
}
IANA_SUBSET = frozenset(WINDOWS_ZONES.values()) | {"Etc/UTC", "Etc/GMT"}

_DATE_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:T(?P<time>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d{1,7}))?)?"
    r"(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
)


def resolve_zone(name: str, *, accept_iana: bool = True) -> tzinfo:
    """The zone a Windows (or allowed IANA) name means; 400 TimeZoneNotSupportedException otherwise."""
    if name in WINDOWS_ZONES:
        return ZoneInfo(WINDOWS_ZONES[name])
    if accept_iana and name in IANA_SUBSET:
        return ZoneInfo(name)
    raise GraphError(
        400,
        "TimeZoneNotSupportedException",
        f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
    )


def parse_local(value: object) -> tuple[datetime, bool]:
    """A Graph ``dateTime`` string as a naive datetime, and whether it carried its own offset
    (then the result is aware). Up to 7 fractional digits; a date alone means midnight."""
    if not isinstance(value, str):
        raise bad_request("Cannot convert the literal to the expected type 'Edm.String'.")
    match = _DATE_TIME.match(value.strip())
    if not match:
        raise bad_request(f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.")
    text = match["date"] + "T" + (match["time"] or "00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'.") from None
    fraction = (match["frac"] or "").ljust(7, "0")
    parsed = parsed.replace(microsecond=int(fraction[:6]))
    offset = match["offset"]
    if offset is None:
        return parsed, False
    if offset == "Z":
        return parsed.replace(tzinfo=UTC), True
    sign = 1 if offset[0] == "+" else -1
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return parsed.replace(tzinfo=timezone(sign * delta)), True


def to_utc(local: datetime, zone: tzinfo) -> datetime:
    """A wall-clock time in ``zone`` as an aware UTC datetime (aware inputs keep their own offset)."""
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return local.replace(tzinfo=zone).astimezone(UTC)


def parse_query_instant(value: str | None, name: str) -> datetime:
    """calendarView's startDateTime/endDateTime: the offset in the value counts, UTC if none."""
    if not value:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and "
            "EndDateTime.",
        )
    try:
        local, aware = parse_local(value.replace(" ", "+"))
    except GraphError:
        raise GraphError(
            400, "ErrorInvalidParameter", f"The value '{value}' of parameter '{name}' is invalid."
        ) from None
    return local.astimezone(UTC) if aware else local.replace(tzinfo=UTC)


def format_local(moment: datetime, zone: tzinfo) -> str:
    """``2024-01-01T10:00:00.0000000``: the instant as wall-clock time in ``zone``, 7 digits, no offset."""
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond:06d}0"


def format_naive(local: datetime) -> str:
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond:06d}0"


def format_stamp(moment: datetime) -> str:
    """createdDateTime / lastModifiedDateTime: UTC with 7 digits and ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond:06d}0Z"


def format_subscription_expiry(moment: datetime) -> str:
    """Subscriptions echo ``expirationDateTime`` as ``2024-01-01T10:00:00Z`` style with fraction."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond // 1000:03d}0000Z"


def parse_instant(value: object, field_name: str) -> datetime:
    """A DateTimeOffset in a body (subscription expiry): offset or Z honoured, UTC if none."""
    try:
        local, aware = parse_local(value)
    except GraphError:
        raise bad_request(f"Invalid value for property '{field_name}'.") from None
    return local.astimezone(UTC) if aware else local.replace(tzinfo=UTC)
