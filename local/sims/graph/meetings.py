"""Attendee copies of meetings between mailboxes of the simulator.

When an organizer's meeting invites an address that is another simulated mailbox, that mailbox gets
its own copy (own id, same iCalUId, ``isOrganizer: false``, shown as tentative). Organizer updates
rewrite the copy; a cancellation, a deletion, or removing the attendee leaves the copy in place
with ``isCancelled: true`` and a "Canceled: " subject, as Exchange does. Edits of single
occurrences are not carried over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local.sims.graph.model import Mailbox, StoredEvent, new_change_key
from local.sims.graph.payload import EventWrite

if TYPE_CHECKING:
    from local.sims.graph.store import GraphStore

COPIED_FIELDS = (
    "subject",
    "body",
    "location",
    "locations",
    "attendees",
    "sensitivity",
    "importance",
    "responseRequested",
    "isOnlineMeeting",
)


class MeetingCopies:
    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self._copies: dict[tuple[str, str], dict[str, str]] = {}  # (organizer oid, event id) -> oid -> copy id

    def clear(self) -> None:
        self._copies.clear()

    def after_write(self, organizer: Mailbox, event: StoredEvent) -> None:
        """Create or refresh copies for invited mailboxes; cancel those no longer invited."""
        if not event.fields.get("isOrganizer", True):
            return
        copies = self._copies.setdefault((organizer.oid, event.id), {})
        invited = {m.oid: m for m in self._invited(organizer, event)}
        for oid, mailbox in invited.items():
            copy = mailbox.events.get(copies.get(oid, ""))
            if copy is None:
                copies[oid] = self._create(mailbox, organizer, event)
            else:
                self._refresh(mailbox, organizer, event, copy)
        for oid in [o for o in copies if o not in invited]:
            self._cancel(oid, copies.pop(oid))

    def after_delete(self, organizer: Mailbox, event: StoredEvent) -> None:
        for oid, copy_id in self._copies.pop((organizer.oid, event.id), {}).items():
            self._cancel(oid, copy_id)

    def _invited(self, organizer: Mailbox, event: StoredEvent) -> list[Mailbox]:
        addresses = {a["emailAddress"]["address"].lower() for a in event.fields.get("attendees") or []}
        return [m for m in self.store.mailboxes.values() if m.email.lower() in addresses and m is not organizer]

    def _copy_fields(self, organizer: Mailbox, event: StoredEvent) -> dict[str, Any]:
        fields = {k: v for k, v in event.fields.items() if k in COPIED_FIELDS}
        fields.update(
            {
                "isOrganizer": False,
                "isCancelled": False,
                "showAs": "tentative",
                "organizer": {"emailAddress": {"name": organizer.name, "address": organizer.email}},
            }
        )
        return fields

    def _create(self, mailbox: Mailbox, organizer: Mailbox, event: StoredEvent) -> str:
        write = EventWrite(
            start=event.start,
            end=event.end,
            is_all_day=event.is_all_day,
            recurrence=event.recurrence,
            has_recurrence=event.recurrence is not None,
        )
        copy = self.store.create_event(
            mailbox, mailbox.default_calendar, write, extra_fields=self._copy_fields(organizer, event)
        )
        copy.ical_uid = event.ical_uid
        return copy.id

    def _refresh(self, mailbox: Mailbox, organizer: Mailbox, event: StoredEvent, copy: StoredEvent) -> None:
        copy.fields.update(self._copy_fields(organizer, event))
        copy.start, copy.end, copy.is_all_day = event.start, event.end, event.is_all_day
        if copy.recurrence != event.recurrence:
            copy.recurrence = event.recurrence
            copy.overrides.clear()
            copy.deleted_occurrences.clear()
        self._changed(mailbox, copy)

    def _cancel(self, oid: str, copy_id: str) -> None:
        mailbox = self.store.mailboxes.get(oid)
        copy = mailbox.events.get(copy_id) if mailbox else None
        if mailbox is None or copy is None or copy.fields.get("isCancelled"):
            return
        subject = copy.fields.get("subject", "")
        copy.fields["isCancelled"] = True
        copy.fields["subject"] = subject if subject.startswith("Canceled: ") else f"Canceled: {subject}"
        self._changed(mailbox, copy)

    def _changed(self, mailbox: Mailbox, copy: StoredEvent) -> None:
        copy.change_key, copy.modified = new_change_key(), self.store.clock.now()
        self.store.announce(mailbox, copy, "updated")
