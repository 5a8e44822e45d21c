"""One tech's Syncro appointments as the actions see them (`sync.sides.SyncroSide`), over
`sync.syncro.SyncroClient` and the Syncro mirror (`storage.mirror`), which every read and write
here keeps current: it is what the next plan reads.

Syncro has no If-Match: its precondition is a re-read of ``updated_at`` just before a PUT or
DELETE. Syncro may leave an appointment's techs out of its answers; then the other techs on it
are the other active links whose own listing (the poller's mirror) holds it, a lower bound.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from settings import SyncOptions
from storage.errors import NotFound as NotStored
from storage.links import LinkStatus
from storage.mirror import MirrorEntry
from sync.errors import NotFound, PreconditionFailed
from sync.mapping import (
    OUTLOOK_TAG,
    UnmappableItem,
    appointment_from_syncro,
    syncro_fields,
    syncro_kept,
)
from sync.model import Appointment, Item, ItemFlags, Side
from sync.pairs import Pair
from sync.planner import find_adoptable
from sync.poll_diff import content_hash
from sync.sides import Held, Written
from sync.times import parse_time

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from sync.syncro import SyncroClient


def inner(record: dict[str, Any]) -> dict[str, Any]:
    """The appointment itself, whichever of the API's shapes wraps it."""
    return record["appointment"] if isinstance(record.get("appointment"), dict) else record


def carries_outlook_tag(record: dict[str, Any]) -> bool:
    """Whether a Syncro record's summary starts with ``[O] `` (only our creates of Outlook-born
    items do: recovery adopts nothing else for them)."""
    return str(inner(record).get("summary") or "").startswith(OUTLOOK_TAG)


def _owner(record: dict[str, Any]) -> int | None:
    owner = inner(record).get("user_id")
    return owner if isinstance(owner, int) and not isinstance(owner, bool) else None


class SyncroAppointments:
    """The tech's Syncro appointments; ``records`` is the run's snapshot of his mirror."""

    def __init__(
        self,
        *,
        tech: int,
        client: SyncroClient,
        storage: StorageAccount,
        records: dict[str, dict[str, Any]],
        zone: ZoneInfo,
        clock: Callable[[], datetime],
        options: SyncOptions,
    ) -> None:
        self.tech, self.client, self.storage = tech, client, storage
        self.records, self.zone, self.clock, self.options = records, zone, clock, options

    def _held(self, record: dict[str, Any]) -> Held:
        techs = frozenset(syncro_kept(record).get("user_ids", []))
        return Held(
            str(record["id"]),
            str(record.get("updated_at") or ""),
            appointment_from_syncro(record, zone=self.zone),
            techs,
            _owner(record),
            raw=record,
        )

    def _written(self, record: dict[str, Any]) -> Written:
        self.mirror_record(record)
        content = appointment_from_syncro(record, zone=self.zone)
        return Written(str(record["id"]), str(record.get("updated_at") or ""), content, raw=record)

    # -- reads ----------------------------------------------------------------------------------

    def get(self, item_id: str) -> Held:
        return self._held(self.client.get_appointment(int(item_id)))

    def _at(self, item_id: str, expected_version: str) -> dict[str, Any]:
        try:
            current = self.client.get_appointment(int(item_id))
        except NotFound:  # deleted since the plan read it: stale, and the next plan sees it gone
            self.forget(item_id)
            raise PreconditionFailed(None, None, f"appointment {item_id} was deleted since it was read") from None
        if str(current.get("updated_at") or "") != expected_version:
            self.mirror_record(current)  # the next plan sees what it is now
            raise PreconditionFailed(None, None, f"appointment {item_id} changed since it was read")
        return current

    def current(self, item_id: str, expected_version: str) -> Held:
        return self._held(self._at(item_id, expected_version))

    def others_on(self, held: Held) -> tuple[bool, set[int]]:
        if held.shows_techs:
            return True, set(held.assigned - {self.tech})
        seen: set[int] = set()
        for link in self.storage.links.list_links():
            if link.syncro_user_id == self.tech or link.status is not LinkStatus.ACTIVE:
                continue
            try:
                self.storage.mirror.get_entry(link.syncro_user_id, int(held.id))
            except NotStored:
                continue
            seen.add(link.syncro_user_id)
        return False, seen

    def kept(self, item_id: str) -> dict[str, Any] | None:
        record = self.records.get(item_id)
        return (syncro_kept(record) or None) if record is not None else None

    # -- writes ---------------------------------------------------------------------------------

    def create(self, content: Appointment, *, origin: Side, kept: dict[str, Any] | None) -> Written:
        fields = syncro_fields(
            content,
            zone=self.zone,
            origin=origin,
            tech_syncro_user_id=self.tech,
            appointment_type_id=self.options.appointment_type_id,
            customer_id=self.options.customer_id,
            kept=kept,
        )
        return self._written(self.client.create_appointment({**fields, "email_customer": False}))

    def update(self, item_id: str, content: Appointment, *, expected_version: str, origin: Side) -> Written:
        self._at(item_id, expected_version)
        fields = syncro_fields(content, zone=self.zone, origin=origin, tech_syncro_user_id=None)
        return self._written(self.client.update_appointment(int(item_id), {**fields, "email_customer": False}))

    def assign(self, held: Held, techs: set[int], owner: int, *, origin: Side) -> Held:
        """PUT the whole form of the appointment (as Syncro holds it) with ``techs`` on it."""
        fields = syncro_fields(held.content, zone=self.zone, origin=origin, tech_syncro_user_id=None)
        fields["user_ids"], fields["user_id"] = sorted(techs), owner
        return self._held(self.client.update_appointment(int(held.id), {**fields, "email_customer": False}))

    def delete(self, item_id: str) -> None:
        try:
            self.client.delete_appointment(int(item_id))
        except NotFound:
            pass  # gone either way
        self.forget(item_id)

    # -- the mirror -----------------------------------------------------------------------------

    def mirror(self, held: Held) -> None:
        self.mirror_record(held.raw)

    def mirror_record(self, record: dict[str, Any]) -> None:
        self.records[str(record["id"])] = record
        self.storage.mirror.put_entry(
            MirrorEntry(
                self.tech,
                int(record["id"]),
                str(record.get("updated_at") or ""),
                content_hash(record),
                dict(record),
                self.clock(),
            )
        )

    def forget(self, item_id: str) -> None:
        self.records.pop(item_id, None)
        self.storage.mirror.delete_entry(self.tech, int(item_id))

    # -- recovery -------------------------------------------------------------------------------

    def adopt(self, pair: Pair, claimed: set[str]) -> Written | None:
        """An interrupted create's leftover: Syncro keeps no key of ours, so look among the
        appointments around the day for an ``[O]`` one made since the intent (`find_adoptable`)."""
        if pair.base is None:
            return None
        day = pair.base.start.astimezone(self.zone).date()
        window = {"date_from": day - timedelta(days=1), "date_to": day + timedelta(days=2)}
        records = {str(r["id"]): r for r in self.client.iter_appointments(**window) if str(r["id"]) not in claimed}
        items = []
        for record_id, record in records.items():
            try:
                content = appointment_from_syncro(record, zone=self.zone)
            except UnmappableItem:
                continue
            created = parse_time(record.get("created_at"))
            flags = ItemFlags(created_at=created, tagged=carries_outlook_tag(record))
            items.append(Item(Side.SYNCRO, record_id, str(record.get("updated_at") or ""), content, flags))
        found = find_adoptable(pair, Side.SYNCRO, items)
        if found is None:
            return None
        self.mirror_record(records[found.id])
        return Written(found.id, found.version, found.content, raw=records[found.id])

    def verify(self, ids: tuple[str, ...]) -> set[str]:
        gone = set()
        for item_id in ids:
            try:
                record = self.client.get_appointment(int(item_id))
            except NotFound:
                self.forget(item_id)
                gone.add(item_id)
                continue
            if self._given_away(record, item_id):
                gone.add(item_id)  # gone from this tech: never put back in his mirror
            else:
                self.mirror_record(record)  # his listing glitched: it is his still
        return gone

    def _given_away(self, record: dict[str, Any], appointment_id: str) -> bool:
        """An appointment that exists but is no longer this tech's: its techs say so when Syncro
        shows them; else the poller, which took it out of his mirror only on evidence (his own
        listing, another tech's, or a change to it), while a mirror that still holds it only
        read back short."""
        users, owner = syncro_kept(record).get("user_ids", []), _owner(record)
        if users or owner is not None:
            return self.tech not in {*users, owner}
        try:
            self.storage.mirror.get_entry(self.tech, int(appointment_id))
        except NotStored:
            return True
        return False
