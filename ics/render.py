"""The feed's iCalendar text, from the appointments the Syncro mirror holds. Pure: no I/O.

`render_feed` takes appointments as Syncro returned them (dicts), keeps those that overlap the
window and renders one ``VEVENT`` each with `icalendar` (escaping and line folding are the
library's). An appointment that cannot be read (no start, end before start, a broken time) is
left out: one bad record must never take a technician's whole calendar down.

`render_feed` is the plain path: every event through icalendar. The served path
(`ics.fragments.assemble`) reuses each event's bytes (`event_fragment`) rendered earlier and
joins them with `join_feed`, using `event_span` to place them; both give the same bytes.

Decisions (docs/ics.md):
- Timed events are written in UTC (``DTSTART:20260310T160000Z``): no ``VTIMEZONE`` to get wrong,
  and every client shows them in its own zone. All-day ones are ``VALUE=DATE`` days in the
  Syncro account's zone; a multi-day one stays one event (``DTEND`` is the day after the last).
- ``UID`` is ``syncro-appointment-<id>@<host>``: stable for the appointment's life, so a client
  updates the event in place instead of duplicating it.
- ``SEQUENCE`` is whole seconds from 2020-01-01 to Syncro's ``updated_at``, which rises on every
  change, so SEQUENCE rises too without any stored counter.
- ``DTSTAMP`` is ``updated_at`` as well (not the request time): the same mirror renders the same
  bytes, which is what makes the ETag, and so the 304, work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vDDDTypes, vDuration, vInt, vText

from sync.model import Appointment
from sync.times import parse_time as read_time

PRODID = "-//Syncro Outlook Sync//ICS feed//EN"
# Clients that honour it refresh this often; fresher data is there (docs/ics.md "Refresh").
REFRESH_INTERVAL = timedelta(minutes=15)
SEQUENCE_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
UNTITLED = "Appointment"


@dataclass(frozen=True)
class FeedWindow:
    """The span the feed covers: events that overlap ``[start, end)`` (aware UTC datetimes)."""

    start: datetime
    end: datetime


def feed_window(now: datetime, *, days_back: int, days_ahead: int) -> FeedWindow:
    """Whole UTC days around ``now``: the window moves once a day, not on every request, so an
    unchanged mirror renders unchanged bytes all day long."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    return FeedWindow(today - timedelta(days=days_back), today + timedelta(days=days_ahead + 1))


@dataclass(frozen=True)
class FeedEvent:
    """What the feed shows of one appointment, read and checked. Hashable: it keys the event cache.

    Timed: ``start``/``end`` are aware UTC. All-day: ``start_day``/``end_day`` (exclusive) are days
    in the account zone, and ``start``/``end`` are those days' midnights (for the window test).
    """

    appointment_id: str
    summary: str
    description: str
    location: str
    start: datetime
    end: datetime
    all_day: bool
    start_day: date | None
    end_day: date | None
    updated_at: datetime | None


class BadAppointment(ValueError):
    """An appointment the feed leaves out; the message says why (for a log line, never a response)."""


def parse_time(value: Any, zone: ZoneInfo) -> datetime:
    """A Syncro time (``2026-03-10T09:00:00.000-07:00``, ``...Z``; without an offset: the account
    zone, as Syncro reads it) as aware UTC. Raises BadAppointment."""
    if not isinstance(value, str) or not value.strip():
        raise BadAppointment(f"time {value!r} is missing")
    parsed = read_time(value, naive=zone)
    if parsed is None:
        raise BadAppointment(f"time {value!r} is not ISO 8601")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadAppointment(f"time {value!r} is out of range") from None


# What RFC 5545 forbids in TEXT (controls other than tab and line breaks), and lone surrogates
# (JSON may carry "\ud800"; no UTF-8 encoder writes them): one stray character in a Syncro field
# must not cost the whole feed its validity, or a 500.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub("", text))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return _clean(str(value)).strip()


class EventSpan(NamedTuple):
    """Where an appointment sits: enough to window and order it without reading its text."""

    appointment_id: str
    start: datetime  # aware UTC; for all-day, the first day's midnight in the account zone
    end: datetime
    all_day: bool
    start_day: date | None = None
    end_day: date | None = None

    def overlaps(self, window: FeedWindow) -> bool:
        return self.start < window.end and (self.end > window.start or self.start >= window.start)

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Events are ordered by start, end, id, so equal input gives equal bytes."""
        return (self.start, self.end, self.appointment_id)


def _shown(raw: Any, zone: ZoneInfo, ticket_base: str) -> tuple[Appointment, list[str]]:
    """The appointment as Outlook shows it (`sync.mapping.shown_from_syncro`: one reader for both)."""
    from sync.mapping import UnmappableItem, shown_from_syncro

    if not isinstance(raw, dict):
        raise BadAppointment("not an object")
    appointment_id = raw.get("id")
    if isinstance(appointment_id, bool) or not isinstance(appointment_id, (int, str)) or not str(appointment_id):
        raise BadAppointment(f"id {appointment_id!r} is not usable")
    try:
        return shown_from_syncro(raw, zone=zone, syncro_web_url=ticket_base)
    except UnmappableItem as problem:
        raise BadAppointment(str(problem)) from None
    except OverflowError:  # days at the calendar's very ends (a year typed as 9999)
        raise BadAppointment("days out of range") from None


def _span(appointment_id: str, item: Appointment, zone: ZoneInfo) -> EventSpan:
    if not item.all_day:
        return EventSpan(appointment_id, item.start, item.end, False)
    # Normal form puts an all-day appointment at the midnights, in the account zone, of its first
    # day and of the day after its last.
    start_day, end_day = item.start.astimezone(zone).date(), item.end.astimezone(zone).date()
    return EventSpan(appointment_id, item.start, item.end, True, start_day, end_day)


def event_span(raw: Any, zone: ZoneInfo) -> EventSpan:
    """The id, times and all-day days of one mirror appointment. Raises BadAppointment, for
    exactly the appointments `read_appointment` rejects."""
    item, _ = _shown(raw, zone, "")
    return _span(str(raw["id"]), item, zone)


def read_appointment(raw: Any, zone: ZoneInfo, *, ticket_base: str = "") -> FeedEvent:
    """One mirror appointment as the feed shows it: what Outlook shows of it (times, all-day,
    title, location, the customer/ticket lines and notes), read by the same function. ``ticket_base``
    is the Syncro web address the ticket link starts with (SYNCRO_WEB_URL). Raises BadAppointment."""
    item, header = _shown(raw, zone, ticket_base)
    span = _span(str(raw["id"]), item, zone)
    updated_at = None
    if raw.get("updated_at"):
        try:
            updated_at = parse_time(raw.get("updated_at"), zone)
        except BadAppointment:
            updated_at = None  # a broken version marker costs the event its SEQUENCE, not its place
    return FeedEvent(
        appointment_id=span.appointment_id,
        summary=_text(item.summary) or UNTITLED,
        description=_clean("\n".join([*header, item.description]) if header else item.description),
        location=_text(item.location),
        start=span.start,
        end=span.end,
        all_day=span.all_day,
        start_day=span.start_day,
        end_day=span.end_day,
        updated_at=updated_at,
    )


def sequence_of(updated_at: datetime | None) -> int:
    """Seconds from 2020 to ``updated_at``: rises with every Syncro change (0 when unknown)."""
    if updated_at is None:
        return 0
    return max(0, int((updated_at - SEQUENCE_EPOCH).total_seconds()))


def uid_host(base_url: str) -> str:
    """The host in every UID: PUBLIC_BASE_URL's."""
    return urlsplit(base_url).hostname or "localhost"


def event_fragment(event: FeedEvent, host: str) -> bytes:
    """One ``VEVENT``, ``BEGIN`` to ``END`` with its CRLF, as icalendar writes it."""
    # Typed values set directly: the same output as ``Event.add`` (which infers each type)
    # at two thirds of the cost; escaping and folding stay icalendar's.
    vevent = Event()
    vevent["uid"] = vText(f"syncro-appointment-{event.appointment_id}@{host}")
    vevent["dtstamp"] = vDDDTypes(event.updated_at or SEQUENCE_EPOCH)
    if event.all_day:
        vevent["dtstart"] = vDDDTypes(event.start_day)
        vevent["dtend"] = vDDDTypes(event.end_day)
        # All-day appointments don't block time, as in Outlook.
        vevent["transp"] = vText("TRANSPARENT")
    else:
        vevent["dtstart"] = vDDDTypes(event.start)
        vevent["dtend"] = vDDDTypes(event.end)
    vevent["summary"] = vText(event.summary)
    if event.description:
        vevent["description"] = vText(event.description)
    if event.location:
        vevent["location"] = vText(event.location)
    if event.updated_at is not None:
        vevent["last-modified"] = vDDDTypes(event.updated_at)
    vevent["sequence"] = vInt(sequence_of(event.updated_at))
    vevent["status"] = vText("CONFIRMED")
    return vevent.to_ical()


@lru_cache(maxsize=16)
def _calendar_parts(calendar_name: str) -> tuple[bytes, bytes]:
    """The VCALENDAR's opening lines (with its properties) and its closing line."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", calendar_name)
    calendar.add("x-wr-calname", calendar_name)
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    # Not a registered property, so icalendar would guess its type: say DURATION explicitly.
    calendar["x-published-ttl"] = vDuration(REFRESH_INTERVAL)
    text = calendar.to_ical()
    end = b"END:VCALENDAR\r\n"
    return text[: -len(end)], end


def join_feed(calendar_name: str, fragments: Iterable[bytes]) -> bytes:
    """The VCALENDAR around ``fragments`` (`event_fragment` outputs, already in order): the same
    bytes as icalendar's ``Calendar.to_ical`` of the calendar holding those events."""
    head, tail = _calendar_parts(calendar_name)
    return b"".join((head, *fragments, tail))


def render_feed(
    appointments: Iterable[Any],
    *,
    zone: ZoneInfo,
    calendar_name: str,
    window: FeedWindow,
    base_url: str,
    skipped: list[tuple[Any, str]] | None = None,
    ticket_base: str = "",
) -> bytes:
    """The feed: a VCALENDAR with one VEVENT per appointment overlapping ``window``, every
    event rendered by icalendar (the served path, `ics.fragments.assemble`, reuses earlier ones).

    ``zone`` is the Syncro account's zone (all-day days, times without an offset). ``base_url``
    gives the UIDs' host. Events are ordered by start, end, id, so equal input gives equal bytes.
    ``skipped`` receives ``(appointment id, reason)`` for each appointment left out. Never raises
    for bad items.
    """
    host = uid_host(base_url)
    events: list[FeedEvent] = []
    for raw in appointments:
        try:
            event = read_appointment(raw, zone, ticket_base=ticket_base)
        except BadAppointment as problem:
            if skipped is not None:
                skipped.append((raw.get("id") if isinstance(raw, dict) else None, str(problem)))
            continue
        if event.start < window.end and (event.end > window.start or event.start >= window.start):
            events.append(event)
    events.sort(key=lambda e: (e.start, e.end, e.appointment_id))
    return join_feed(calendar_name, (event_fragment(event, host) for event in events))
