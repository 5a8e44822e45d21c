"""The few OData query options the simulator understands, parsed strictly: anything else is a 400,
as Graph answers a filter or expand it cannot apply."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from local.sims.graph.errors import GraphError, bad_request
from local.sims.graph.instances import Instance
from local.sims.graph.payload import extended_key
from local.sims.graph.render import occurrence_ical_uid

_QUOTED = r"'((?:[^']|'')*)'"
_ANY_EXTENDED = re.compile(
    r"^singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+"
    + _QUOTED
    + r"(?:\s+and\s+\1/value\s+eq\s+"
    + _QUOTED
    + r")?\s*\)$",
    re.IGNORECASE,
)
_FIELD_EQ = re.compile(r"^(iCalUId|subject|type|transactionId|seriesMasterId)\s+eq\s+" + _QUOTED + "$", re.IGNORECASE)
_EXPAND_EXTENDED = re.compile(r"^singleValueExtendedProperties\(\s*\$filter\s*=\s*(.+)\)$", re.IGNORECASE)
_ID_EQ = re.compile(r"^id\s+eq\s+" + _QUOTED + "$", re.IGNORECASE)
_ORDER = re.compile(
    r"^(start/dateTime|end/dateTime|lastModifiedDateTime|createdDateTime|subject)(\s+(asc|desc))?$", re.IGNORECASE
)
SELECTABLE = {
    "id",
    "subject",
    "body",
    "bodyPreview",
    "start",
    "end",
    "isAllDay",
    "location",
    "locations",
    "attendees",
    "organizer",
    "isOrganizer",
    "type",
    "seriesMasterId",
    "recurrence",
    "originalStart",
    "isCancelled",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "categories",
    "showAs",
    "sensitivity",
    "importance",
    "transactionId",
    "iCalUId",
    "uid",
    "webLink",
    "responseStatus",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "hasAttachments",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "responseRequested",
    "isOnlineMeeting",
    "onlineMeeting",
    "onlineMeetingProvider",
    "onlineMeetingUrl",
    "allowNewTimeProposals",
    "occurrenceId",
    "isDraft",
    "hideAttendees",
}


def _unquote(value: str) -> str:
    return value.replace("''", "'")


def parse_select(value: str | None) -> set[str] | None:
    if value is None:
        return None
    wanted = {part.strip() for part in value.split(",") if part.strip()}
    lookup = {name.lower(): name for name in SELECTABLE}
    unknown = [name for name in wanted if name.lower() not in lookup]
    if unknown:
        raise bad_request(f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.event'.")
    return {lookup[name.lower()] for name in wanted}


def parse_expand(value: str | None) -> list[str] | None:
    """Ids asked for by ``singleValueExtendedProperties($filter=id eq '...' [or id eq '...'])``."""
    if value is None:
        return None
    match = _EXPAND_EXTENDED.match(value.strip())
    if not match:
        raise bad_request(
            f"Parsing OData Select and Expand failed: Could not find a property named "
            f"'{value.split('(')[0].strip()}' on type 'microsoft.graph.event'."
        )
    ids = []
    for clause in re.split(r"\s+or\s+", match[1].strip(), flags=re.IGNORECASE):
        id_match = _ID_EQ.match(clause.strip())
        if not id_match:
            raise bad_request(f"Invalid filter clause: '{clause.strip()}'.")
        ids.append(_unquote(id_match[1]))
    return ids


def parse_filter(value: str | None) -> Callable[[Instance], bool] | None:
    """A predicate for the supported filters: extended property Any(...), and equality on a few fields."""
    if value is None:
        return None
    text = value.strip()
    extended = _ANY_EXTENDED.match(text)
    if extended:
        prop_id, prop_value = extended_key(_unquote(extended[2])), extended[3]
        wanted_value = _unquote(prop_value).casefold() if prop_value is not None else None

        def has_property(item: Instance) -> bool:
            # The property's name compares case-sensitively, its value ignoring case (reported).
            stored = item.extended.get(prop_id)
            return stored is not None and (wanted_value is None or stored[1].casefold() == wanted_value)

        return has_property
    field = _FIELD_EQ.match(text)
    if field:
        name, wanted = field[1], _unquote(field[2])
        return lambda item: _field_value(item, name) == wanted
    raise GraphError(400, "BadRequest", f"Invalid filter clause: The query filter '{text}' is not supported.")


def _field_value(item: Instance, name: str) -> Any:
    lowered = name.lower()
    if lowered == "icaluid":
        return occurrence_ical_uid(item)
    if lowered == "uid":
        return item.event.ical_uid
    if lowered == "type":
        return item.kind
    if lowered == "seriesmasterid":
        return item.series_master_id
    return item.fields.get("subject" if lowered == "subject" else "transactionId")


def parse_orderby(value: str | None) -> tuple[Callable[[Instance], Any], bool] | None:
    if value is None:
        return None
    match = _ORDER.match(value.strip())
    if not match:
        raise bad_request(f"Invalid $orderby: '{value}' is not supported.")
    name, descending = match[1].lower(), (match[3] or "").lower() == "desc"
    keys: dict[str, Callable[[Instance], Any]] = {
        "start/datetime": lambda i: i.start.utc,
        "end/datetime": lambda i: i.end.utc,
        "lastmodifieddatetime": lambda i: i.modified,
        "createddatetime": lambda i: i.event.created,
        "subject": lambda i: i.fields.get("subject", ""),
    }
    return keys[name], descending


def parse_int(value: str | None, name: str, *, low: int, high: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"Invalid value '{value}' for query option '{name}'.") from None
    if not low <= number <= high:
        raise bad_request(f"Invalid value '{value}' for query option '{name}'.")
    return number
