"""Events and calendars as Graph writes them in JSON."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any
from urllib.parse import quote

from local.sims.graph.instances import Instance
from local.sims.graph.model import Calendar, Mailbox, TimeSpec
from local.sims.graph.payload import extended_key
from local.sims.graph.timefmt import format_local, format_naive, format_stamp, resolve_zone

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>|</div>", re.IGNORECASE)


@dataclass
class ReadOptions:
    """How the caller asked to see items (Prefer headers, $select, $expand)."""

    zone_name: str | None = "UTC"  # None: each event in its own zone (the zone it was written with)
    zone: tzinfo | None = UTC
    body_text: bool = False
    wrap_html: bool = True  # HTML bodies as Exchange's full document
    select: set[str] | None = None
    expand_extended: list[str] | None = None  # ids asked for by $expand=singleValueExtendedProperties(...)
    stubs: bool = False  # delta's occurrence stubs


_HTML_HEAD = '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n'


def html_wrap(text: str) -> str:
    """How Exchange stores a body written as text."""
    escaped = html.escape(text).replace("\r\n", "\n").replace("\n", "<br>\r\n")
    return f'{_HTML_HEAD}<body>\r\n<div class="PlainText">{escaped}</div>\r\n</body>\r\n</html>\r\n'


def html_document(markup: str) -> str:
    """How Exchange stores a body written as HTML: a fragment becomes a whole document with its
    charset meta (the form of the documented create examples); a whole document stays as sent."""
    if re.search(r"<html[\s>]", markup, re.IGNORECASE):
        return markup
    inner = markup.split("<body", 1)[-1].split(">", 1)[-1].rsplit("</body>", 1)[0] if "<body" in markup else markup
    return f"{_HTML_HEAD}<body>\r\n{inner}\r\n</body>\r\n</html>\r\n"


def html_to_text(markup: str) -> str:
    body = markup.split("<body", 1)[-1].split(">", 1)[-1] if "<body" in markup else markup
    text = _BREAK.sub("\n", body.replace("\r\n", ""))
    return html.unescape(_TAG.sub("", text)).strip()


def render_body(body: dict[str, str], as_text: bool, wrap_html: bool = True) -> dict[str, str]:
    kind, content = body.get("contentType", "html"), body.get("content", "")
    if as_text:
        return {"contentType": "text", "content": content if kind == "text" else html_to_text(content)}
    if kind == "html":
        # An empty body stays empty: Exchange has nothing to wrap.
        return {"contentType": "html", "content": html_document(content) if wrap_html and content else content}
    return {"contentType": "html", "content": html_wrap(content)}


def _time(spec: TimeSpec, all_day: bool, options: ReadOptions) -> dict[str, str]:
    zone_name, zone = options.zone_name, options.zone
    if zone_name is None or zone is None:
        zone_name, zone = spec.zone, resolve_zone(spec.zone)
    if all_day:
        # All-day items read as floating midnight-to-midnight dates whatever zone is asked.
        return {"dateTime": format_naive(spec.local), "timeZone": zone_name}
    return {"dateTime": format_local(spec.utc, zone), "timeZone": zone_name}


def occurrence_ical_uid(item: Instance) -> str:
    """Each occurrence has its own iCalUId (documented): Exchange's GlobalObjectId of the series
    with the occurrence's original date in bytes 16-19 (year, month, day), so it is stable."""
    master_uid = item.event.ical_uid
    if item.original_start is None or len(master_uid) < 40:
        return master_uid
    day = item.original_start.astimezone(resolve_zone(item.event.start.zone)).date()
    return f"{master_uid[:32]}{day.year:04X}{day.month:02X}{day.day:02X}{master_uid[40:]}"


def render_event(item: Instance, mailbox: Mailbox, options: ReadOptions) -> dict[str, Any]:
    if options.stubs and item.kind == "occurrence":
        return _stub(item, options)
    fields, event = item.fields, item.event
    body = fields.get("body") or {"contentType": "html", "content": ""}
    organizer = fields.get("organizer") or {"emailAddress": {"name": mailbox.name, "address": mailbox.email}}
    is_organizer = fields.get("isOrganizer", True)
    data: dict[str, Any] = {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": item.id,
        "createdDateTime": format_stamp(event.created),
        "lastModifiedDateTime": format_stamp(item.modified),
        "changeKey": item.change_key,
        "categories": fields.get("categories", []),
        "transactionId": fields.get("transactionId") if item.kind in ("singleInstance", "seriesMaster") else None,
        "originalStartTimeZone": event.start.zone,
        "originalEndTimeZone": event.end.zone,
        "iCalUId": occurrence_ical_uid(item),
        "uid": event.ical_uid,
        "reminderMinutesBeforeStart": fields.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": fields.get("isReminderOn", True),
        "hasAttachments": False,
        "parentFolderId": event.calendar_id,  # the calendar that holds it
        "subject": fields.get("subject", ""),
        "bodyPreview": html_to_text(render_body(body, False, False)["content"])[:255],
        "importance": fields.get("importance", "normal"),
        "sensitivity": fields.get("sensitivity", "normal"),
        "isAllDay": event.is_all_day,
        "isCancelled": fields.get("isCancelled", False),
        "isOrganizer": is_organizer,
        "responseRequested": fields.get("responseRequested", True),
        "seriesMasterId": item.series_master_id,
        "showAs": fields.get("showAs", "busy"),
        "type": item.kind,
        "webLink": f"https://outlook.office365.com/owa/?itemid={quote(item.id, safe='')}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": fields.get("isOnlineMeeting", False),
        "onlineMeetingProvider": fields.get("onlineMeetingProvider", "unknown"),
        "allowNewTimeProposals": fields.get("allowNewTimeProposals", True),
        "occurrenceId": None,
        "isDraft": False,
        "hideAttendees": fields.get("hideAttendees", False),
        "responseStatus": {"response": "organizer" if is_organizer else "notResponded", "time": "0001-01-01T00:00:00Z"},
        "body": render_body(body, options.body_text, options.wrap_html),
        "start": _time(item.start, event.is_all_day, options),
        "end": _time(item.end, event.is_all_day, options),
        "location": fields.get("location") or _empty_location(),
        "locations": fields.get("locations", []),
        "recurrence": event.recurrence if item.kind == "seriesMaster" else None,
        "attendees": fields.get("attendees", []),
        "organizer": organizer,
        "onlineMeeting": None,
    }
    if item.original_start is not None:
        data["originalStart"] = format_stamp(item.original_start).replace(".0000000Z", "Z")
    _add_extended(data, item, options)
    return _select(data, options.select)


def _stub(item: Instance, options: ReadOptions) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": f'W/"{item.change_key}"',
        "id": item.id,
        "seriesMasterId": item.series_master_id,
        "type": item.kind,
        "start": _time(item.start, item.event.is_all_day, options),
        "end": _time(item.end, item.event.is_all_day, options),
    }


def _empty_location() -> dict[str, Any]:
    return {"displayName": "", "locationType": "default", "uniqueIdType": "unknown", "address": {}, "coordinates": {}}


def _add_extended(data: dict[str, Any], item: Instance, options: ReadOptions) -> None:
    if options.expand_extended is None:
        return
    wanted = {extended_key(i) for i in options.expand_extended}
    found = [{"id": stored_id, "value": value} for key, (stored_id, value) in item.extended.items() if key in wanted]
    # Graph leaves the property out when the item has none of the asked properties.
    if found:
        data["singleValueExtendedProperties"] = found


def _select(data: dict[str, Any], select: set[str] | None) -> dict[str, Any]:
    if select is None:
        return data
    keep = {"@odata.etag", "id", "singleValueExtendedProperties"} | select
    return {k: v for k, v in data.items() if k in keep}


def render_calendar(calendar: Calendar, mailbox: Mailbox) -> dict[str, Any]:
    return {
        "id": calendar.id,
        "name": calendar.name,
        "color": calendar.color,
        "hexColor": calendar.hex_color,
        "isDefaultCalendar": calendar.is_default,
        "changeKey": calendar.change_key,
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": True,
        "isRemovable": not calendar.is_default,
        "owner": {"name": mailbox.name, "address": mailbox.email},
    }


def render_user(mailbox: Mailbox) -> dict[str, Any]:
    given, _, surname = mailbox.name.partition(" ")
    return {
        "businessPhones": [],
        "displayName": mailbox.name,
        "givenName": given or None,
        "jobTitle": None,
        "mail": mailbox.email,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": surname or None,
        "userPrincipalName": mailbox.email,
        "id": mailbox.oid,
    }
