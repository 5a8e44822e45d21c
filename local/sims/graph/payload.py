"""Validation of event bodies sent to POST/PATCH, turned into what the store applies.

Graph refuses unknown properties and wrong types with 400 and quietly ignores read-only ones;
the all-day rules (midnight to midnight in one zone, at least 24 hours) are checked here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from local.sims.graph.errors import GraphError, bad_request
from local.sims.graph.model import TimeSpec
from local.sims.graph.timefmt import parse_local, resolve_zone, to_utc

ENUMS = {
    "showAs": ("freeBusyStatus", {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}),
    "sensitivity": ("sensitivity", {"normal", "personal", "private", "confidential"}),
    "importance": ("importance", {"low", "normal", "high"}),
}
BOOLEANS = {"isReminderOn", "responseRequested", "allowNewTimeProposals", "isOnlineMeeting", "hideAttendees"}
STRINGS = {"subject", "transactionId", "onlineMeetingProvider", "originalStartTimeZone", "originalEndTimeZone"}
# Accepted and ignored, as Graph does with server-owned properties.
READ_ONLY = {
    "@odata.type",
    "@odata.etag",
    "@odata.context",
    "id",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "iCalUId",
    "uid",
    "type",
    "seriesMasterId",
    "organizer",
    "isOrganizer",
    "webLink",
    "responseStatus",
    "bodyPreview",
    "isDraft",
    "onlineMeeting",
    "onlineMeetingUrl",
    "originalStart",
    "hasAttachments",
    "isCancelled",
    "occurrenceId",
    "cancelledOccurrences",
    "exceptionOccurrences",
}
KNOWN = (
    set(ENUMS)
    | BOOLEANS
    | STRINGS
    | READ_ONLY
    | {
        "body",
        "start",
        "end",
        "isAllDay",
        "location",
        "locations",
        "attendees",
        "categories",
        "reminderMinutesBeforeStart",
        "recurrence",
        "singleValueExtendedProperties",
    }
)
EXTENDED_ID = re.compile(
    r"^(String|Integer|Boolean|SystemTime|Double|Binary|Long|Short|Float|Currency|Guid|CLSID)\s+"
    r"(\{[0-9a-fA-F-]{36}\}\s+(Name\s+\S.*|Id\s+0x[0-9a-fA-F]+)|0x[0-9a-fA-F]+)$"
)


@dataclass
class EventWrite:
    """A checked POST/PATCH body: only what the client sent."""

    fields: dict[str, Any] = field(default_factory=dict)
    start: TimeSpec | None = None
    end: TimeSpec | None = None
    is_all_day: bool | None = None
    recurrence: Any = None
    has_recurrence: bool = False
    extended: list[tuple[str, str]] = field(default_factory=list)


def parse_event_write(body: Any, *, accept_iana: bool) -> EventWrite:
    if not isinstance(body, dict):
        raise bad_request("Empty Payload. JSON content expected.")
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise GraphError(
            400,
            "RequestBodyRead",
            f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.event'. Make sure to only use "
            "property names that are defined by the type or mark the type as open type.",
        )
    write = EventWrite()
    for name, value in body.items():
        _apply(write, name, value, accept_iana)
    return write


def _apply(write: EventWrite, name: str, value: Any, accept_iana: bool) -> None:
    if name in READ_ONLY:
        return
    if name in STRINGS:
        write.fields[name] = _string(name, value)
    elif name in BOOLEANS or name == "isAllDay":
        if not isinstance(value, bool):
            raise _literal(value, "Edm.Boolean")
        if name == "isAllDay":
            write.is_all_day = value
        else:
            write.fields[name] = value
    elif name in ENUMS:
        type_name, allowed = ENUMS[name]
        if value not in allowed:
            raise _literal(value, f"microsoft.graph.{type_name}")
        write.fields[name] = value
    elif name == "reminderMinutesBeforeStart":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _literal(value, "Edm.Int32")
        write.fields[name] = value
    elif name in ("start", "end"):
        setattr(write, name, _time_spec(name, value, accept_iana))
    elif name == "recurrence":
        write.recurrence, write.has_recurrence = value, True
    elif name == "singleValueExtendedProperties":
        write.extended = _extended(value)
    else:
        write.fields.update(_complex(name, value))


def _complex(name: str, value: Any) -> dict[str, Any]:
    if name == "body":
        return {"body": _body(value)}
    if name == "location":
        location = _location(value)
        # Setting location replaces the whole locations collection.
        return {"location": location, "locations": [location] if location["displayName"] else []}
    if name == "locations":
        if not isinstance(value, list):
            raise _literal(value, "Collection(microsoft.graph.location)")
        locations = [_location(item) for item in value]
        return {"locations": locations, "location": locations[0] if locations else _location({})}
    if name == "attendees":
        return {"attendees": _attendees(value)}
    if name == "categories":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise _literal(value, "Collection(Edm.String)")
        return {"categories": list(value)}
    raise bad_request(f"Unsupported property '{name}'.")


def _string(name: str, value: Any) -> str | None:
    if value is None and name != "subject":
        return None
    if not isinstance(value, str):
        raise _literal(value, "Edm.String")
    return value


def _literal(value: Any, type_name: str) -> GraphError:
    return GraphError(
        400, "RequestBodyRead", f"Cannot convert the literal '{value}' to the expected type '{type_name}'."
    )


def _body(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _literal(value, "microsoft.graph.itemBody")
    kind = str(value.get("contentType", "text")).lower()
    if kind not in ("text", "html"):
        raise _literal(value.get("contentType"), "microsoft.graph.bodyType")
    content = value.get("content", "")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise _literal(content, "Edm.String")
    return {"contentType": kind, "content": content}


def _location(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _literal(value, "microsoft.graph.location")
    name = value.get("displayName") or ""
    if not isinstance(name, str):
        raise _literal(name, "Edm.String")
    location = {"displayName": name, "locationType": value.get("locationType") or "default"}
    location["uniqueId"] = value.get("uniqueId") or name or None
    location["uniqueIdType"] = value.get("uniqueIdType") or ("private" if name else "unknown")
    for extra in ("address", "coordinates", "locationUri", "locationEmailAddress"):
        if extra in value:
            location[extra] = value[extra]
    return location


def _attendees(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _literal(value, "Collection(microsoft.graph.attendee)")
    result = []
    for item in value:
        email = item.get("emailAddress") if isinstance(item, dict) else None
        if not isinstance(email, dict) or not isinstance(email.get("address"), str) or not email["address"]:
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
        kind = item.get("type", "required")
        if kind not in ("required", "optional", "resource"):
            raise _literal(kind, "microsoft.graph.attendeeType")
        status = item.get("status") or {"response": "none", "time": "0001-01-01T00:00:00Z"}
        result.append(
            {
                "type": kind,
                "status": status,
                "emailAddress": {"name": email.get("name") or email["address"], "address": email["address"]},
            }
        )
    return result


def _time_spec(name: str, value: Any, accept_iana: bool) -> TimeSpec:
    if not isinstance(value, dict):
        raise _literal(value, "microsoft.graph.dateTimeTimeZone")
    zone_name = value.get("timeZone")
    if not isinstance(zone_name, str) or not zone_name:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not supported: ''.",
        )
    zone = resolve_zone(zone_name, accept_iana=accept_iana)
    local, aware = parse_local(value.get("dateTime"))
    utc = to_utc(local, zone)
    if aware:
        local = utc.astimezone(zone).replace(tzinfo=None)
    return TimeSpec(local=local, zone=zone_name, utc=utc)


def _extended(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise _literal(value, "Collection(microsoft.graph.singleValueLegacyExtendedProperty)")
    result = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise bad_request("Extended property must have an id and a value.", "ErrorInvalidProperty")
        if not EXTENDED_ID.match(item["id"].strip()):
            raise GraphError(400, "ErrorInvalidProperty", f"The property '{item['id']}' is not valid.")
        if not isinstance(item.get("value"), str):
            raise _literal(item.get("value"), "Edm.String")
        result.append((item["id"].strip(), item["value"]))
    return result


def extended_key(prop_id: str) -> str:
    """How extended property ids compare: type, GUID and the Name/Id keyword ignore case, a
    property's name keeps it (named MAPI properties are case-sensitive)."""
    parts = prop_id.strip().split(None, 3)
    if len(parts) == 4 and parts[2].lower() == "name":
        return " ".join(p.lower() for p in parts[:3]) + " " + parts[3]
    return " ".join(p.lower() for p in parts)


def check_times(start: TimeSpec, end: TimeSpec, is_all_day: bool) -> None:
    """The span rules Graph enforces on the event as it will be stored."""
    if end.utc < start.utc:
        raise GraphError(
            400, "ErrorInvalidRequest", "Your request can't be completed. The end time must be after the start time."
        )
    if not is_all_day:
        return
    midnight = all(t.local.hour == t.local.minute == t.local.second == t.local.microsecond == 0 for t in (start, end))
    if not midnight or start.zone != end.zone:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "Your request can't be completed. If the event is an all-day event, the start and end times must be "
            "at midnight and in the same time zone.",
        )
    if end.local - start.local < timedelta(hours=24):
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "Your request can't be completed. The duration of an event marked as All day must be at least 24 hours.",
        )
