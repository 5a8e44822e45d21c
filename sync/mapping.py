"""Syncro appointments and Graph events <-> the neutral `Appointment` (pure: no I/O).

Readers (`appointment_from_syncro`, `appointment_from_graph`) turn what a service returned into an
`Appointment` in *normal form*; writers (`syncro_fields`, `graph_fields`) turn an `Appointment`
into the JSON body of a create or update. Every reader and writer passes through `normalise`, so
reading back what a writer wrote gives the same `Appointment` (the echo of our own write hashes
the same and is not mistaken for an edit).

Normal form (decided here; each rule says why):

- Tags. Syncro-born items carry ``[S] `` in Outlook subjects, Outlook-born items ``[O] `` in
  Syncro summaries. Readers strip every leading tag of either kind, any number of them, in any
  case and spacing (``[s]``, ``[ O ]``, ``[S]  [S] x``), so tags never reach the neutral summary;
  writers add exactly one tag for the item's origin, so tags never stack and a tag the tech
  deleted comes back with the next write (`tag_intact` tells the engine when a write is due).
  A title of one's own that starts with ``[S]`` or ``[O]`` therefore loses it: accepted.
- Summary: one line (line breaks and tabs become spaces, other control characters are
  removed), surrounding spaces trimmed, at most 251 UTF-16 units so that it fits Graph's 255-character subject with its
  4-character tag (Syncro's ``summary`` is a 255-character column as well). Longer ones are
  clipped, not refused.
- Description: line breaks as ``\\n`` (CRLF and CR converted), control characters other than
  newline and tab removed, Syncro's own rewrite (``Notes:\\n <notes>\\n\\n Contact: …``) reduced
  to the notes, our `SyncroContext` header block removed wherever it is (so it never flows into
  Syncro and never stacks), at most 30,000 characters (a sanity bound: neither service documents
  one, and a calendar note longer than that is a paste accident).
- Location: one line, trimmed, at most 255 characters.
- Context (Syncro-born items in Outlook only): the body starts with a `SyncroContext` block
  (``Customer: …``, ``Ticket #1234 subject``, ``Link: <ticket URL>``, then `CONTEXT_SEPARATOR`)
  and an empty location shows the customer's address, recorded in the block as
  ``Location: <address> (customer's address)`` so a reader can tell it from a location the tech
  typed. Readers drop the block (the separator line and the header-looking lines right above it;
  notes typed above it are kept) and that stand-in location.
- Times: aware UTC, whole seconds (both services' UIs work in minutes; Syncro keeps milliseconds
  and Graph 100 ns ticks, so sub-second noise would make echoes look like edits). Years outside
  1900-2999 are refused.
- All-day: ``start``/``end`` are midnights, in the Syncro account's zone, of the first day and of
  the day after the last (a multi-day event stays one appointment, across DST too). Graph reads
  all-day events as floating dates, so only their date part is used; Syncro's all-day times are
  read in the account zone, an end that is not a midnight (``23:59``) meaning "through that day".
  An all-day appointment lasts at least one day.

Bad input raises `UnmappableItem` (a ``ValueError``) with the reason in words: not an object,
an unknown wrapper, a deleted or stub event, a missing or null start or end, an unreadable or
zone-less Graph time, an unknown Graph time zone, an end before the start, a field of the wrong
type. What can be mapped sanely is (nulls for text become empty strings, long text is clipped,
control characters removed, a Syncro time without an offset is read in the account's zone as
Syncro itself reads it, a missing Syncro ``end_at`` falls back to ``duration`` hours).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sync.html_text import html_to_text, text_to_html
from sync.model import Appointment, Side
from sync.times import UnreadableTime, read_iso
from sync.zones import UnknownZone, graph_zone_name, resolve_graph_zone

__all__ = [
    "CONTEXT_SEPARATOR",
    "DESCRIPTION_LIMIT",
    "LOCATION_LIMIT",
    "OUTLOOK_TAG",
    "SUMMARY_LIMIT",
    "SYNCRO_TAG",
    "SyncroContext",
    "UnmappableItem",
    "appointment_from_graph",
    "appointment_from_syncro",
    "graph_fields",
    "normalise",
    "strip_tags",
    "syncro_fields",
    "tag_for",
    "tag_intact",
]

SYNCRO_TAG = "[S] "
OUTLOOK_TAG = "[O] "
SUBJECT_LIMIT = 255  # Graph's subject and Syncro's summary, tag included
SUMMARY_LIMIT = SUBJECT_LIMIT - len(SYNCRO_TAG)
DESCRIPTION_LIMIT = 30_000
LOCATION_LIMIT = 255
NO_TITLE = "(No title)"  # what Outlook shows for an empty subject; Syncro refuses a blank summary
CONTEXT_SEPARATOR = "-- Notes below sync with Syncro --"
_FALLBACK_NOTE = " (customer's address)"
_MIN_YEAR, _MAX_YEAR = 1900, 2999


class UnmappableItem(ValueError):
    """Raised by the readers and writers when an item cannot be mapped; ``reason`` says why in words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- tags ----------------------------------------------------------------------------------------

_TAGS = re.compile(r"^(?:\s*\[\s*[so]\s*\])+\s*", re.IGNORECASE)


def strip_tags(text: str) -> str:
    """``text`` without any leading ``[S]``/``[O]`` tags (stacked, any case or spacing)."""
    return _TAGS.sub("", text, count=1)


def tag_for(origin: Side) -> str:
    """The tag the *other* side shows for an item born on ``origin``."""
    return SYNCRO_TAG if origin is Side.SYNCRO else OUTLOOK_TAG


def tag_intact(text: str, origin: Side) -> bool:
    """Whether a title as stored (Outlook subject of a Syncro-born item, Syncro summary of an
    Outlook-born one) carries exactly one canonical tag: False means the tech deleted or
    doubled it, and a write would restore it."""
    tag = tag_for(origin)
    return text.startswith(tag) and strip_tags(text) == text[len(tag) :]


# -- normal form ---------------------------------------------------------------------------------

_CRLF = re.compile(r"\r\n?")


def _clip_utf16(text: str, limit: int) -> str:
    """At most ``limit`` UTF-16 code units (Graph counts those), never splitting a character."""
    if len(text) <= limit // 2:
        return text
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return text[:index]
    return text


def _drop_controls(text: str, *, keep: str) -> str:
    # Cc (C0, DEL, C1) and lone surrogates cannot travel in either API; format characters
    # (zero-width joiners in emoji) are content.
    return "".join(c for c in text if c in keep or unicodedata.category(c) not in ("Cc", "Cs"))


def _one_line(value: str) -> str:
    # Line breaks and tabs separate words; other control characters are noise.
    text = "".join(" " if c in "\t\n\r\v\f" or unicodedata.category(c) in ("Zl", "Zp") else c for c in value)
    return _drop_controls(text, keep="").strip()


def _summary(value: str) -> str:
    text = strip_tags(_one_line(value))
    return _clip_utf16(text, SUMMARY_LIMIT).rstrip()


def _location(value: str) -> str:
    return _clip_utf16(_one_line(value), LOCATION_LIMIT).rstrip()


def _description(value: str) -> str:
    text = _drop_controls(_CRLF.sub("\n", value), keep="\n\t")[:DESCRIPTION_LIMIT]
    # Removing one wrapper can expose the other (a header above Syncro's rewrite): to a fixpoint.
    while (cleaner := _split_context(_unwrap_syncro_notes(text))[0]) != text:
        text = cleaner
    return text


def _check_year(moment: datetime) -> datetime:
    if not _MIN_YEAR <= moment.year <= _MAX_YEAR:
        raise UnmappableItem(f"the time {moment.isoformat()} is outside the years {_MIN_YEAR}-{_MAX_YEAR}")
    return moment


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def _all_day_span(start: datetime, end: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """Midnights in ``zone`` of the first day and of the day after the last (an end that is not
    a midnight means "through that day"), at least one day apart."""
    first = start.astimezone(zone).date()
    local_end = end.astimezone(zone)
    # Compared as instants: where DST skips midnight, a day starts at 01:00.
    after_last = local_end.date() if end == _midnight(local_end.date(), zone) else local_end.date() + timedelta(days=1)
    after_last = max(after_last, first + timedelta(days=1))
    return _midnight(first, zone), _midnight(after_last, zone)


def normalise(appointment: Appointment, *, zone: ZoneInfo) -> Appointment:
    """``appointment`` in normal form (see the module docstring); idempotent.

    Raises `UnmappableItem` when the end is before the start or a time is out of range."""
    start = _check_year(appointment.start.replace(microsecond=0))
    end = _check_year(appointment.end.replace(microsecond=0))
    if end < start:
        raise UnmappableItem(f"the end {end.isoformat()} is before the start {start.isoformat()}")
    if appointment.all_day:
        start, end = _all_day_span(start, end, zone)
    return Appointment(
        summary=_summary(appointment.summary),
        start=start,
        end=end,
        all_day=appointment.all_day,
        description=_description(appointment.description),
        location=_location(appointment.location),
    )


# -- Syncro's description rewrite ----------------------------------------------------------------

_SYNCRO_NOTES = re.compile(r"\ANotes:\n ?(?P<notes>.*?)\n\n (?:Contact|Details): ", re.DOTALL)


def _unwrap_syncro_notes(text: str) -> str:
    """The notes inside Syncro's own rewrite of a description tied to a ticket or customer
    (``Notes:\\n <notes>\\n\\n Contact: …\\n\\n Details: …``): the rest is Syncro's copy of the
    ticket and customer, which our header carries to Outlook, and sending it back would nest it."""
    while match := _SYNCRO_NOTES.match(text):
        text = match.group("notes")
    return text


# -- Syncro context: the ticket and customer shown on Syncro-born events in Outlook --------------


@dataclass(frozen=True)
class SyncroContext:
    """What Outlook shows of a Syncro-born appointment's customer and ticket.

    It becomes a short header block at the top of the event's body (customer, ticket, link,
    then `CONTEXT_SEPARATOR`), and the customer's address stands in for an empty location.
    Readers remove the block (and that stand-in address) again, so none of it syncs back."""

    customer_name: str = ""
    ticket_number: str = ""
    ticket_subject: str = ""
    customer_address: str = ""
    ticket_url: str = ""

    @classmethod
    def from_syncro(cls, raw: Mapping[str, Any], *, syncro_web_url: str) -> SyncroContext | None:
        """The context of a Syncro appointment as returned (nested ``customer`` and ``ticket``),
        the ticket's URL made from ``syncro_web_url`` (``https://acme.syncromsp.com``) and its
        id; None when the appointment has neither customer nor ticket. Never raises on shape."""
        record = _unwrap_syncro(raw) if isinstance(raw, Mapping) else {}
        customer = record.get("customer") if isinstance(record.get("customer"), Mapping) else {}
        ticket = record.get("ticket") if isinstance(record.get("ticket"), Mapping) else {}
        ticket_id = ticket.get("id", record.get("ticket_id"))
        name = _first_text(customer, "business_then_name", "business_name", "fullname")
        if not name:
            name = " ".join(p for p in (_first_text(customer, "firstname"), _first_text(customer, "lastname")) if p)
        region = " ".join(p for p in (_first_text(customer, "state"), _first_text(customer, "zip")) if p)
        parts = (*(_first_text(customer, k) for k in ("address", "address_2", "city")), region)
        url = ""
        # No SYNCRO_WEB_URL, no link: a bare "/tickets/42" opens nothing from Outlook or a calendar app.
        has_id = isinstance(ticket_id, int | str) and not isinstance(ticket_id, bool) and str(ticket_id).strip()
        if has_id and syncro_web_url.strip():
            url = f"{syncro_web_url.rstrip('/')}/tickets/{str(ticket_id).strip()}"
        context = cls(
            customer_name=name,
            ticket_number=_first_text(ticket, "number"),
            ticket_subject=_first_text(ticket, "subject"),
            customer_address=", ".join(p for p in parts if p),
            ticket_url=url,
        )
        return context if context != cls() else None

    def header_lines(self, *, location_fallback: bool) -> list[str]:
        """The header block's lines, separator last; empty when there is nothing to show."""
        lines = []
        if name := _one_line(self.customer_name):
            lines.append(f"Customer: {name}")
        number, subject = _one_line(self.ticket_number), _one_line(self.ticket_subject)
        if number or subject:
            lines.append(" ".join(p for p in (f"Ticket #{number}" if number else "Ticket", subject) if p))
        if url := _one_line(self.ticket_url):
            lines.append(f"Link: {url}")
        if location_fallback and (address := _location(self.customer_address)):
            lines.append(f"Location: {address}{_FALLBACK_NOTE}")
        return [*lines, CONTEXT_SEPARATOR] if lines else []


def _first_text(record: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = record.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return _one_line(str(value))
    return ""


_HEADER_LINE = re.compile(r"^(?:Customer: |Ticket\b|Link: |Location: )")


def _split_context(text: str) -> tuple[str, str | None]:
    """``text`` without any header blocks (the separator line and the header lines just above
    it), and the stand-in location one of them recorded, if any."""
    fallback = None
    lines = text.split("\n")
    while CONTEXT_SEPARATOR in (stripped := [line.strip() for line in lines]):
        end = stripped.index(CONTEXT_SEPARATOR)
        first = end
        while first > 0 and _HEADER_LINE.match(lines[first - 1].strip()):
            first -= 1
            line = lines[first].strip()
            if line.startswith("Location: ") and line.endswith(_FALLBACK_NOTE):
                fallback = line[len("Location: ") : -len(_FALLBACK_NOTE)].strip()
        lines = lines[:first] + lines[end + 1 :]
    return "\n".join(lines), fallback


def shown_context(raw: Mapping[str, Any]) -> list[str]:
    """The header block (`SyncroContext.header_lines`, separator last) a Graph event's body shows
    at its top, as read back; ``[]`` when it shows none. Never raises on shape."""
    body = raw.get("body") if isinstance(raw, Mapping) else None
    content = body.get("content") if isinstance(body, Mapping) else None
    if not isinstance(content, str):
        return []
    kind = str(body.get("contentType") or "html").strip().lower()
    text = html_to_text(content) if kind == "html" else content
    lines = [line.strip() for line in _CRLF.sub("\n", text).split("\n")]
    if CONTEXT_SEPARATOR not in lines:
        return []
    end = lines.index(CONTEXT_SEPARATOR)
    first = end
    while first > 0 and _HEADER_LINE.match(lines[first - 1]):
        first -= 1
    return lines[first : end + 1]


def context_lines(appointment: Appointment, context: SyncroContext | None, *, zone: ZoneInfo) -> list[str]:
    """The header block `graph_fields` writes for a Syncro-born ``appointment`` with ``context``."""
    if context is None:
        return []
    item = normalise(appointment, zone=zone)
    fallback = not item.location and bool(_location(context.customer_address))
    return [_one_line(line) for line in context.header_lines(location_fallback=fallback)]


def _read_iso(value: object, what: str) -> tuple[datetime, bool]:
    try:
        moment, has_offset = read_iso(value, what)
    except UnreadableTime as error:
        raise UnmappableItem(str(error)) from error
    return _check_year(moment), has_offset


# -- Syncro --------------------------------------------------------------------------------------


def _unwrap_syncro(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    # POST/PUT answers {"appointment": {...}}, lists [{"appointment": {...}}], GET by id is flat.
    inner = raw.get("appointment")
    if isinstance(inner, Mapping) and "start_at" not in raw:
        return inner
    return raw


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise UnmappableItem(f"{name} is a {type(value).__name__}, not a text")


_TRUE = frozenset(("1", "true", "t", "yes", "on"))
_FALSE = frozenset(("0", "false", "f", "no", "off", ""))


def _flag(record: Mapping[str, Any], name: str) -> bool:
    # Syncro returns all_day as null and flags as strings ("1"), as Rails coerces them.
    value = record.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UnmappableItem(f"{name} is {str(value)[:20]!r}, not a yes or no")


def appointment_from_syncro(raw: Mapping[str, Any], *, zone: ZoneInfo) -> Appointment:
    """The neutral form of a Syncro appointment as any of the API's three shapes returns it.

    ``zone`` is the account's zone (``GET /settings``): it reads times without an offset and
    places all-day appointments. Raises `UnmappableItem` (see the module docstring)."""
    if not isinstance(raw, Mapping):
        raise UnmappableItem(f"a Syncro appointment must be an object, not {type(raw).__name__}")
    record = _unwrap_syncro(raw)
    if "start_at" not in record:
        raise UnmappableItem("not a Syncro appointment: it has no start_at")
    start = _syncro_time(record.get("start_at"), "start_at", zone)
    if record.get("end_at") is not None:
        end = _syncro_time(record.get("end_at"), "end_at", zone)
    elif record.get("duration") is None:
        end = start  # Syncro requires only a summary and a start: no end is a moment, in Outlook and the feed
    else:
        duration = record.get("duration")
        if not isinstance(duration, int | float) or isinstance(duration, bool) or not 0 <= duration <= 24 * 366:
            raise UnmappableItem("the appointment has no end_at and its duration is not a number of hours")
        end = start + timedelta(hours=duration)
    return normalise(
        Appointment(
            summary=_text(record, "summary"),
            start=start,
            end=end,
            all_day=_flag(record, "all_day"),
            description=_text(record, "description"),
            location=_text(record, "location"),
        ),
        zone=zone,
    )


# Fields of a Syncro appointment that are not content (the planner never sees them) but make it
# the dispatcher's job: a re-create or a restore must carry them, or the job loses its customer.
KEPT_IDS = ("customer_id", "ticket_id", "appointment_type_id")


def _an_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def syncro_kept(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What a Syncro appointment holds beyond its content, as far as Syncro shows it: its
    customer, ticket and type ids (from the nested objects when the flat id is missing) and its
    techs (``user_ids``, which Syncro may withhold). Never raises on shape; ``{}`` for nothing."""
    record = _unwrap_syncro(raw) if isinstance(raw, Mapping) else {}
    kept: dict[str, Any] = {}
    for name in KEPT_IDS:
        value = _an_id(record.get(name))
        nested = record.get(name.removesuffix("_id"))
        if value is None and isinstance(nested, Mapping):
            value = _an_id(nested.get("id"))
        if value is not None:
            kept[name] = value
    users = record.get("user_ids")
    if isinstance(users, list) and users and all(_an_id(u) is not None for u in users):
        kept["user_ids"] = [_an_id(u) for u in users]
    return kept


def _syncro_time(value: object, what: str, zone: ZoneInfo) -> datetime:
    moment, has_offset = _read_iso(value, what)
    # Syncro (Rails' Time.zone.parse) reads a time without an offset in the account's zone.
    return moment if has_offset else moment.replace(tzinfo=zone)


def syncro_fields(
    appointment: Appointment,
    *,
    zone: ZoneInfo,
    origin: Side,
    tech_syncro_user_id: int | None,
    appointment_type_id: int | None = None,
    customer_id: int | None = None,
    kept: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /appointments`` or ``PUT /appointments/{id}`` for ``appointment``.

    Times are ISO 8601 in the account's offset (all-day: its midnights). ``[O] `` leads the
    summary of an Outlook-born item. ``do_not_email`` is always true (a sync must never email a
    customer) and ``all_day`` always sent (Syncro's PUT is a whole-form save that resets omitted
    booleans). ``user_id``/``user_ids`` name the tech; pass ``tech_syncro_user_id=None`` on an
    update to leave Syncro's assignment as it is (a shared appointment keeps its other techs).
    ``kept`` (`syncro_kept` of the appointment this one re-creates) brings back its customer,
    ticket, type and techs, over the defaults ``appointment_type_id`` and ``customer_id``.
    Raises `UnmappableItem` when the appointment cannot be put in normal form."""
    item = normalise(appointment, zone=zone)
    summary = item.summary
    if origin is Side.OUTLOOK:
        summary = OUTLOOK_TAG + summary
    elif not summary:
        summary = NO_TITLE
    fields: dict[str, Any] = {
        "summary": summary,
        "description": item.description,
        "location": item.location,
        "start_at": item.start.astimezone(zone).isoformat(timespec="seconds"),
        "end_at": item.end.astimezone(zone).isoformat(timespec="seconds"),
        "all_day": item.all_day,
        "do_not_email": True,
    }
    if tech_syncro_user_id is not None:
        fields["user_id"] = tech_syncro_user_id
        fields["user_ids"] = [tech_syncro_user_id]
    if appointment_type_id is not None:
        fields["appointment_type_id"] = appointment_type_id
    if customer_id is not None:
        fields["customer_id"] = customer_id
    kept = kept or {}
    fields.update({name: kept[name] for name in KEPT_IDS if _an_id(kept.get(name)) is not None})
    users = kept.get("user_ids")
    if tech_syncro_user_id is not None and isinstance(users, list) and users:
        fields["user_ids"] = sorted({*users, tech_syncro_user_id})
    return fields


# -- Graph ---------------------------------------------------------------------------------------


def _graph_part(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UnmappableItem(f"{name} is a {type(value).__name__}, not an object")
    return value


def _graph_time(raw: Mapping[str, Any], name: str, *, all_day: bool, zone: ZoneInfo) -> datetime:
    part = _graph_part(raw, name)
    if not part:
        raise UnmappableItem(f"the event has no {name}")
    moment, has_offset = _read_iso(part.get("dateTime"), f"{name}.dateTime")
    if all_day:
        # All-day events read as floating dates whatever zone was asked: the date is the fact.
        return datetime.combine(moment.date(), moment.time(), zone)
    if has_offset:
        return moment
    try:
        return moment.replace(tzinfo=resolve_graph_zone(part.get("timeZone")))
    except UnknownZone as error:
        raise UnmappableItem(str(error)) from error


def appointment_from_graph(raw: Mapping[str, Any], *, zone: ZoneInfo) -> Appointment:
    """The neutral form of a Graph event (as GET, calendarView or delta return it, any
    ``Prefer: outlook.timezone``), ``[S]``/``[O]`` tags and our `SyncroContext` header removed
    (with the customer's address it put in an empty location). ``zone`` is the Syncro account's
    zone, which places all-day events. Raises `UnmappableItem` for a deleted item
    (``@removed``), an occurrence stub (fetch the full event first) or bad fields."""
    if not isinstance(raw, Mapping):
        raise UnmappableItem(f"a Graph event must be an object, not {type(raw).__name__}")
    if "@removed" in raw:
        raise UnmappableItem("the event was removed")
    if "subject" not in raw:
        raise UnmappableItem("the event has no subject: an occurrence stub, read the full event")
    subject = _text(raw, "subject")
    all_day = _flag(raw, "isAllDay")
    start = _graph_time(raw, "start", all_day=all_day, zone=zone)
    end = _graph_time(raw, "end", all_day=all_day, zone=zone)
    body = _graph_part(raw, "body")
    content = _text(body, "content")
    kind = _text(body, "contentType").strip().lower() or "html"
    if kind not in ("html", "text"):
        raise UnmappableItem(f"the body's contentType {kind[:20]!r} is neither html nor text")
    text = html_to_text(content) if kind == "html" else content
    location = _text(_graph_part(raw, "location"), "displayName")
    _rest, fallback = _split_context(_drop_controls(_CRLF.sub("\n", text), keep="\n\t"))
    if fallback is not None and _location(location) == _location(fallback):
        location = ""  # the customer's address we filled in, not a location the tech chose
    return normalise(
        Appointment(summary=subject, start=start, end=end, all_day=all_day, description=text, location=location),
        zone=zone,
    )


def _graph_moment(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def with_context(item: Appointment, context: SyncroContext | None) -> tuple[list[str], str]:
    """What a Syncro appointment (``item``, in normal form) shows beyond its own fields, in Outlook
    and in the ICS feed alike: the customer/ticket header lines (separator last) and the location,
    which is the customer's address where the appointment has none."""
    if context is None:
        return [], item.location
    fallback = not item.location and bool(_location(context.customer_address))
    header = context.header_lines(location_fallback=fallback)
    return header, _location(context.customer_address) if fallback else item.location


def shown_from_syncro(raw: Mapping[str, Any], *, zone: ZoneInfo, syncro_web_url: str) -> tuple[Appointment, list[str]]:
    """A Syncro appointment as Outlook and the ICS feed show it: the one reader both use. Its normal
    form (times, all-day days, a missing end from ``duration``) with the location Outlook shows,
    and the header lines above its notes (without the separator, which only Outlook's body needs).
    Raises `UnmappableItem`."""
    item = normalise(appointment_from_syncro(raw, zone=zone), zone=zone)
    header, location = with_context(item, SyncroContext.from_syncro(raw, syncro_web_url=syncro_web_url))
    lines = [line for line in header if line != CONTEXT_SEPARATOR]
    return Appointment(item.summary, item.start, item.end, item.all_day, item.description, location), lines


def graph_fields(
    appointment: Appointment, *, zone: ZoneInfo, origin: Side, extras: SyncroContext | None
) -> dict[str, Any]:
    """The body of ``POST .../events`` or ``PATCH .../events/{id}`` for ``appointment``.

    Timed events are written in UTC; all-day events as midnights in the account's zone (its
    Windows name when there is one), as Graph requires. ``[S] `` leads the subject of a
    Syncro-born item, whose body starts with ``extras``' header block and whose empty location
    shows the customer's address. The body is HTML that reads back as the description exactly.
    Raises `UnmappableItem` when the appointment cannot be put in normal form."""
    item = normalise(appointment, zone=zone)
    subject = SYNCRO_TAG + item.summary if origin is Side.SYNCRO else item.summary
    description, location = item.description, item.location
    if origin is Side.SYNCRO:
        header, location = with_context(item, extras)
        if header:
            description = "\n".join([*header, description])
    fields: dict[str, Any] = {
        "subject": subject,
        "body": {"contentType": "html", "content": text_to_html(description)},
        "isAllDay": item.all_day,
        "location": {"displayName": location},
    }
    if item.all_day:
        name = graph_zone_name(zone)
        for key, moment in (("start", item.start), ("end", item.end)):
            day = moment.astimezone(zone).date()
            fields[key] = {"dateTime": f"{day.isoformat()}T00:00:00", "timeZone": name}
    else:
        fields["start"], fields["end"] = _graph_moment(item.start), _graph_moment(item.end)
    return fields
