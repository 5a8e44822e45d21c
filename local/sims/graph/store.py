"""The mailboxes and what happens to their events: create, update, delete, cancel.

Every change is announced to listeners (notification delivery) as an EventChange; the store
itself knows nothing of HTTP. One re-entrant lock guards everything, because the event loop
and test threads both use the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from local.sims.control import SimClock
from local.sims.graph.errors import GraphError, not_found
from local.sims.graph.instances import (
    OWN_EXTENDED,
    Instance,
    as_instance,
    find_occurrence,
    parse_occurrence_id,
    series_instances,
)
from local.sims.graph.meetings import MeetingCopies
from local.sims.graph.model import (
    Calendar,
    Mailbox,
    OccurrenceOverride,
    SentMail,
    StoredEvent,
    new_change_key,
    new_ical_uid,
    new_id,
)
from local.sims.graph.payload import EventWrite, check_times, extended_key
from local.sims.graph.recurrence import normalise
from local.sims.graph.settings import GraphSettings
from local.sims.graph.timefmt import format_stamp, resolve_zone

ORGANIZER_ONLY = "Your request can't be completed. You need to be an organizer to cancel a meeting."


@dataclass(frozen=True)
class EventChange:
    """One created/updated/deleted item, as change notifications report it."""

    mailbox_oid: str
    tenant_id: str
    calendar_id: str
    event_id: str
    change_type: str  # created | updated | deleted
    etag: str


class GraphStore:
    def __init__(self, clock: SimClock, settings: GraphSettings) -> None:
        self.clock = clock
        self.settings = settings
        self.lock = threading.RLock()
        self.mailboxes: dict[str, Mailbox] = {}
        self.listeners: list[Callable[[EventChange], None]] = []
        self.meetings = MeetingCopies(self)

    # --- mailboxes and calendars -----------------------------------------------------------
    def clear(self) -> None:
        with self.lock:
            self.mailboxes.clear()
            self.meetings.clear()

    def add_mailbox(
        self, *, oid: str, email: str, name: str, tenant_id: str, personal: bool = False, can_subscribe: bool = True
    ) -> Mailbox:
        with self.lock:
            mailbox = self.mailboxes.get(oid)
            if mailbox is None:
                mailbox = Mailbox(oid=oid, email=email, name=name, tenant_id=tenant_id)
                self.mailboxes[oid] = mailbox
            mailbox.email, mailbox.name, mailbox.tenant_id = email, name, tenant_id
            mailbox.personal, mailbox.can_subscribe = personal, can_subscribe
            if not mailbox.calendars:
                self.add_calendar(mailbox, "Calendar", is_default=True)
            return mailbox

    def mailbox_for_claims(self, claims: dict[str, Any]) -> Mailbox:
        """The token's mailbox, created with a default calendar on first use."""
        with self.lock:
            existing = self.mailboxes.get(str(claims.get("oid")))
            if existing is not None:
                return existing
            return self.add_mailbox(
                oid=str(claims.get("oid")),
                email=str(claims.get("preferred_username", "")),
                name=str(claims.get("name", "")),
                tenant_id=str(claims.get("tid", "")),
            )

    def find_mailbox(self, id_or_upn: str) -> Mailbox | None:
        with self.lock:
            if id_or_upn in self.mailboxes:
                return self.mailboxes[id_or_upn]
            wanted = id_or_upn.lower()
            # Graph takes a user's UPN in /users/{id|userPrincipalName}; the mail address is also kept
            # here because mailboxes made from a token know only one address.
            return next((m for m in self.mailboxes.values() if wanted in (m.upn.lower(), m.email.lower())), None)

    def add_calendar(
        self, mailbox: Mailbox, name: str, *, is_default: bool = False, calendar_id: str | None = None
    ) -> Calendar:
        with self.lock:
            if any(c.name.lower() == name.lower() for c in mailbox.calendars.values()):
                raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
            if is_default:
                for other in mailbox.calendars.values():
                    other.is_default = False
            calendar = Calendar(id=calendar_id or new_id(), name=name, is_default=is_default)
            mailbox.calendars[calendar.id] = calendar
            return calendar

    def calendar(self, mailbox: Mailbox, calendar_id: str) -> Calendar:
        calendar = mailbox.calendars.get(calendar_id)
        if calendar is None:
            raise not_found()
        return calendar

    # --- reads -----------------------------------------------------------------------------
    def events_of(self, mailbox: Mailbox, calendar_id: str) -> list[StoredEvent]:
        """Singles and series masters of one calendar, oldest first."""
        with self.lock:
            return [e for e in mailbox.events.values() if e.calendar_id == calendar_id]

    def get_item(self, mailbox: Mailbox, item_id: str) -> Instance:
        """An event, a series master, or one occurrence/exception of a series; 404 otherwise."""
        with self.lock:
            event = mailbox.events.get(item_id)
            if event is not None:
                return as_instance(event)
            parsed = parse_occurrence_id(item_id)
            if parsed is not None and parsed[0] in mailbox.events:
                occurrence = find_occurrence(mailbox.events[parsed[0]], parsed[1])
                if occurrence is not None:
                    return occurrence
            raise not_found()

    def find_by_transaction_id(self, mailbox: Mailbox, transaction_id: str) -> StoredEvent | None:
        with self.lock:
            return next((e for e in mailbox.events.values() if e.fields.get("transactionId") == transaction_id), None)

    # --- writes ----------------------------------------------------------------------------
    def create_event(
        self,
        mailbox: Mailbox,
        calendar: Calendar,
        write: EventWrite,
        extra_fields: dict[str, Any] | None = None,
        event_id: str | None = None,
    ) -> StoredEvent:
        if write.start is None or write.end is None:
            raise GraphError(400, "ErrorInvalidRequest", "Your request can't be completed. Start and End are required.")
        is_all_day = bool(write.is_all_day)
        check_times(write.start, write.end, is_all_day)
        recurrence = (
            normalise(write.recurrence, write.start.local.date(), write.start.zone) if write.recurrence else None
        )
        now = self.clock.now()
        with self.lock:
            event = StoredEvent(
                id=event_id or new_id(),
                calendar_id=calendar.id,
                fields={**write.fields, **(extra_fields or {})},
                start=write.start,
                end=write.end,
                is_all_day=is_all_day,
                recurrence=recurrence,
                change_key=new_change_key(),
                created=now,
                modified=now,
                ical_uid=new_ical_uid(),
            )
            for prop_id, value in write.extended:
                event.extended[extended_key(prop_id)] = (prop_id, value)
            mailbox.events[event.id] = event
            self._mail_attendees(mailbox, as_instance(event), "invitation")
            self._emit(mailbox, event.calendar_id, event.id, "created", event.etag)
            self.meetings.after_write(mailbox, event)
            return event

    def update_item(self, mailbox: Mailbox, item_id: str, write: EventWrite, if_match: str | None) -> Instance:
        with self.lock:
            item = self.get_item(mailbox, item_id)
            _check_if_match(item, if_match)
            if item.kind in ("occurrence", "exception"):
                return self._update_occurrence(mailbox, item, write)
            return self._update_event(mailbox, item.event, write)

    def _update_event(self, mailbox: Mailbox, event: StoredEvent, write: EventWrite) -> Instance:
        start, end = write.start or event.start, write.end or event.end
        is_all_day = event.is_all_day if write.is_all_day is None else write.is_all_day
        check_times(start, end, is_all_day)
        recurrence = event.recurrence
        if write.has_recurrence:
            recurrence = normalise(write.recurrence, start.local.date(), start.zone) if write.recurrence else None
        if recurrence != event.recurrence or start.local != event.start.local:
            # A new pattern or series start rebuilds the series: exceptions and deletions go.
            event.overrides.clear()
            event.deleted_occurrences.clear()
        event.fields.update(write.fields)
        event.start, event.end, event.is_all_day, event.recurrence = start, end, is_all_day, recurrence
        for prop_id, value in write.extended:
            event.extended[extended_key(prop_id)] = (prop_id, value)
        self._touch(event)
        updated = as_instance(event)
        self._mail_attendees(mailbox, updated, "update")
        self._emit(mailbox, event.calendar_id, event.id, "updated", event.etag)
        self.meetings.after_write(mailbox, event)
        return updated

    def _update_occurrence(self, mailbox: Mailbox, item: Instance, write: EventWrite) -> Instance:
        master = item.event
        if write.has_recurrence or (write.is_all_day is not None and write.is_all_day != master.is_all_day):
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. The recurrence or all-day flag of an occurrence can't be changed.",
            )
        start, end = write.start or item.start, write.end or item.end
        check_times(start, end, master.is_all_day)
        key = item.id.rsplit("_OCC", 1)[1]
        self._check_crossing(master, key, start.local)
        now = self.clock.now()
        override = master.overrides.get(key) or OccurrenceOverride({}, None, None, "", now)
        override.fields.update(write.fields)
        override.start, override.end = start, end
        override.change_key, override.modified = new_change_key(), now
        master.overrides[key] = override
        # A property set on one occurrence stays on that exception, never on the series.
        own = dict(override.fields.get(OWN_EXTENDED) or {})
        for prop_id, value in write.extended:
            own[extended_key(prop_id)] = (prop_id, value)
        if own:
            override.fields[OWN_EXTENDED] = own
        updated = find_occurrence(master, key)
        assert updated is not None
        self._mail_attendees(mailbox, updated, "update")
        self._emit(mailbox, master.calendar_id, updated.id, "updated", f'W/"{updated.change_key}"')
        self._emit(mailbox, master.calendar_id, master.id, "updated", master.etag)
        return updated

    def _check_crossing(self, master: StoredEvent, key: str, new_local: datetime) -> None:
        """Outlook refuses to move an occurrence onto or past the day of a neighbouring one."""
        horizon = max(new_local, datetime.strptime(key, "%Y%m%dT%H%M%SZ")) + timedelta(days=400)
        originals = sorted(
            (i.original_start, i.id.endswith(key))
            for i in series_instances(master, horizon.replace(tzinfo=master.start.utc.tzinfo))
            if i.original_start is not None
        )
        position = next((n for n, (_, mine) in enumerate(originals) if mine), None)
        if position is None:
            return
        new_day = new_local.date()
        zone_day = self._local_day(master)
        before = originals[position - 1][0] if position > 0 else None
        after = originals[position + 1][0] if position + 1 < len(originals) else None
        if (before and new_day <= zone_day(before)) or (after and new_day >= zone_day(after)):
            raise GraphError(
                400,
                "ErrorOccurrenceCrossingBoundary",
                "Occurrence cannot be moved to or beyond the adjacent occurrence.",
            )

    @staticmethod
    def _local_day(master: StoredEvent) -> Callable[[datetime], Any]:
        zone = resolve_zone(master.start.zone)
        return lambda moment: moment.astimezone(zone).date()

    def delete_item(
        self, mailbox: Mailbox, item_id: str, if_match: str | None, *, cancel: bool = False, comment: str = ""
    ) -> None:
        with self.lock:
            item = self.get_item(mailbox, item_id)
            _check_if_match(item, if_match)
            if cancel and not item.fields.get("isOrganizer", True):
                raise GraphError(400, "ErrorInvalidRequest", ORGANIZER_ONLY)
            if not cancel and item.fields.get("isCancelled") and not item.fields.get("isOrganizer", True):
                status = self.settings.cancelled_attendee_copy_delete_status
                if status >= 400:
                    raise GraphError(
                        status,
                        "ErrorAccessDenied" if status == 403 else "ErrorItemNotFound",
                        "The meeting has been cancelled; its copy can't be deleted.",
                    )
            self._mail_attendees(mailbox, item, "cancellation", comment)
            if item.kind in ("occurrence", "exception"):
                self._delete_occurrence(mailbox, item)
                return
            del mailbox.events[item.id]
            mailbox.deleted_at[item.id] = self.clock.now()
            self.meetings.after_delete(mailbox, item.event)
            self._emit(mailbox, item.event.calendar_id, item.id, "deleted", item.event.etag)

    def _delete_occurrence(self, mailbox: Mailbox, item: Instance) -> None:
        master = item.event
        key = item.id.rsplit("_OCC", 1)[1]
        master.overrides.pop(key, None)
        master.deleted_occurrences.add(key)
        self._touch(master)
        # Graph reports only an update of the master (reported), never the occurrence itself.
        self._emit(mailbox, master.calendar_id, master.id, "updated", master.etag)

    def server_touch(self, mailbox: Mailbox, item_id: str) -> Instance:
        """A change made by Exchange itself, not by the client (calendar processing, a meeting
        response): changeKey, etag and lastModifiedDateTime move and listeners hear ``updated``."""
        with self.lock:
            item = self.get_item(mailbox, item_id)
            master = item.event
            key = item.id.rsplit("_OCC", 1)[1] if item.kind in ("occurrence", "exception") else None
            override = master.overrides.get(key) if key else None
            if override is not None:
                override.change_key, override.modified = new_change_key(), self.clock.now()
            else:
                self._touch(master)
            touched = self.get_item(mailbox, item_id)
            self._emit(mailbox, master.calendar_id, touched.id, "updated", f'W/"{touched.change_key}"')
            return touched

    # --- helpers ---------------------------------------------------------------------------
    def _touch(self, event: StoredEvent) -> None:
        event.change_key, event.modified = new_change_key(), self.clock.now()

    def _mail_attendees(self, mailbox: Mailbox, item: Instance, kind: str, comment: str = "") -> None:
        """Organizer writes to an attendee-bearing meeting always email its attendees."""
        attendees = item.fields.get("attendees") or []
        if not attendees or not item.fields.get("isOrganizer", True):
            return
        mailbox.sent.append(
            SentMail(
                kind=kind,
                event_id=item.id,
                subject=item.fields.get("subject", ""),
                recipients=[a["emailAddress"]["address"] for a in attendees],
                comment=comment,
                at=format_stamp(self.clock.now()),
            )
        )

    def announce(self, mailbox: Mailbox, event: StoredEvent, change_type: str) -> None:
        """Tell listeners about a change made outside the methods above (attendee copies)."""
        self._emit(mailbox, event.calendar_id, event.id, change_type, event.etag)

    def _emit(self, mailbox: Mailbox, calendar_id: str, event_id: str, change_type: str, etag: str) -> None:
        change = EventChange(mailbox.oid, mailbox.tenant_id, calendar_id, event_id, change_type, etag)
        for listener in list(self.listeners):
            listener(change)


def _check_if_match(item: Instance, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    given = if_match.strip()
    given = given[2:] if given.startswith("W/") else given
    if given.strip('"') != item.change_key:
        raise GraphError(
            412,
            "ErrorIrresolvableConflict",
            "The change key passed in the request does not match the current change key for the item.",
        )
