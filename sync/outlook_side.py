"""The tech's synced Outlook calendar as the actions see it (`sync.sides.OutlookSide`), over
`sync.graph.GraphClient` and the Outlook mirror (`storage.outlook_mirror`), which every write
here keeps current.

Graph's precondition is ``If-Match`` on the changeKey. Creates carry a ``transactionId``
derived from the pair key (stable across retries of one create) and the Syncro id as an
extended property, so an interrupted create is found again (`GraphClient.find_by_syncro_id`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from storage.outlook_mirror import OutlookEntry
from sync.errors import NotFound, PreconditionFailed
from sync.graph import MAILBOX_CONCURRENCY, SYNCRO_ID_PROPERTY, BatchRequest
from sync.mapping import SyncroContext, UnmappableItem, appointment_from_graph, graph_fields
from sync.model import Appointment, Item, ItemFlags, Side
from sync.pairs import Pair
from sync.planner import find_adoptable
from sync.sides import NewEvent, Written

if TYPE_CHECKING:
    from storage.account import StorageAccount
    from sync.graph import GraphClient

TRANSACTION_NAMESPACE = uuid.UUID("5d0e6f0c-3b7a-4c55-9a55-0f3c1f6a9b21")


def transaction_id(tech: int, pair_key: str, replaces: str | None) -> str:
    """The Graph ``transactionId`` of the create for a pair: stable across retries of the same
    create, different for a re-create (which replaces an event that is gone)."""
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, f"{tech}|{pair_key}|{replaces or ''}"))


class OutlookCalendar:
    """The tech's synced calendar; ``events`` is the run's snapshot of his Outlook mirror and
    ``syncro_records`` of his Syncro mirror (a copy of a Syncro job shows its customer and ticket)."""

    def __init__(
        self,
        *,
        tech: int,
        calendar_id: str,
        client: GraphClient,
        storage: StorageAccount,
        events: dict[str, dict[str, Any]],
        syncro_records: dict[str, dict[str, Any]],
        zone: ZoneInfo,
        syncro_web_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.tech, self.calendar_id, self.client, self.storage = tech, calendar_id, client, storage
        self.events, self.syncro_records = events, syncro_records
        self.zone, self.web_url, self.clock = zone, syncro_web_url, clock

    def _body(self, content: Appointment, origin: Side, syncro_id: str | None) -> dict[str, Any]:
        raw = self.syncro_records.get(syncro_id) if origin is Side.SYNCRO and syncro_id is not None else None
        context = SyncroContext.from_syncro(raw, syncro_web_url=self.web_url) if raw else None
        return graph_fields(content, zone=self.zone, origin=origin, extras=context)

    def _written(self, event: dict[str, Any]) -> Written:
        content = appointment_from_graph(event, zone=self.zone)
        return Written(str(event["id"]), str(event.get("changeKey") or ""), content, raw=event)

    def keep(self, written: Written) -> None:
        self.mirror(written.raw)

    def mirror(self, event: dict[str, Any]) -> None:
        self.events[str(event["id"])] = event
        self.storage.outlook_mirror.upsert_entry(
            OutlookEntry(self.tech, str(event["id"]), str(event.get("changeKey") or ""), event, self.clock())
        )

    def forget(self, event_id: str) -> None:
        self.events.pop(event_id, None)
        self.storage.outlook_mirror.delete_entry(self.tech, event_id)

    def _calendar_of(self, event_id: str) -> str:
        """The calendar that holds an event (its ``parentFolderId``), the synced one when unknown:
        an event left in another calendar is addressed where it is."""
        event = self.events.get(event_id) or {}
        return str(event.get("parentFolderId") or self.calendar_id)

    # -- writes ---------------------------------------------------------------------------------

    def create(
        self, content: Appointment, *, origin: Side, pair_key: str, source_id: str, replaces: str | None
    ) -> Written:
        event = self.client.create_event(
            self.calendar_id,
            self._body(content, origin, source_id),
            transaction_id=transaction_id(self.tech, pair_key, replaces),
            syncro_id=source_id,
        )
        self.mirror(event)
        return self._written(event)

    def batch_request(self, index: int, event: NewEvent) -> BatchRequest:
        """One create as a ``$batch`` step, as `GraphClient.create_event` sends it."""
        payload = {
            **self._body(event.content, event.origin, event.source_id),
            "transactionId": transaction_id(self.tech, event.pair_key, None),
            "singleValueExtendedProperties": [{"id": SYNCRO_ID_PROPERTY, "value": str(event.source_id)}],
        }
        return BatchRequest(str(index), "POST", f"/me/calendars/{quote(self.calendar_id, safe='')}/events", payload)

    def send_creates(self, events: list[NewEvent]) -> list[Written | str]:
        """The creates as ``dependsOn`` chains of 20, one chain per ``$batch``, four in flight
        (Exchange's concurrent requests per mailbox). Not mirrored yet: `keep` does that, so the
        mirror writes of one wave overlap the next wave's requests. `ServiceError` when every
        ``$batch`` failed."""
        requests: list[BatchRequest | str] = []
        for index, event in enumerate(events):
            try:
                requests.append(self.batch_request(index, event))
            except UnmappableItem as error:
                requests.append(str(error))
        sent = [request for request in requests if isinstance(request, BatchRequest)]
        answers = iter(self.client.batch(sent, chained=True, lanes=MAILBOX_CONCURRENCY) if sent else ())
        results: list[Written | str] = []
        for request in requests:
            if isinstance(request, str):
                results.append(request)
                continue
            answer = next(answers)
            failure = answer.error()
            if failure is not None or not isinstance(answer.body, dict):
                results.append(str(failure or "no event in the answer"))
                continue
            try:
                results.append(self._written(answer.body))
            except UnmappableItem as error:
                results.append(str(error))
        return results

    def update(
        self, item_id: str, content: Appointment, *, expected_version: str, origin: Side, syncro_id: str | None
    ) -> Written:
        try:
            event = self.client.update_event(
                self.calendar_id, item_id, self._body(content, origin, syncro_id), if_match=f'W/"{expected_version}"'
            )
        except NotFound:  # deleted since the mirror read it: stale, and the next plan sees it gone
            self.forget(item_id)
            raise PreconditionFailed(None, None, f"event {item_id} was deleted since it was read") from None
        self.mirror(event)
        return self._written(event)

    def delete(self, item_id: str, *, expected_version: str) -> None:
        try:
            self.client.delete_event(self._calendar_of(item_id), item_id, if_match=f'W/"{expected_version}"')
        except NotFound:
            pass  # gone either way
        self.forget(item_id)

    # -- recovery -------------------------------------------------------------------------------

    def adopt(self, pair: Pair, claimed: set[str]) -> Written | None:
        """An interrupted create's leftover: the event carrying the pair's Syncro id."""
        items, events = [], {}
        for event in self.client.find_by_syncro_id(self.calendar_id, pair.syncro_id or ""):
            if str(event["id"]) in claimed:
                continue
            try:
                content = appointment_from_graph(event, zone=self.zone)
            except UnmappableItem:
                continue
            event_id = str(event["id"])
            items.append(
                Item(Side.OUTLOOK, event_id, str(event.get("changeKey") or ""), content, ItemFlags(pair_key=pair.key))
            )
            events[event_id] = event
            self.mirror(event)
        found = find_adoptable(pair, Side.OUTLOOK, items)
        return None if found is None else Written(found.id, found.version, found.content, raw=events[found.id])

    def verify(self, ids: tuple[str, ...]) -> set[str]:
        """Several at once, in chained ``$batch`` requests."""
        gone = set()
        for item_id, event in self.client.get_events(self.calendar_id, list(ids)).items():
            if event is None:
                self.forget(item_id)
                gone.add(item_id)
            else:
                self.mirror(event)
        return gone
