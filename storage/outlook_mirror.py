"""The Outlook mirror: what the last ``calendarView/delta`` round (and our own writes) showed of
each technician's chosen calendar within the sync window.

The sync engine plans from it, as it plans from the Syncro mirror for the other side, so a
reconciliation in which nothing changed costs one Graph request (the delta round). Rows hold the
event as Graph returned it (occurrence stubs already filled in).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.keys import decode_key, encode_key
from storage.table import pack_bytes, unpack_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator

    from storage.table import Entity, Tables


@dataclass(frozen=True)
class OutlookEntry:
    syncro_user_id: int
    event_id: str  # immutable id, case-sensitive
    change_key: str
    event: dict[str, Any]  # the event as Graph returned it
    seen_at: datetime
    etag: str | None = None


def _to_entity(entry: OutlookEntry) -> Entity:
    return {
        "PartitionKey": str(entry.syncro_user_id),
        "RowKey": encode_key(entry.event_id),
        "change_key": entry.change_key,
        "seen_at": entry.seen_at,
        **pack_bytes("event", json.dumps(entry.event, separators=(",", ":")).encode("utf-8")),
    }


def _from_entity(entity: Entity, etag: str) -> OutlookEntry:
    return OutlookEntry(
        syncro_user_id=int(entity["PartitionKey"]),
        event_id=decode_key(entity["RowKey"]),
        change_key=entity.get("change_key", ""),
        event=json.loads(unpack_bytes(entity, "event")),
        seen_at=entity["seen_at"],
        etag=etag,
    )


class OutlookMirrorStore:
    def __init__(self, account: Tables) -> None:
        self._table = account.table("outlookmirror")

    def list_entries(self, syncro_user_id: int) -> Iterator[OutlookEntry]:
        for entity, etag in self._table.partition(str(syncro_user_id)):
            yield _from_entity(entity, etag)

    def upsert_entry(self, entry: OutlookEntry) -> OutlookEntry:
        """Last writer wins: a tech's sync runs under that tech's lease."""
        return replace(entry, etag=self._table.upsert(_to_entity(entry)))

    def delete_entry(self, syncro_user_id: int, event_id: str) -> None:
        """Succeeds when already gone."""
        self._table.delete(str(syncro_user_id), encode_key(event_id))

    def clear(self, syncro_user_id: int) -> None:
        for entity, _etag in self._table.partition(str(syncro_user_id), select=["RowKey"]):
            self._table.delete(str(syncro_user_id), entity["RowKey"])
